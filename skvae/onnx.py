"""Export a fitted :class:`~skvae.DisentangledVAE` to ONNX, to run without torch.

:func:`to_onnx` turns the encoder (``transform``), the latent classifier
(``predict_proba``, or ``predict``'s labels with the probabilities) or the
decoder (``inverse_transform``) into an ONNX graph with a dynamic batch
dimension, for ``onnxruntime`` or any other ONNX runtime. Importing this
module also registers a converter with ``skl2onnx``, so that a
:class:`~sklearn.pipeline.Pipeline` holding a fitted ``DisentangledVAE``
converts whole with ``skl2onnx.to_onnx`` or ``skl2onnx.convert_sklearn``.

Needs the ``onnx`` extra: ``pip install skvae[onnx]``.

The graphs come from ``torch.onnx.export`` with its ``torch.export``-based
exporter (``dynamo=True``, torch's default since 2.9), which needs
``onnxscript``: the TorchScript-based exporter (``dynamo=False``) also
exports these networks, but it warns that it is deprecated and will be
removed. The new exporter writes opset 18 and newer.
"""

import copy
import inspect
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .estimator import DisentangledVAE

try:
    import onnx
    import onnxscript  # noqa: F401  (torch.onnx's exporter translates with it)
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils import check_input_and_output_types
    from skl2onnx.helpers.integration import add_onnx_graph
except ImportError as exc:
    raise ImportError(
        f"skvae.onnx needs onnx, onnxscript and skl2onnx ({exc}); install them with "
        "pip install skvae[onnx]"
    ) from exc

if "dynamo" not in inspect.signature(torch.onnx.export).parameters:
    raise ImportError(
        f"skvae.onnx needs torch.onnx's torch.export-based exporter (torch 2.6 or newer); "
        f"this is torch {torch.__version__}. Upgrade it with pip install skvae[onnx]"
    )

__all__ = ["to_onnx"]

# The methods to_onnx exports, and the names of their graphs' outputs.
_OUTPUT_NAMES = {
    "transform": ("Z",),
    "predict_proba": ("probabilities",),
    "predict": ("label", "probabilities"),
    "inverse_transform": ("X",),
}

# torch's exporter produces opset 18 and newer only.
_MIN_OPSET = 18

# The operator's name in skl2onnx's registry.
_ALIAS = "SkvaeDisentangledVAE"

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class _LeakyReLU(nn.Module):
    """:class:`torch.nn.LeakyReLU` as ``where(x > 0, x, slope * x)``, the same values.

    onnxruntime's ``LeakyRelu`` runs in float32 only, and the latent
    classifier runs in float64.
    """

    def __init__(self, negative_slope):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return torch.where(x > 0, x, x * self.negative_slope)


def _float64_head(module):
    """The module's latent classifier in float64, in layers onnxruntime runs in float64."""
    head = module.float64_head()
    for parent in list(head.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.LeakyReLU):
                setattr(parent, name, _LeakyReLU(child.negative_slope))
    return head


class _Graph(nn.Module):
    """One public method of a fitted module, from rows of ``input_dtype`` on.

    The rows are rounded to float32, in which the network computes, as
    :func:`skvae._inference.run_blocks` does; results of the encoder or the
    decoder come back in ``input_dtype``, as those methods return them.
    The latent classifier runs in float64 on the latent means, as
    :func:`skvae._inference.latent_proba` runs it, its probabilities cast
    to ``proba_dtype``; ``predict`` returns the index of the most probable
    class too, taken before that cast.
    """

    def __init__(self, module, method, input_dtype, proba_dtype):
        super().__init__()
        self.method, self.input_dtype, self.proba_dtype = method, input_dtype, proba_dtype
        # The exporter leaves out the weights a method does not use.
        self.vae = module
        self.head = _float64_head(module) if method in ("predict", "predict_proba") else None

    def forward(self, rows):
        rows = rows.to(torch.float32)
        if self.method == "inverse_transform":
            return self.vae.decode(rows).to(self.input_dtype)
        means = self.vae.encode(rows)[0]
        if self.method == "transform":
            return means.to(self.input_dtype)
        proba = torch.softmax(self.head(means.to(torch.float64)), dim=1)
        if self.method == "predict_proba":
            return proba.to(self.proba_dtype)
        return proba.argmax(dim=1), proba.to(self.proba_dtype)


def _label_tensor(classes):
    """``classes`` as an ONNX tensor: int64 for integer or bool labels, double or string."""
    if classes.dtype.kind in "iub":
        return onnx.numpy_helper.from_array(classes.astype(np.int64), "classes")
    if classes.dtype.kind == "f":
        return onnx.numpy_helper.from_array(classes.astype(np.float64), "classes")
    if all(isinstance(label, str) for label in classes):
        return onnx.helper.make_tensor("classes", onnx.TensorProto.STRING, [len(classes)], [c.encode() for c in classes])
    raise ValueError(
        f"This DisentangledVAE's classes_ ({classes.tolist()!r}) are neither numbers nor "
        "strings; ONNX labels are tensors of one of those. Export method='predict_proba' "
        "and look the labels up in classes_, or refit with y of ints or strings."
    )


def _check_estimator(estimator, method):
    if not isinstance(estimator, DisentangledVAE):
        raise TypeError(f"to_onnx exports a fitted DisentangledVAE; got {type(estimator).__name__}.")
    if method not in _OUTPUT_NAMES:
        raise ValueError(f"method must be one of {sorted(_OUTPUT_NAMES)}; got {method!r}.")
    check_is_fitted(estimator)
    if method in ("predict", "predict_proba") and not hasattr(estimator, "classes_"):
        raise ValueError(
            f"This DisentangledVAE was fitted without labels (a plain VAE), so it has no "
            f"latent classifier and no {method} to export; method='transform' and "
            "method='inverse_transform' export its encoder and decoder."
        )
    if estimator.setup_.precision != "32":
        warnings.warn(
            f"This DisentangledVAE computes with precision={estimator.setup_.precision!r}; the "
            "ONNX graph computes in float32, so its outputs differ from the estimator's by "
            "the rounding of that precision (float32's results are the more exact).",
            UserWarning,
            stacklevel=3,
        )


def _export(estimator, method, input_dtype, proba_dtype, target_opset):
    """The ONNX model of ``method`` (see :func:`to_onnx`)."""
    input_dtype = _TORCH_DTYPES[np.dtype(input_dtype)]
    # A CPU copy: the estimator may live on a GPU, and stays as it is.
    module = copy.deepcopy(estimator.net_.module_).to("cpu", torch.float32).eval()
    graph = _Graph(module, method, input_dtype, _TORCH_DTYPES[np.dtype(proba_dtype)]).eval()
    n_columns = estimator.setup_.n_components if method == "inverse_transform" else estimator.n_features_in_
    outputs = _OUTPUT_NAMES[method]
    # Two example rows: torch.export specialises a dimension of size 0 or 1.
    example = torch.zeros((2, n_columns), dtype=input_dtype)
    program = torch.onnx.export(
        graph,
        (example,),
        input_names=["Z" if method == "inverse_transform" else "X"],
        output_names=["label_index", "probabilities"] if method == "predict" else list(outputs),
        opset_version=target_opset,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        dynamo=True,
        verbose=False,
    )
    model = program.model_proto
    if method == "predict":
        # ONNX tensors hold strings, torch's do not: the labels are looked up in the graph.
        classes, graph_proto = _label_tensor(estimator.classes_), model.graph
        graph_proto.initializer.append(classes)
        graph_proto.node.append(
            onnx.helper.make_node("Gather", [classes.name, "label_index"], ["label"], name="label_of_index", axis=0)
        )
        graph_proto.output.remove(next(output for output in graph_proto.output if output.name == "label_index"))
        graph_proto.output.insert(0, onnx.helper.make_tensor_value_info("label", classes.data_type, ["batch"]))
    model.producer_name = "skvae"
    model.doc_string = f"DisentangledVAE.{method}, exported by skvae.onnx.to_onnx"
    onnx.checker.check_model(model)
    return model


def to_onnx(estimator, method="transform", *, dtype=np.float32, target_opset=None):
    """An ONNX graph of one of a fitted DisentangledVAE's methods.

    The graph takes a batch of any number of rows (its first dimension is
    dynamic) and returns what the method returns for them: run it with
    ``onnxruntime.InferenceSession(model.SerializeToString()).run(None,
    {"X": X})`` (``{"Z": Z}`` for ``inverse_transform``). Its outputs match
    the estimator's to float32's rounding (within 1e-5 on the tests'
    models): the network computes in float32 and the latent classifier in
    float64, as the estimator does. Unlike the estimator, the graph does
    not check its input: NaN, or values beyond float32's range, which the
    estimator refuses, come out as NaN or infinity. :doc:`/deployment`
    exports a model, runs it in onnxruntime and converts a whole pipeline
    with skl2onnx.

    Parameters
    ----------
    estimator : DisentangledVAE
        A fitted estimator.
    method : {"transform", "predict_proba", "predict", "inverse_transform"}, default="transform"
        What the graph computes, and its output names:

        - ``"transform"``: the latent means ``Z`` of rows ``X``.
        - ``"predict_proba"``: the class ``probabilities`` (float64, in the
          order of ``classes_``) of rows ``X``.
        - ``"predict"``: their ``label`` (int64 for integer labels, or
          string or double, as ``classes_`` holds them) and their
          ``probabilities``, the two outputs of skl2onnx's classifiers.
        - ``"inverse_transform"``: rows ``X`` decoded from latent points
          ``Z``.

        ``"predict_proba"`` and ``"predict"`` need a model fitted with
        labels.
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Type of the graph's input, and of the output of ``"transform"`` and
        ``"inverse_transform"``. The network computes in float32 either
        way, as the estimator does; float64 graphs return what the
        estimator returns for float64 input.
    target_opset : int, default=None
        ONNX opset of the graph, 18 or newer; None lets torch choose.

    Returns
    -------
    model : onnx.ModelProto
        The graph, checked with ``onnx.checker``; save it with
        ``onnx.save(model, path)``.

    Warns
    -----
    UserWarning
        For a model fitted with mixed precision (``precision`` not ``"32"``),
        whose outputs the float32 graph does not reproduce to 1e-5.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> from skvae import DisentangledVAE
    >>> from skvae.onnx import to_onnx
    >>> X = np.random.default_rng(0).random((40, 6)).astype(np.float32)
    >>> vae = DisentangledVAE(hidden_dims=(8,), max_epochs=2, random_state=0).fit(X)
    >>> session = onnxruntime.InferenceSession(to_onnx(vae).SerializeToString())
    >>> [Z] = session.run(None, {"X": X})
    >>> bool(np.abs(Z - vae.transform(X)).max() < 1e-5)
    True
    """
    if np.dtype(dtype) not in _TORCH_DTYPES:
        raise ValueError(f"dtype must be numpy.float32 or numpy.float64; got {dtype!r}.")
    if target_opset is not None and target_opset < _MIN_OPSET:
        raise ValueError(f"target_opset must be {_MIN_OPSET} or newer (torch.onnx exports no older); got {target_opset}.")
    _check_estimator(estimator, method)
    return _export(estimator, method, dtype, np.float64, target_opset)


# ---------------------------------------------------------------- skl2onnx


def _parse(scope, model, inputs, custom_parsers=None):
    """Declare the outputs of a DisentangledVAE: its latent means, or a classifier's two."""
    # skl2onnx refuses values of the option that the registration below does not list.
    method = scope.get_options(model, {"method": "transform"})["method"]
    _check_estimator(model, method)
    operator = scope.declare_local_operator(_ALIAS, model)
    operator.inputs = inputs
    if method == "transform":
        operator.outputs.append(scope.declare_local_variable("variable", FloatTensorType()))
    else:
        operator.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
        operator.outputs.append(scope.declare_local_variable("probabilities", FloatTensorType()))
    return operator.outputs


# The skl2onnx type of each type of label tensor (see _label_tensor).
_LABEL_TYPES = {
    onnx.TensorProto.INT64: Int64TensorType,
    onnx.TensorProto.DOUBLE: DoubleTensorType,
    onnx.TensorProto.STRING: StringTensorType,
}


def _calculate_shapes(operator):
    check_input_and_output_types(operator, good_input_types=[FloatTensorType, DoubleTensorType])
    model = operator.raw_operator
    input_type = type(operator.inputs[0].type)
    n_rows = operator.inputs[0].get_first_dimension()
    if len(operator.outputs) == 1:
        operator.outputs[0].type = input_type([n_rows, model.setup_.n_components])
        return
    operator.outputs[0].type = _LABEL_TYPES[_label_tensor(model.classes_).data_type]([n_rows])
    operator.outputs[1].type = input_type([n_rows, len(model.classes_)])


def _convert(scope, operator, container):
    model = operator.raw_operator
    method = "transform" if len(operator.outputs) == 1 else "predict"
    input_dtype = np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) else np.float32
    if container.target_opset < _MIN_OPSET:
        raise ValueError(
            f"A DisentangledVAE converts to opset {_MIN_OPSET} or newer (torch.onnx exports no "
            f"older); got target_opset={container.target_opset}."
        )
    # Probabilities in the input's type, as skl2onnx's classifiers give them.
    add_onnx_graph(scope, operator, container, _export(model, method, input_dtype, input_dtype, container.target_opset))


update_registered_converter(
    DisentangledVAE,
    _ALIAS,
    _calculate_shapes,
    _convert,
    parser=_parse,
    # skl2onnx's Pipeline parser asks every classifier in it for a ZipMap;
    # the probabilities stay a tensor (as with zipmap=False) whatever it asks.
    options={"method": ["transform", "predict"], "zipmap": [True, False]},
    overwrite=True,
)
