"""Saving and loading a fitted :class:`~skvae.DisentangledVAE`.

There are two ways to keep a fitted model:

* :mod:`pickle` or :mod:`joblib` store the whole estimator, whatever its
  parameters (callbacks, a custom schedule...). A model trained on a GPU
  unpickles on a CPU-only machine: skorch maps its tensors to the CPU, with
  a warning. **Security caveat**: unpickling runs code chosen by whoever
  wrote the file, so only unpickle files from sources you trust, as with
  any scikit-learn model.
* :meth:`DisentangledVAE.save <skvae.DisentangledVAE.save>` and
  :meth:`DisentangledVAE.load <skvae.DisentangledVAE.load>` write and read
  one file that holds tensors and a JSON text only; it is read with
  ``torch.load(..., weights_only=True)``, so loading a file from someone
  else never runs code from it. This is the way to share models.

The file is a :func:`torch.save` of a dict:

``format``, ``format_version``, ``skvae_version``
    ``"skvae.DisentangledVAE"``, the version of this layout (1), and the
    skvae version that wrote it.
``metadata``
    JSON text: the constructor parameters (``params``), the fitted
    attributes (``attributes``: ``classes_``, ``n_features_in_``,
    ``feature_names_in_``, ``image_shape_``, the class statistics...), the
    training history (``history``) and the net's schedule counters,
    validation-split seed and loss scale (``precision="16-mixed"``; empty
    otherwise) (``net``). Numeric arrays are stored as tensors
    in ``state["arrays"]`` and referred to by name.
``state``
    Tensors: the module's and the optimizer's state dicts, the random
    state that training continues from, and the numeric arrays.
``sha256``
    Checksum of ``metadata`` and ``state``: a truncated or corrupted file
    is refused instead of loading wrong weights.

Only parameters with a plain-data form can be saved: numbers, strings,
None, tuples and lists of them, the schedules of :mod:`skvae.schedules`
(stored by class name and parameters), the optimizer classes of
:mod:`torch.optim` (by name) and torch devices. ``save`` refuses anything
else -- callbacks, a callable ``classification_weight``, a custom optimizer
class, a ``RandomState`` -- with a :class:`ValueError` naming it, rather
than writing a model whose parameters differ from the saved one's. Set
such parameters to a storable value with ``set_params`` before saving;
callbacks only act during training, so ``callbacks=None`` leaves the saved
model unchanged.
"""

import hashlib
import json
import os
import re

import numpy as np
import torch
from sklearn.utils import Bunch

from ._fileio import atomic_write
from ._version import __version__
from .exceptions import ModelFileError
from .schedules import Constant, CosineDecay, LinearDecay, SigmoidDecay, _SharedDefault

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "save"]

FORMAT = "skvae.DisentangledVAE"
FORMAT_VERSION = 1

_SCHEDULES = {cls.__name__: cls for cls in (Constant, CosineDecay, LinearDecay, SigmoidDecay)}
# Fitted attributes are public names ending in "_"; the net is stored apart.
_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*_\Z")
_NOT_ATTRIBUTES = ("net_", "history_")


def save(path, *, params, attributes, training_state, split_seed):
    """Write a fitted model to ``path`` without pickling any object.

    :meth:`DisentangledVAE.save <skvae.DisentangledVAE.save>` calls this;
    the file is written atomically (see :func:`skvae._fileio.atomic_write`).

    Parameters
    ----------
    path : str or path-like
        Destination file.
    params : dict
        The estimator's constructor parameters.
    attributes : dict
        Its fitted attributes (public names ending in ``_``); others are
        not stored.
    training_state : dict
        The net's :meth:`~skvae._net.DisentangledVAENet.get_training_state`.
    split_seed : int or None
        Seed of the early-stopping split.

    Raises
    ------
    ValueError
        For a parameter, attribute or history value without a plain-data
        form.
    """
    arrays = {}
    stored_params = {}
    for name, value in params.items():
        try:
            stored_params[name] = _encode(value, name, arrays)
        except TypeError:
            hint = (
                " Callbacks act during training only, so callbacks=None does not "
                "change the fitted model."
                if name == "callbacks"
                else ""
            )
            raise ValueError(
                f"Cannot save {name}={value!r}: save() stores parameters as plain "
                "data, i.e. numbers, strings, None, tuples and lists of them, the "
                "schedules of skvae.schedules, torch.optim optimizer classes and "
                "torch devices. Set it to such a value with set_params before "
                f"saving, or use pickle (only for files you trust).{hint}"
            ) from None
    stored_attributes = {}
    for name, value in attributes.items():
        if not _ATTRIBUTE_NAME.match(name):
            continue
        try:
            stored_attributes[name] = _encode(value, name, arrays)
        except TypeError:
            raise ValueError(
                f"Cannot save the fitted attribute {name} of type "
                f"{type(value).__name__}: save() stores plain data and arrays only."
            ) from None
    try:
        metadata = json.dumps(
            {
                "params": stored_params,
                "attributes": stored_attributes,
                "history": list(training_state["history"]),
                "net": {
                    "n_steps": training_state["n_steps"],
                    "total_steps": training_state["total_steps"],
                    "grad_scaler": training_state["grad_scaler"],
                    "split_seed": split_seed,
                },
            },
            default=_json_default,
        )
    except TypeError as exc:
        raise ValueError(
            f"Cannot save the training history: {exc}. A callback recorded a value "
            "that is not plain data; save() stores the history as JSON."
        ) from None
    state = {
        "module": _to_cpu(training_state["module"]),
        "optimizer": _to_cpu(training_state["optimizer"]),
        "rng": _to_cpu(training_state["rng"]),
        "arrays": arrays,
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skvae_version": __version__,
        "metadata": metadata,
        "state": state,
        "sha256": _digest(metadata, state),
    }
    _write_atomic(payload, path)


def load(path):
    """Read a model file written by :func:`save`, without running code from it.

    Parameters
    ----------
    path : str or path-like
        File written by :func:`save`.

    Returns
    -------
    saved : :class:`~sklearn.utils.Bunch`
        ``params`` and ``attributes`` (dicts of decoded values),
        ``training_state`` (for
        :meth:`~skvae._net.DisentangledVAENet.set_training_state`) and
        ``split_seed``. :meth:`DisentangledVAE.load
        <skvae.DisentangledVAE.load>` builds the estimator from them.

    Raises
    ------
    ModelFileError
        If the file is truncated, corrupted, of another format version,
        or not a model file.
    """
    payload = _read(path)
    try:
        metadata = json.loads(payload["metadata"])
        state = payload["state"]
        arrays = state["arrays"]
        params = {name: _decode(value, arrays) for name, value in metadata["params"].items()}
        attributes = {}
        for name, value in metadata["attributes"].items():
            if not _ATTRIBUTE_NAME.match(name) or name in _NOT_ATTRIBUTES:
                raise ValueError(f"{name!r} is not a fitted attribute name")
            attributes[name] = _decode(value, arrays)
        training_state = {
            "module": state["module"],
            "optimizer": state["optimizer"],
            "rng": state["rng"],
            "n_steps": int(metadata["net"]["n_steps"]),
            "total_steps": int(metadata["net"]["total_steps"]),
            # Files from before precision="16-mixed" have no loss scale.
            "grad_scaler": dict(metadata["net"].get("grad_scaler", {})),
            "history": list(metadata["history"]),
        }
        split_seed = metadata["net"]["split_seed"]
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(
            f"{os.fspath(path)} passes its checksum but does not describe a "
            f"DisentangledVAE this skvae can build: {type(exc).__name__}: {exc}"
        ) from exc
    return Bunch(params=params, attributes=attributes, training_state=training_state, split_seed=split_seed)


# ------------------------------------------------------------ file level


def _write_atomic(payload, path):
    """torch.save ``payload`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path) as file:
        torch.save(payload, file)


def _read(path):
    """The checked payload of a model file."""
    name = os.fspath(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{name} is not a readable skvae model file: it is truncated or "
            "corrupted, or holds Python objects other than tensors and plain data, "
            f"which load refuses to unpickle ({reason})."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{name} is not a model file written by DisentangledVAE.save.")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{name} has model file format version {version!r} (written by skvae "
            f"{payload.get('skvae_version')}); this skvae reads version "
            f"{FORMAT_VERSION}. Load it with the skvae version that wrote it."
        )
    if payload.get("sha256") != _digest(payload.get("metadata"), payload.get("state")):
        raise ModelFileError(
            f"{name} is corrupted: its content does not match its checksum. Use an "
            "intact copy of the file."
        )
    return payload


def _digest(metadata, state):
    digest = hashlib.sha256()
    _hash_into(digest, metadata)
    _hash_into(digest, state)
    return digest.hexdigest()


def _hash_into(digest, obj):
    """Feed a nested structure of tensors and plain data to ``digest``."""
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        digest.update(f"dict {len(obj)}\n".encode())
        for key, value in obj.items():
            _hash_into(digest, key)
            _hash_into(digest, value)
    elif isinstance(obj, (list, tuple)):
        digest.update(f"{type(obj).__name__} {len(obj)}\n".encode())
        for value in obj:
            _hash_into(digest, value)
    elif isinstance(obj, str):
        data = obj.encode()
        digest.update(f"str {len(data)}\n".encode() + data)
    else:
        digest.update(f"{type(obj).__name__} {obj!r}\n".encode())


def _to_cpu(obj):
    """A state dict with every tensor on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {key: _to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(value) for value in obj)
    return obj


# ----------------------------------------------------- plain-data values
# JSON holds dicts only as markers: {"__tuple__": [...]}, {"__array__": name
# in state["arrays"]}, {"__ndarray__": [...], "dtype": ...} for arrays of
# strings, {"__schedule__": name, "params": {...}}, {"__optimizer__": name}
# and {"__device__": str}.


def _encode(value, name, arrays):
    """JSON form of ``value``; numeric arrays go to ``arrays[name]``.

    Raises TypeError for a value without a plain-data form.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [_encode(item, f"{name}[{i}]", arrays) for i, item in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufc":
            arrays[name] = torch.from_numpy(np.ascontiguousarray(value))
            return {"__array__": name}
        if value.dtype.kind == "U" or (
            value.dtype.kind == "O" and all(isinstance(item, str) for item in value.flat)
        ):
            return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, _SharedDefault):
        value = value.unshared()
    if type(value) in _SCHEDULES.values():
        params = {key: _encode(item, f"{name}__{key}", arrays) for key, item in value.get_params().items()}
        return {"__schedule__": type(value).__name__, "params": params}
    if (
        isinstance(value, type)
        and issubclass(value, torch.optim.Optimizer)
        and getattr(torch.optim, value.__name__, None) is value
    ):
        return {"__optimizer__": value.__name__}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    raise TypeError(f"{name} has no plain-data form")


def _decode(value, arrays):
    """Inverse of :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(item, arrays) for item in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode(item, arrays) for item in value["__tuple__"])
    if "__array__" in value:
        return arrays[value["__array__"]].numpy()
    if "__ndarray__" in value:
        dtype = np.dtype(value["dtype"])
        items = value["__ndarray__"]
        if dtype.kind not in "UO" or not all(isinstance(item, str) for item in np.ravel(items)):
            raise ValueError(f"an array of strings holds {dtype} values")
        return np.array(items, dtype=dtype)
    if "__schedule__" in value:
        schedule = _SCHEDULES[value["__schedule__"]]
        return schedule(**{key: _decode(item, arrays) for key, item in value["params"].items()})
    if "__optimizer__" in value:
        optimizer = getattr(torch.optim, value["__optimizer__"], None)
        if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
            raise ValueError(f"{value['__optimizer__']!r} is not a torch.optim optimizer")
        return optimizer
    if "__device__" in value:
        return torch.device(value["__device__"])
    raise ValueError(f"unknown stored value {value!r}")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{value!r} of type {type(value).__name__} is not JSON serializable")
