"""Exporting a traced function to ONNX, the graph format onnxruntime runs and Netron draws.

``export_onnx(fn, inputs, "f.onnx")`` runs ``fn`` once on ``inputs``, walks the graph the
engine recorded (the same one backward walks) in creation order, and writes one ONNX node
(or a small fixed group) per op. How an op exports is part of the op, next to its
``rule`` and ``symbol``: an ``onnx`` function on its class,

    class Tanh(Function):
        rule = "d(tanh a)/da = 1 - tanh²a"
        symbol = "tanh"
        onnx = onnx_node("Tanh")           # one ONNX node of that type, inputs in order

or, for an op with options, a static method ``onnx(ctx, g, inputs, out)`` that reads
what ``forward`` stored on ``ctx`` (an axis, a stride), adds nodes with ``g.node(...)``
and returns the name of the value that holds the op's result. ``inputs`` are the ONNX
names of the op's positional inputs (None for an input passed as None), ``out`` the
array the op computed (for its shape and dtype). An op without ``onnx`` stops the export
with an error naming it.

Tensors that require grad and come from outside (parameters) become initializers, named
as the caller says (``nn.export_onnx`` passes the ``state_dict`` names); plain numbers
and arrays passed to ops become initializers too. The first axis of every input is the
batch axis: it is left symbolic, so the file runs on any batch size.

The ``onnx`` package builds the file (``pip install chainrule[onnx]``); it is imported
only when exporting.
"""

from __future__ import annotations

import numpy as np

__all__ = ["export_onnx", "to_onnx", "onnx_node", "OnnxGraph", "OnnxExportError", "OPSET"]

OPSET = 17
"""The ONNX operator set the files use (ONNX 1.12 and later, onnxruntime 1.12 and later)."""


class OnnxExportError(NotImplementedError):
    """An op, or a use of one, that ``export_onnx`` cannot write as ONNX."""


def onnx_node(op_type: str, **attributes):
    """An op's ``onnx``: one ONNX node of type ``op_type`` taking the op's inputs in
    order, with fixed ``attributes``."""

    def onnx(ctx, g, inputs, out):
        return g.node(op_type, inputs, **attributes)

    onnx.__doc__ = f"One ONNX {op_type} node."
    return onnx


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs the onnx package to build the file: "
                          "pip install 'chainrule[onnx]' (or pip install onnx)") from None
    return onnx


class OnnxGraph:
    """The graph being built: what an op's ``onnx`` function calls.

    - ``g.node(op_type, inputs, **attributes)``: add a node, return its output's name;
    - ``g.const(value, dtype=None)``: a constant (an initializer), return its name;
    - ``g.ints(values)``: a 1-D int64 constant (shapes, axes), return its name;
    - ``g.value(array)``: the name of an array that entered the graph (an integer
      input, such as an embedding's indices), else a constant of it;
    - ``g.reshape(x, in_shape, out_shape)``: a Reshape that keeps the batch axis free;
    - ``g.batch``: the example's batch size (None when the batch axis is fixed).
    """

    def __init__(self, onnx, batch, dtype=None):
        self._onnx = onnx
        self.batch = batch
        self.dtype = dtype  # the floating-point dtype of the file (None: as traced)
        self.nodes, self.initializers = [], []
        self._names: set = set()
        self._inputs: dict = {}  # id(array) -> (array, graph input name)
        self.prefix = ""  # the name scope of the op being exported ("layers.0.")
        self._buffers: dict = {}  # id(array) -> name, for arrays that enter as constants

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def node(self, op_type: str, inputs, **attributes) -> str:
        names = ["" if i is None else i for i in inputs]
        while names and names[-1] == "":  # optional inputs left out at the end
            names.pop()
        out = self.fresh(self.prefix + op_type)
        self.nodes.append(self._onnx.helper.make_node(op_type, names, [out], name=out,
                                                      **attributes))
        return out

    def const(self, value, dtype=None, name: str | None = None) -> str:
        arr = np.asarray(value, dtype=dtype)
        if self.dtype is not None and arr.dtype.kind == "f":
            arr = arr.astype(self.dtype)
        if arr.dtype.kind == "f" and arr.dtype.itemsize == 2:
            raise OnnxExportError("export_onnx: float16 constants are not supported")
        name = self.fresh(name or self.prefix + "const")
        # (np.ascontiguousarray would make a 0-d constant 1-d)
        tensor = self._onnx.numpy_helper.from_array(np.array(arr, order="C"), name)
        self.initializers.append(tensor)
        return name

    def ints(self, values) -> str:
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1))

    def value(self, arr) -> str:
        entry = self._inputs.get(id(arr))
        if entry is not None and entry[0] is arr:
            return entry[1]
        return self.const(arr)

    def reshape(self, x: str, in_shape, out_shape) -> str:
        """Reshape ``x`` to ``out_shape``; where the first axis is kept (the batch axis),
        the target says "as the input" (0), so any batch size fits."""
        target = list(out_shape)
        if target and in_shape and target[0] == in_shape[0]:
            target[0] = 0
        elif len(target) == 1:
            target[0] = -1
        return self.node("Reshape", [x, self.ints(target)])


def to_onnx(fn, inputs, *, params=None, input_names=None, output_names=None,
            dynamic_batch: bool = True, dtype=None, opset: int = OPSET,
            graph_name: str = "chainrule"):
    """Trace ``fn(*inputs)`` once and return the ONNX ``ModelProto`` of its graph (see
    ``export_onnx``). ``params``: ``{name: tensor}``, the names of the parameters and
    buffers the function reads (their initializers take them)."""
    onnx = _import_onnx()
    from .engine import topological_order
    from .function import enable_grad
    from .tensor import Tensor

    if isinstance(inputs, (Tensor, np.ndarray)) or not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    if not inputs:
        raise ValueError("export_onnx: give at least one example input")
    traced, arrays = [], []
    for x in inputs:
        arr = x._data if isinstance(x, Tensor) else np.asarray(x)
        if arr.dtype.kind == "f":  # a fresh leaf that records every op it enters
            t = Tensor(arr, requires_grad=True)
            traced.append(t)
            arrays.append(t._data)
        elif arr.dtype.kind in "biu":  # indices: ops read them as constants
            traced.append(x if isinstance(x, Tensor) else arr)
            arrays.append(arr)
        else:
            raise TypeError(f"export_onnx: example input of dtype {arr.dtype}: expected "
                            "floating-point values or integer indices")
    input_names = list(input_names or (["input"] if len(inputs) == 1 else
                                       [f"input{i}" for i in range(len(inputs))]))
    if len(input_names) != len(inputs):
        raise ValueError(f"export_onnx: {len(input_names)} input_names for "
                         f"{len(inputs)} inputs")
    batch = None
    if dynamic_batch:
        sizes = {a.shape[0] for a in arrays if a.ndim}
        batch = sizes.pop() if len(sizes) == 1 else None
        if batch is None:
            raise ValueError("export_onnx: dynamic_batch needs every input to have the "
                             "same first (batch) axis; pass dynamic_batch=False")

    with enable_grad():
        result = fn(*traced)
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    for i, t in enumerate(outputs):
        if not isinstance(t, Tensor) or t._ctx is None:
            raise OnnxExportError(
                f"export_onnx: output {i} of the function is not computed from its inputs "
                "or parameters through recorded ops (a constant, or computed under "
                "no_grad or on .numpy() values); nothing to export")
    output_names = list(output_names or (["output"] if len(outputs) == 1 else
                                         [f"output{i}" for i in range(len(outputs))]))

    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"export_onnx: dtype must be a floating-point dtype, got {dtype}")
    g = OnnxGraph(onnx, batch, dtype)
    names = {id(t): name for name, t in (params or {}).items()}
    g._buffers = {id(t._data): name for name, t in (params or {}).items()}
    for name in input_names + output_names:
        g.fresh(name)
    named = {}  # id(tensor) -> ONNX value name
    for t, a, name in zip(traced, arrays, input_names):
        g._inputs[id(a)] = (a, name)
        if isinstance(t, Tensor):
            named[id(t)] = name
    order = sorted({t for out in outputs for t in topological_order(out)},
                   key=lambda t: t._seq)
    for t in order:
        if id(t) in named:
            continue
        ctx = t._ctx
        if ctx is None:  # a parameter (or another leaf that requires grad)
            g.prefix = ""
            label = names.get(id(t)) or getattr(t, "name", None) or "weight"
            named[id(t)] = g.const(t._data, name=label)
            continue
        export = getattr(type(ctx), "onnx", None)
        if export is None:
            raise OnnxExportError(
                f"export_onnx: the op {ctx.name} has no ONNX export. Give its class an "
                f"`onnx` attribute next to its rule and symbol: `onnx = "
                f"onnx_node(\"OnnxOpType\")` when one ONNX node computes it, or a static "
                f"method onnx(ctx, g, inputs, out) (see autograd/export.py); or compute "
                f"this part outside the exported function")
        g.prefix = f"{ctx.scope}." if ctx.scope else ""
        names_in = [_operand(g, ctx, p, t._data, named) for p in ctx.parents]
        named[id(t)] = export(ctx, g, names_in, t._data)

    graph_outputs = [named[id(t)] for t in outputs]
    renames = {}
    for value, want in zip(graph_outputs, output_names):
        if value in renames or value in input_names or not any(
                value in n.output for n in g.nodes):
            g.prefix = ""
            g.nodes.append(onnx.helper.make_node("Identity", [value], [want],
                                                 name=g.fresh("Identity")))
        else:
            renames[value] = want
    for n in g.nodes:
        for field in (n.input, n.output):
            for i, v in enumerate(field):
                if v in renames:
                    field[i] = renames[v]

    def info(name, arr):
        kind = arr.dtype if dtype is None or arr.dtype.kind != "f" else dtype
        elem = onnx.helper.np_dtype_to_tensor_dtype(kind)
        shape = [("batch" if (k == 0 and batch is not None and d == batch) else d)
                 for k, d in enumerate(arr.shape)]
        return onnx.helper.make_tensor_value_info(name, elem, shape)

    graph = onnx.helper.make_graph(
        g.nodes, graph_name,
        [info(n, a) for n, a in zip(input_names, arrays)],
        [info(n, t._data) for n, t in zip(output_names, outputs)],
        initializer=g.initializers)
    from . import __version__

    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="chainrule", producer_version=__version__)
    model.ir_version = 8  # what opset 17 needs; older runtimes read it
    onnx.checker.check_model(model, full_check=True)
    return model


def _operand(g: OnnxGraph, ctx, p, out: np.ndarray, named: dict):
    """The ONNX name of one positional input ``p`` of ``ctx``."""
    from .tensor import Tensor

    if p is None:
        return None
    if isinstance(p, Tensor):
        if id(p) in named:
            return named[id(p)]
        p = p._data  # a tensor that needs no gradient: its values are a constant
    entry = g._inputs.get(id(p))
    if entry is not None and entry[0] is p:
        return entry[1]
    arr = np.asarray(p)
    base = arr
    while base is not None and id(base) not in g._buffers:  # a view of a named buffer
        base = base.base if isinstance(base, np.ndarray) else None
    label = None if base is None else g._buffers[id(base)]
    if arr.dtype.kind in "biuf" and out.dtype.kind == "f" and arr.dtype != np.bool_:
        arr = arr.astype(out.dtype)  # numbers take the result's dtype, as in the op
    if (g.batch not in (None, 1) and arr.ndim and arr.shape[0] == g.batch
            and arr.shape == out.shape):
        raise OnnxExportError(
            f"export_onnx: {ctx.name} reads an array of shape {arr.shape} (as large as the "
            f"batch) that is not computed by recorded ops: it was made from the example's "
            f"values outside the graph (a mask from x.numpy() > 0, or dropout in "
            f"training) and would be frozen into the file. "
            f"Use ops on tensors instead (ag.maximum, x.relu()), or call model.eval()")
    return g.const(arr, name=label)


def export_onnx(fn, inputs, path, **options) -> str:
    """Write ``fn(*inputs)`` as an ONNX file at ``path`` (atomically) and return ``path``.

    ``fn`` is run once on ``inputs`` (a Tensor or array, or a tuple of them; float inputs
    become graph inputs, integer ones such as indices too); the ops it records become
    the graph, one ONNX node (or a small fixed group) per op. Options:
    ``input_names`` / ``output_names``, ``dynamic_batch`` (True: the first axis of
    inputs and outputs is free), ``dtype`` (e.g. "float32": the file computes in that
    floating-point dtype, whatever the trace's; onnxruntime has no float64 convolution),
    ``opset`` (17), ``params`` ({name: tensor}: the
    names of the parameters and buffers ``fn`` reads, for their initializers). The
    model passes ``onnx.checker`` before it is written.
    Open the file in Netron (https://netron.app, or ``pip install netron; netron
    f.onnx``) to see the graph; run it with onnxruntime.
    """
    from .viz.files import write_file

    model = to_onnx(fn, inputs, **options)
    import os

    return write_file(os.fspath(path), model.SerializeToString())
