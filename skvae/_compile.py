"""``torch.compile`` of a training step's forward pass and loss.

The compiled functions are made once per process, at their first use (so
that ``import skvae`` does not import torch's compiler), and shared by every
network: ``torch.compile`` keeps the code it generates per function, with
guards on the shapes and types of what it is handed, so that networks of one
shape -- the fits of a grid search, the epochs of a fit -- reuse one
compilation. The batch dimension is marked dynamic, so that the smaller last
batch of an epoch, and the other training sizes of a cross-validation, run
the same code instead of compiling their own. Nothing compiled is stored on
a network: pickles, clones and saved models hold the plain modules.

Where compilation fails (no C++ compiler for the CPU, a platform torch's
compiler does not support), the first call warns and it and every later
call in the process run eagerly.
"""

import warnings

import torch

__all__ = ["compiled_forward", "compiled_loss", "compilation_failed"]

#: Whether the batch dimension is compiled as dynamic. False compiles each
#: batch size anew, e.g. the last, smaller batch of an epoch and every other
#: last batch of the folds of a cross-validation; ``benchmarks.compiled_step
#: --batch-dimension static`` measures that.
DYNAMIC_BATCH = True
#: The compiled functions by name, made at first use.
_COMPILED = {}
#: Why compilation failed in this process, once it has.
_FAILURE = []


def _forward(module, X, noise):
    return module(X, noise=noise)


def _loss(criterion, outputs, X, labels, kwargs):
    return criterion(outputs, X, labels, **kwargs)


def compilation_failed():
    """Why ``torch.compile`` failed in this process, or None if it has not."""
    return _FAILURE[0] if _FAILURE else None


def _mark_batch_dynamic(*tensors):
    if not DYNAMIC_BATCH:
        return
    for tensor in tensors:
        if isinstance(tensor, torch.Tensor) and tensor.dim():
            torch._dynamo.maybe_mark_dynamic(tensor, 0)


def _run(name, function, eager_args, batch_tensors):
    """``function(*eager_args)``, compiled unless compilation failed here."""
    if _FAILURE:
        return function(*eager_args)
    try:
        if name not in _COMPILED:
            _COMPILED[name] = torch.compile(function, dynamic=None if DYNAMIC_BATCH else False)
        _mark_batch_dynamic(*batch_tensors)
        return _COMPILED[name](*eager_args)
    except Exception as error:  # noqa: BLE001 -- whatever the compiler raises
        # An error of the call itself (not of the compiler) is raised here again, eagerly.
        result = function(*eager_args)
        _FAILURE.append(f"{type(error).__name__}: {error}".splitlines()[0])
        warnings.warn(
            f"compile=True but torch.compile failed here ({_FAILURE[0]}); training runs eagerly "
            "instead, as with compile=False. On a CPU torch's compiler needs a C++ compiler "
            "(g++ or clang on the PATH).",
            UserWarning,
            stacklevel=4,
        )
        return result


def compiled_forward(module, X, noise):
    """``module(X, noise=noise)``, a training forward pass, compiled."""
    return _run("forward", _forward, (module, X, noise), (X, *noise))


def compiled_loss(criterion, outputs, X, labels, **kwargs):
    """``criterion(outputs, X, labels, **kwargs)``, compiled; its weights
    (``kl_weight``...) must be tensors, which change without recompiling."""
    batch = (*outputs, X, labels, *kwargs.values())
    return _run("loss", _loss, (criterion, outputs, X, labels, kwargs), batch)
