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
    Checksum of ``metadata`` and ``state``.

What the checksum guards, and what it does not: it guards integrity. A
truncated file, or one whose bytes were damaged on a disk or in a transfer,
is refused instead of loading wrong weights (``torch.load`` does not check
the zip's own CRCs of the tensors). It does not guard authenticity: it has
no key, so anyone can edit a file and write a valid checksum for it.
:func:`load` is therefore written for files from anyone:

* it never runs code from the file: only tensors and plain data are read;
* it bounds what it parses -- the pickled structure (at most 12 MiB and
  200,000 pickle operations), the metadata (at most 8 MiB of JSON text,
  262,144 values, nested at most 32 levels deep) -- so that a file cannot
  make it take much more time or memory than its size;
* before it builds the network, it checks every stored tensor against the
  shapes and dtypes that the file's parameters give the network (computed
  on PyTorch's ``meta`` device, which allocates nothing), so that a file
  cannot make it allocate a network larger than the tensors it holds.

A file that fails any of these checks is refused with a
:class:`ModelFileError`. A file that passes them can still hold a model
that someone trained badly or edited on purpose: its predictions are what
its weights compute. Use models from sources you trust to have trained them
well, as with any model.

Only parameters with a plain-data form can be saved: numbers, strings,
None, tuples and lists of them, dicts of them (a ``class_weight``, stored
as a list of key-value pairs, so that its keys keep their types), the
schedules of :mod:`skvae.schedules`
(stored by class name and parameters), the optimizer classes of
:mod:`torch.optim` (by name) and torch devices. ``save`` refuses anything
else -- callbacks, a callable ``classification_weight``, a custom optimizer
class, a ``RandomState`` -- with a :class:`ValueError` naming it, rather
than writing a model whose parameters differ from the saved one's. Set
such parameters to a storable value with ``set_params`` before saving;
callbacks only act during training, so ``callbacks=None`` leaves the saved
model unchanged. ``save`` also refuses, with a :class:`ValueError`, a model
whose metadata exceeds the bounds above: in practice a training history of
more than about 30,000 batches, e.g. 130 epochs of 60,000 samples at the
default batch size; its message says how to drop the per-batch records.

Files written by older skvae versions have the same format version and
lack only what was added since; :func:`load` gives them the values their
models were trained with (``_upgrade_metadata`` lists them).
"""

import errno
import hashlib
import itertools
import json
import os
import pickletools
import re
import zipfile

import numpy as np
import torch
from sklearn.utils import Bunch

from ._build import build_module_on_meta
from ._fileio import atomic_write, check_path
from ._version import __version__
from .exceptions import ModelFileError
from .schedules import Constant, CosineDecay, LinearDecay, SigmoidDecay, _SharedDefault

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "save"]

FORMAT = "skvae.DisentangledVAE"
FORMAT_VERSION = 1

# Bounds on what load parses, so that a forged file cannot make it take far
# more time or memory than its size. The pickle holds the metadata and about
# 30 operations per tensor (8 tensors per layer with Adam: 2,000 operations
# for one hidden layer); torch's weights-only unpickler runs in Python at
# about 1 us and up to ~70 bytes per operation.
_MAX_PICKLE_BYTES = 12 * 2**20
_MAX_PICKLE_OPERATIONS = 200_000
# The training history is most of the metadata: about 250 characters and 8
# values per batch, so these bounds hold about 30,000 batches. json.loads
# takes up to ~480 bytes per value (one-key dicts with long distinct keys),
# up to 24 times the text: the count of values bounds its memory (to ~60
# MB, with the text) where the length alone would not.
_MAX_METADATA_CHARS = 8 * 2**20
_MAX_METADATA_VALUES = 2**18
# Decoding and checksumming recurse; saved files nest about 5 levels deep.
_MAX_NESTING = 32

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
    problem = _metadata_size_problem(metadata)
    if problem is not None:
        raise ValueError(
            f"Cannot save this model: its metadata, mostly the training history of "
            f"{len(training_state['history'])} epochs, is {problem}; load refuses "
            "larger ones so that a forged file cannot exhaust memory. Drop the "
            "history's per-batch records first (for epoch in model.history_: "
            "epoch['batches'] = []), or use pickle (only for files you trust)."
        )
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
    path : str, bytes or path-like
        File written by :func:`save`.

    Returns
    -------
    saved : :class:`~sklearn.utils.Bunch`
        ``params`` and ``attributes`` (dicts of decoded values, in the
        layout of this skvae version whatever version wrote the file),
        ``training_state`` (for
        :meth:`~skvae._net.DisentangledVAENet.set_training_state`, once
        :func:`check_weights` accepts it) and ``split_seed``.
        :meth:`DisentangledVAE.load <skvae.DisentangledVAE.load>` builds the
        estimator from them.

    Raises
    ------
    ModelFileError
        If the file is truncated, corrupted, of another format version,
        not a model file, or beyond the bounds of the module docstring.
    FileNotFoundError, IsADirectoryError
        If there is no file at ``path``; the message names a missing folder.
    """
    filename = _existing_file(path)
    payload = _read(filename)
    try:
        metadata = _upgrade_metadata(_parse_metadata(payload["metadata"]))
        state = payload["state"]
        _check_state_layout(state)
        arrays = state["arrays"]
        params = {name: _decode(value, arrays) for name, value in metadata["params"].items()}
        attributes = {}
        for name, value in metadata["attributes"].items():
            if not _ATTRIBUTE_NAME.match(name) or name in _NOT_ATTRIBUTES:
                raise ValueError(f"{name!r} is not a fitted attribute name")
            attributes[name] = _decode(value, arrays)
        history = metadata["history"]
        if not (isinstance(history, list) and all(isinstance(epoch, dict) for epoch in history)):
            raise TypeError("the training history is not a list of per-epoch dicts")
        training_state = {
            "module": state["module"],
            "optimizer": state["optimizer"],
            "rng": state["rng"],
            "n_steps": int(metadata["net"]["n_steps"]),
            "total_steps": int(metadata["net"]["total_steps"]),
            "grad_scaler": dict(metadata["net"]["grad_scaler"]),
            "history": history,
        }
        split_seed = metadata["net"]["split_seed"]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(
            f"{filename} passes its checksum but does not describe a "
            f"DisentangledVAE this skvae can build: {describe_error(exc)}"
        ) from exc
    return Bunch(params=params, attributes=attributes, training_state=training_state, split_seed=split_seed)


def check_weights(training_state, setup):
    """Refuse stored tensors that do not fit the network ``setup`` describes.

    Called by :meth:`DisentangledVAE.load <skvae.DisentangledVAE.load>`
    before it builds the network: the expected shapes come from a module
    built on the ``meta`` device, which allocates nothing, so a file whose
    parameters ask for a huge network is refused without the memory for it.
    Once every tensor matches, the network holds exactly as many numbers as
    the file.

    Parameters
    ----------
    training_state : dict
        ``load(path).training_state``.
    setup : skvae._build.FittedSetup
        What the file's parameters and fitted attributes describe.

    Raises
    ------
    ValueError
        Naming the first tensor that is missing, extra, or of another shape
        or dtype than the network's.
    """
    stored = training_state["module"]
    expected = build_module_on_meta(setup, max_tensors=len(stored)).state_dict()
    missing = [name for name in expected if name not in stored]
    if missing:
        raise ValueError(f"the file lacks the module tensors {missing} of the network its parameters describe")
    extra = [name for name in stored if name not in expected]
    if extra:
        raise ValueError(f"the file holds module tensors {extra} that the network its parameters describe has not")
    for name, tensor in expected.items():
        _check_tensor(f"module tensor {name!r}", stored[name], tensor.shape, tensor.dtype)
    # The optimizer's state holds, per parameter (numbered in the module's
    # order), tensors of the parameter's shape and a one-number step count.
    shapes = [tensor.shape for tensor in expected.values()]
    optimizer = training_state["optimizer"]
    for index, values in optimizer["state"].items():
        if not (isinstance(index, int) and 0 <= index < len(shapes)):
            raise ValueError(f"the optimizer state names parameter {index!r}; the network has {len(shapes)}")
        for key, value in values.items():
            if value.numel() != 1 or value.dim() > 1:
                _check_tensor(f"optimizer state {key!r} of parameter {index}", value, shapes[index])


def describe_error(exc):
    """``"Type: message"`` of ``exc``, shortened: it may quote a forged file's huge values."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 1000 else f"{text[:1000]}..."


def _check_tensor(what, tensor, shape, dtype=None):
    if tuple(tensor.shape) != tuple(shape):
        raise ValueError(
            f"{what} has shape {tuple(tensor.shape)} in the file, but the network its "
            f"parameters describe has {tuple(shape)}"
        )
    if dtype is not None and tensor.dtype != dtype:
        raise ValueError(f"{what} is {tensor.dtype} in the file, but the network's is {dtype}")


# ---------------------------------------------------------- format versions


def _upgrade_metadata(metadata):
    """The decoded ``metadata`` of a supported file, in this version's layout.

    Every supported file has format version 1; those written by older
    skvae versions lack what was added since, and get the values that their
    models were trained with (which the defaults may not be):

    * ``params["input_dropout"]``: 0.0, no masking noise;
    * ``attributes["max_epochs_"]``: ``params["max_epochs"]``, an int before
      ``max_epochs="auto"``;
    * ``attributes["input_dropout_"]``: ``params["input_dropout"]``, a number
      before ``input_dropout="auto"``;
    * ``attributes["early_stopping_"]``: ``params["early_stopping"]``, a bool
      before ``early_stopping="auto"``;
    * ``net["grad_scaler"]``: ``{}``, no loss scale before
      ``precision="16-mixed"``;
    * ``attributes["compile_"]``: False, eager training before ``compile``;
    * ``attributes["architecture_"]``: ``"mlp"``, and ``params["architecture"]``
      ``"mlp"`` where missing. Files from before ``architecture="auto"`` of
      ``"conv"`` models are refused, to be refitted: their
      transposed-convolution decoder is no longer built.
    """
    if not isinstance(metadata, dict) or not all(
        isinstance(metadata.get(key), dict) for key in ("params", "attributes", "net")
    ):
        raise TypeError("the metadata is not a dict with dicts params, attributes and net")
    params, attributes = metadata["params"], metadata["attributes"]
    params.setdefault("input_dropout", 0.0)
    for name in ("max_epochs", "input_dropout", "early_stopping"):
        if f"{name}_" not in attributes:
            if isinstance(params[name], str):
                raise ValueError(
                    f"{name}={params[name]!r} comes without {name}_, which only files written "
                    f"before {name}={params[name]!r} existed lack"
                )
            attributes[f"{name}_"] = params[name]
    metadata["net"].setdefault("grad_scaler", {})
    attributes.setdefault("compile_", False)
    if "architecture_" not in attributes:
        params.setdefault("architecture", "mlp")
        if params["architecture"] != "mlp":
            raise ValueError(
                f"its architecture={params['architecture']!r} model comes without architecture_: "
                "it was written before architecture='auto', when 'conv' had a transposed-convolution "
                "decoder, which this skvae does not build; refit it with this skvae"
            )
        attributes["architecture_"] = "mlp"
    return metadata


# ------------------------------------------------------------ file level


def _write_atomic(payload, path):
    """torch.save ``payload`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path) as file:
        torch.save(payload, file)


def _existing_file(path):
    """``path`` as a str; an ``OSError`` that says what is missing unless it is a file."""
    name = check_path(path)
    if os.path.isfile(name):
        return name
    if os.path.isdir(name):
        raise IsADirectoryError(
            errno.EISDIR, f"cannot load {name!r}: it is a directory; give the path of a model file in it"
        )
    folder = os.path.dirname(os.path.abspath(name))
    if os.path.exists(name):
        raise OSError(errno.EINVAL, f"cannot load {name!r}: it is not a regular file")
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"cannot load {name!r}: the folder {folder!r} does not exist")
    raise FileNotFoundError(errno.ENOENT, f"cannot load {name!r}: there is no such file in {folder!r}")


def _read(name):
    """The checked payload of the model file ``name``."""
    _check_archive(name)
    try:
        # What it allocates is now bounded: the pickle, and storages of the
        # sizes of records that lie within the file.
        payload = torch.load(name, map_location="cpu", weights_only=True)
    except PermissionError:
        raise
    except Exception as exc:
        raise _unreadable(name, exc) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{name} is not a model file written by DisentangledVAE.save.")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{name} has model file format version {version!r} (written by skvae "
            f"{payload.get('skvae_version')}); this skvae reads version "
            f"{FORMAT_VERSION}. Load it with the skvae version that wrote it."
        )
    try:
        _check_nesting(payload, "its content")  # before the checksum recurses into it
    except ValueError as exc:
        raise ModelFileError(f"{name} is not a model file written by DisentangledVAE.save: {exc}.") from None
    if payload.get("sha256") != _digest(payload.get("metadata"), payload.get("state")):
        raise _corrupted(name)
    return payload


def _check_archive(name):
    """Refuse a zip archive that ``torch.load`` should not read.

    That is, before ``torch.load`` allocates anything: one whose records
    claim more bytes than the file holds (``torch.load`` allocates what they
    claim), or whose pickle is beyond :data:`_MAX_PICKLE_BYTES` or
    :data:`_MAX_PICKLE_OPERATIONS`.
    """
    try:
        size = os.path.getsize(name)
        with zipfile.ZipFile(name) as archive:
            records = archive.infolist()
            # torch.save stores its records uncompressed.
            if any(record.compress_type != zipfile.ZIP_STORED for record in records):
                raise ValueError("it holds compressed records, which torch.save does not write")
            if sum(record.file_size for record in records) > size:
                raise ValueError(f"its records claim more than its {size} bytes")
            pickles = [record for record in records if record.filename.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ValueError("it is not an archive written by torch.save")
            if pickles[0].file_size > _MAX_PICKLE_BYTES:
                raise ModelFileError(
                    f"{name} is not a model file written by DisentangledVAE.save: its pickled "
                    f"structure takes {pickles[0].file_size / 2**20:.1f} MiB, more than the "
                    f"{_MAX_PICKLE_BYTES // 2**20} MiB that a model file's metadata and "
                    "tensor names may take."
                )
            with archive.open(pickles[0]) as record:
                try:
                    pickled = record.read()
                except zipfile.BadZipFile as exc:  # its CRC does not match
                    raise _corrupted(name) from exc
        _count_pickle_operations(name, pickled)
    except (ModelFileError, PermissionError):
        raise
    except Exception as exc:
        raise _unreadable(name, exc) from exc


def _count_pickle_operations(name, pickled):
    """Refuse a pickle of more than :data:`_MAX_PICKLE_OPERATIONS` operations.

    ``pickletools.genops`` reads a pickle without building anything, about
    ten times faster than torch's weights-only unpickler builds it.
    """
    for count, _ in enumerate(pickletools.genops(pickled), start=1):
        if count > _MAX_PICKLE_OPERATIONS:
            raise ModelFileError(
                f"{name} is not a model file written by DisentangledVAE.save: its pickle has "
                f"more than {_MAX_PICKLE_OPERATIONS:,} operations, and a model file's takes "
                "about 30 per tensor."
            )


def _unreadable(name, exc):
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelFileError(
        f"{name} is not a readable skvae model file: it is truncated or "
        "corrupted, or holds Python objects other than tensors and plain data, "
        f"which load refuses to unpickle ({reason})."
    )


def _corrupted(name):
    return ModelFileError(
        f"{name} is corrupted: its content does not match its checksum. Use an "
        "intact copy of the file."
    )


def _parse_metadata(text):
    """The JSON ``text`` of a file's metadata, parsed within the module's bounds."""
    if not isinstance(text, str):
        raise TypeError(f"its metadata is a {type(text).__name__}, not JSON text")
    problem = _metadata_size_problem(text)
    if problem is not None:
        raise ValueError(f"its metadata is {problem}")
    try:
        metadata = json.loads(text)
    except RecursionError:
        raise ValueError(f"its metadata is nested more than {_MAX_NESTING} levels deep") from None
    _check_nesting(metadata, "its metadata")
    return metadata


def _metadata_size_problem(text):
    """Why the JSON ``text`` is more metadata than a model file may hold, or None."""
    if len(text) > _MAX_METADATA_CHARS:
        return f"{len(text):,} characters of JSON text, more than the {_MAX_METADATA_CHARS:,} a model file may hold"
    # Every value but the first of a list or dict follows a comma: this
    # counts the values json.loads would create, and a few more.
    n_values = text.count(",") + text.count("[") + text.count("{")
    if n_values > _MAX_METADATA_VALUES:
        return f"about {n_values:,} JSON values, more than the {_MAX_METADATA_VALUES:,} a model file may hold"
    return None


def _check_nesting(obj, what):
    """Refuse dicts, lists and tuples nested deeper than :data:`_MAX_NESTING`.

    Walks one level at a time, without recursion, so that a deep ``obj``
    is refused instead of exhausting the stack. The items of each level are
    gathered and filtered by C-level iterators (a Python loop over the
    ~500,000 values that the metadata may hold takes half a second).
    """
    level = [obj]
    for _ in range(_MAX_NESTING):
        dicts = [container for container in level if isinstance(container, dict)]
        sequences = [container for container in level if not isinstance(container, dict)]
        items = list(
            itertools.chain(
                itertools.chain.from_iterable(map(dict.keys, dicts)),
                itertools.chain.from_iterable(map(dict.values, dicts)),
                itertools.chain.from_iterable(sequences),
            )
        )
        level = list(itertools.compress(items, map(isinstance, items, itertools.repeat((dict, list, tuple)))))
        if not level:
            return
    raise ValueError(f"{what} is nested more than {_MAX_NESTING} levels deep")


def _check_state_layout(state):
    """Refuse a ``state`` that is not the dicts of tensors :func:`save` writes."""
    if not isinstance(state, dict):
        raise TypeError(f"its state is a {type(state).__name__}, not a dict")
    for part in ("module", "rng", "arrays"):
        tensors = state[part]
        if not (
            isinstance(tensors, dict)
            and all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in tensors.items())
        ):
            raise TypeError(f"its state[{part!r}] is not a dict of named tensors")
    optimizer = state["optimizer"]
    if not (
        isinstance(optimizer, dict)
        and isinstance(optimizer["state"], dict)
        and isinstance(optimizer["param_groups"], list)
        and all(
            isinstance(values, dict) and all(isinstance(value, torch.Tensor) for value in values.values())
            for values in optimizer["state"].values()
        )
    ):
        raise TypeError("its optimizer state is not a torch optimizer's state dict")
    # The generator states: torch's CPU generator's, and on a GPU the CUDA one's.
    rng = state["rng"]
    cpu_state = torch.Generator().get_state()
    if set(rng) - {"cpu", "cuda"}:
        raise ValueError(f"its random state names generators {sorted(rng)}; only 'cpu' and 'cuda' exist")
    _check_tensor("the CPU generator state", rng["cpu"], cpu_state.shape, cpu_state.dtype)
    if "cuda" in rng and (rng["cuda"].dtype != torch.uint8 or rng["cuda"].dim() != 1):
        raise ValueError("its CUDA generator state is not a 1-D uint8 tensor")


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
    if isinstance(value, dict):
        pairs = [[_encode(key, f"{name}[{key!r}]", arrays), _encode(item, f"{name}[{key!r}]", arrays)]
                 for key, item in value.items()]
        return {"__dict__": pairs}
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
    if "__dict__" in value:
        return {_decode(key, arrays): _decode(item, arrays) for key, item in value["__dict__"]}
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
