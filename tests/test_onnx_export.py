"""nn.export_onnx / ag.export_onnx: checked by onnx.checker and run by onnxruntime on
fresh inputs with another batch size, against chainrule's own outputs."""

import os

import numpy as np
import pytest

import autograd as ag
import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

f32 = np.float32


def _run(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _check(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    return model


def _op_types(model):
    return [n.op_type for n in model.graph.node]


def _batch_dim(value_info):
    return value_info.type.tensor_type.shape.dim[0].dim_param


def test_case_study_model(tmp_path):
    X, _ = nn.data.make_case_study(n=64, d=10, seed=0)
    X = X.astype(f32)
    model = nn.MLP([10, 5, 5, 1], activation="sigmoid", output_activation="sigmoid",
                   dtype=f32, rng=0)
    path = tmp_path / "case_study.onnx"
    assert nn.export_onnx(model, X[:8], path) == str(path)
    proto = _check(path)
    # one node per op: the fused Linear is one Gemm
    assert _op_types(proto) == ["Gemm", "Sigmoid"] * 3
    assert [i.name for i in proto.graph.initializer] == list(model.state_dict())
    assert _batch_dim(proto.graph.input[0]) == "batch"
    assert _batch_dim(proto.graph.output[0]) == "batch"
    (got,) = _run(path, {"input": X[8:45]})  # another batch size
    assert got.dtype == f32
    np.testing.assert_allclose(got, model(X[8:45]).data, rtol=1e-5, atol=1e-5)


def _cnn():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, dtype=f32), nn.BatchNorm2d(4, dtype=f32), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=2, padding=1, dtype=f32),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6, 3, dtype=f32))


def test_cnn_with_batch_norm_in_eval_mode(tmp_path):
    rng = np.random.default_rng(0)
    nn.manual_seed(0)
    model = _cnn()
    for _ in range(3):  # move the running statistics away from 0 and 1
        model(rng.standard_normal((6, 2, 8, 8)).astype(f32))
    assert model.training
    before = model.state_dict()
    path = tmp_path / "cnn.onnx"
    nn.export_onnx(model, rng.standard_normal((4, 2, 8, 8)).astype(f32), path)
    assert model.training  # its mode is restored, its statistics untouched
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    proto = _check(path)
    types = _op_types(proto)
    for op in ("Conv", "MaxPool", "AveragePool", "Relu", "Gemm", "Reshape"):
        assert op in types
    assert {"0.weight", "1.weight", "1.running_mean", "7.bias"} <= {
        i.name for i in proto.graph.initializer}
    model.eval()
    x = rng.standard_normal((11, 2, 8, 8)).astype(f32)
    (got,) = _run(path, {"input": x})
    np.testing.assert_allclose(got, model(x).data, rtol=1e-5, atol=1e-5)


def test_language_model_takes_integer_indices(tmp_path):
    rng = np.random.default_rng(0)
    nn.manual_seed(0)
    V, T = 13, 3
    model = nn.Sequential(nn.Embedding(V, 4, dtype=f32), nn.Flatten(),
                          nn.Linear(T * 4, 8, dtype=f32), nn.BatchNorm1d(8, dtype=f32),
                          nn.Tanh(), nn.Linear(8, V, dtype=f32))
    for _ in range(3):
        model(rng.integers(0, V, (10, T)))
    path = tmp_path / "lm.onnx"
    nn.export_onnx(model, rng.integers(0, V, (4, T)), path)
    proto = _check(path)
    assert _op_types(proto)[0] == "Gather"
    model.eval()
    idx = rng.integers(0, V, (9, T))
    (got,) = _run(path, {"input": idx})
    np.testing.assert_allclose(got, model(idx).data, rtol=1e-5, atol=1e-5)


def test_traced_function(tmp_path):
    rng = np.random.default_rng(0)
    w = ag.Tensor(rng.standard_normal((4, 3)).astype(f32), requires_grad=True)

    def f(x, y):
        h = (x @ w).tanh().clip(-0.5, 0.9) * 2.0 - y.T.reshape(-1, 3)
        scores = ag.concat([h.softmax(axis=1), h.log_softmax(axis=-1).exp()], axis=1)
        pair = ag.stack([h, h.unsqueeze(0).squeeze(0) ** 2], axis=-1).min(axis=2)
        total = scores.sum(axis=1, keepdims=True) + h.max(axis=1, keepdims=True) + (
            pair.logsumexp(axis=1, keepdims=True) - ag.minimum(pair, h).mean(axis=1)[:, None])
        return total / (h.abs() + 1).mean(axis=1, keepdims=True).sqrt(), ag.maximum(h, 0.1)

    x, y = rng.standard_normal((5, 4)).astype(f32), rng.standard_normal((3, 5)).astype(f32)
    path = tmp_path / "f.onnx"
    ag.export_onnx(f, (x, y), path, input_names=["x", "y"], output_names=["a", "b"],
                   dynamic_batch=False, params={"w": w})
    proto = _check(path)
    assert "w" in {i.name for i in proto.graph.initializer}
    x2, y2 = rng.standard_normal((5, 4)).astype(f32), rng.standard_normal((3, 5)).astype(f32)
    got = _run(path, {"x": x2, "y": y2})
    want = f(ag.Tensor(x2), ag.Tensor(y2))
    for g, w_ in zip(got, want):
        np.testing.assert_allclose(g, w_.data, rtol=1e-5, atol=1e-5)


class _Cube(ag.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a**3

    @staticmethod
    def backward(ctx, grad):
        return 3 * ctx.saved[0] ** 2 * grad


@pytest.mark.parametrize("index", [
    (slice(None), 0), (slice(None), slice(1, None)), (Ellipsis, slice(None, None, -2)),
    (slice(None), None, -1), (slice(None), slice(-3, -1), None), (Ellipsis, None),
    (slice(None), Ellipsis), (slice(1, None), slice(None, 2)),
])
def test_basic_indexing(tmp_path, index):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5)).astype(f32)
    path = tmp_path / "index.onnx"
    ag.export_onnx(lambda t: t[index] * 2.0, x, path, dynamic_batch=index[0] != slice(1, None))
    _check(path)
    x2 = x if index[0] == slice(1, None) else rng.standard_normal((7, 5)).astype(f32)
    (got,) = _run(path, {"input": x2})
    np.testing.assert_array_equal(got, x2[index] * 2.0)


def test_more_layers(tmp_path):
    # what a newer network adds: layer norm, GELU and SiLU, dropout (off in eval mode)
    rng = np.random.default_rng(2)
    nn.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 8, dtype=f32), nn.LayerNorm(8, dtype=f32), nn.GELU(),
                          nn.Linear(8, 8, dtype=f32), nn.SiLU(), nn.Dropout(0.3),
                          nn.Linear(8, 4, dtype=f32), nn.LogSoftmax(dim=1))
    path = tmp_path / "more.onnx"
    nn.export_onnx(model, rng.standard_normal((3, 6)).astype(f32), path)
    proto = _check(path)
    assert "Erf" in _op_types(proto) and "LogSoftmax" in _op_types(proto)
    model.eval()
    x = rng.standard_normal((10, 6)).astype(f32)
    (got,) = _run(path, {"input": x})
    np.testing.assert_allclose(got, model(x).data, rtol=1e-5, atol=1e-5)


def test_an_op_without_an_export_raises_naming_it(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"the old file")
    model = nn.Linear(3, 2, dtype=f32)
    with pytest.raises(ag.OnnxExportError, match=r"_Cube has no ONNX export.*onnx_node"):
        ag.export_onnx(lambda x: _Cube.apply(model(x)), np.ones((2, 3), f32), path)
    assert path.read_bytes() == b"the old file"  # nothing written, nothing left over
    assert os.listdir(tmp_path) == ["model.onnx"]
    # an op that exports but not with these options
    mask = np.array([[True, False, True]] * 2)
    with pytest.raises(ag.OnnxExportError,
                       match=r"getitem with index \[a bool array of shape \(2, 3\)\].*slices"):
        ag.export_onnx(lambda x: x[mask], np.ones((2, 3), f32), path)
    # and giving the op an export makes it work
    _Cube.onnx = staticmethod(lambda ctx, g, inputs, out: g.node(
        "Pow", [inputs[0], g.const(3.0, out.dtype)]))
    try:
        ag.export_onnx(lambda x: _Cube.apply(model(x)), np.ones((2, 3), f32), path)
    finally:
        del _Cube.onnx
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(f32)
    np.testing.assert_allclose(_run(path, {"input": x})[0], _Cube.apply(model(x)).data,
                               rtol=1e-5, atol=1e-5)


def test_values_frozen_from_the_example_are_refused(tmp_path):
    model = nn.Linear(3, 4, dtype=f32)

    def hand_made_leaky_relu(x):  # its mask is computed from the example's values
        h = model(x)
        return ag.where(h.numpy() > 0, h, h * 0.1)

    with pytest.raises(ag.OnnxExportError, match=r"Where.*\(4, 4\).*frozen"):
        ag.export_onnx(hand_made_leaky_relu, np.ones((4, 3), f32), tmp_path / "m.onnx")
    with pytest.raises(ag.OnnxExportError, match="not computed from its inputs"):
        ag.export_onnx(lambda x: ag.Tensor(np.ones(2)), np.ones((2, 3), f32),
                       tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_a_float64_model_exported_as_float32(tmp_path):
    # onnxruntime has no float64 convolution: dtype= casts the file, not the model
    rng = np.random.default_rng(1)
    nn.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 2))
    x = rng.standard_normal((4, 1, 6, 6))
    path = tmp_path / "m.onnx"
    nn.export_onnx(model, x, path, dtype="float32")
    proto = _check(path)
    assert {i.data_type for i in proto.graph.initializer if i.name.endswith("weight")} == {
        onnx.TensorProto.FLOAT}
    assert model.state_dict()["0.weight"].dtype == np.float64  # the model is unchanged
    (got,) = _run(path, {"input": x[:3].astype(f32)})
    assert got.dtype == f32
    np.testing.assert_allclose(got, model.eval()(x[:3]).data, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ reductions and more
# each traced on one batch size and run on another; indices enter as graph inputs

_IDX = np.array([[2, 0, 2, 1, 0]])  # (1, 5): broadcast along the batch by take_along_axis

_FUNCTIONS = {
    "var": (lambda t: t.var(axis=1), "ReduceMean"),
    "var over the batch, ddof=1": (lambda t: t.var(axis=0, ddof=1, keepdims=True),
                                   "ReduceSum"),
    "var of everything": (lambda t: t.var() * 1.0, "Div"),
    "std": (lambda t: t.std(axis=(1, 2), ddof=1, keepdims=True), "Sqrt"),
    "std of everything, ddof=1": (lambda t: t.std(ddof=1) + 0.0, "Sqrt"),
    "norm 2": (lambda t: t.norm(axis=-1), "ReduceL2"),
    "norm 1": (lambda t: t.norm(1, axis=(0, 2), keepdims=True), "ReduceL1"),
    "norm inf": (lambda t: t.norm(np.inf, axis=1), "ReduceMax"),
    "cumsum": (lambda t: t.cumsum(axis=2), "CumSum"),
    "cumsum over the batch": (lambda t: t.cumsum(axis=0), "CumSum"),
    "pad": (lambda t: ag.pad(t, ((0, 0), (1, 2), (0, 3)), value=-1.5), "Pad"),
    "pad with zeros": (lambda t: ag.pad(t, ((0, 0), (0, 0), (2, 0))), "Pad"),
    "take_along_axis": (lambda t: ag.take_along_axis(t, _IDX[:, None, :3], axis=2),
                        "GatherElements"),
    "einsum": (lambda t: ag.einsum("bij,bkj->bik", t, t * 2.0), "Einsum"),
    "einsum trace": (lambda t: ag.einsum("bii->b", t[:, :, :3]), "Einsum"),
    "sort": (lambda t: t.sort(axis=1).values * 1.0, "TopK"),
    "sort descending over the batch": (lambda t: t.sort(axis=0, descending=True).values,
                                       "TopK"),
    "topk": (lambda t: t.topk(2, dim=2).values, "TopK"),
    "topk smallest, k=1": (lambda t: t.topk(1, dim=-1, largest=False).values, "TopK"),
    "erf": (lambda t: t.erf(), "Erf"),
    "squeeze and unsqueeze": (lambda t: t[:, :1].squeeze(1).unsqueeze(2) * 2.0, "Reshape"),
}


@pytest.mark.parametrize("name", list(_FUNCTIONS))
def test_reductions_and_more(tmp_path, name):
    fn, op = _FUNCTIONS[name]
    rng = np.random.default_rng(7)
    path = tmp_path / "fn.onnx"
    ag.export_onnx(fn, rng.standard_normal((4, 3, 5)).astype(f32), path)
    assert op in _op_types(_check(path))
    x = rng.standard_normal((9, 3, 5)).astype(f32)
    (got,) = _run(path, {"input": x})
    want = fn(ag.Tensor(x)).data
    assert got.dtype == f32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gather_with_indices_as_an_input(tmp_path):
    rng = np.random.default_rng(8)
    index = rng.integers(0, 5, (4, 3))
    path = tmp_path / "gather.onnx"
    ag.export_onnx(lambda t, i: t.gather(1, i) * 3.0,
                   (rng.standard_normal((4, 5)).astype(f32), index), path)
    assert "GatherElements" in _op_types(_check(path))
    x, i = rng.standard_normal((6, 5)).astype(f32), rng.integers(0, 5, (6, 3))
    (got,) = _run(path, {"input0": x, "input1": i})
    np.testing.assert_allclose(got, np.take_along_axis(x, i, 1) * 3.0, rtol=1e-6)
    # indices frozen as a constant as long as the batch would not fit another batch
    with pytest.raises(ag.OnnxExportError, match=r"take_along_axis.*indices of shape "
                                                 r"\(4, 3\).*input"):
        ag.export_onnx(lambda t: t.gather(1, index), rng.standard_normal((4, 5)).astype(f32),
                       tmp_path / "frozen.onnx")


def test_einsum_that_broadcasts_a_length_1_axis_is_refused(tmp_path):
    w = ag.Tensor(np.ones((1, 5), f32), requires_grad=True)
    with pytest.raises(ag.OnnxExportError, match=r"einsum with a length-1 axis.*'ij'"):
        ag.export_onnx(lambda t: ag.einsum("ij,ij->i", t, w), np.ones((3, 5), f32),
                       tmp_path / "e.onnx")


def test_a_sort_of_tied_values_is_refused(tmp_path):
    with pytest.raises(ag.OnnxExportError, match="sort with an example whose values tie"):
        ag.export_onnx(lambda t: t.sort(axis=1).values, np.ones((3, 4), f32),
                       tmp_path / "s.onnx")


# ------------------------------------------------ leaky relu, elu and softplus: one node each


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 5.0)])
def test_leaky_relu_elu_softplus(tmp_path, beta, threshold):
    rng = np.random.default_rng(4)
    nn.manual_seed(4)
    model = nn.Sequential(nn.Linear(5, 8, dtype=f32), nn.LeakyReLU(0.2),
                          nn.Linear(8, 8, dtype=f32), nn.ELU(0.7),
                          nn.Linear(8, 3, dtype=f32), nn.Softplus(beta, threshold))
    path = tmp_path / "activations.onnx"
    nn.export_onnx(model, rng.standard_normal((4, 5)).astype(f32), path)
    proto = _check(path)
    softplus = ["Softplus"] if beta == 1.0 else ["Mul", "Softplus", "Div"]
    if threshold == 5.0:  # exp(-5) is no rounding error: the file switches to x too
        softplus += ["Greater", "Where"]
    assert _op_types(proto) == ["Gemm", "LeakyRelu", "Gemm", "Elu", "Gemm"] + softplus
    attrs = {n.op_type: onnx.helper.get_attribute_value(n.attribute[0])
             for n in proto.graph.node if n.op_type in ("LeakyRelu", "Elu")}
    assert attrs == {"LeakyRelu": pytest.approx(0.2), "Elu": pytest.approx(0.7)}
    # another batch size; large inputs drive softplus past its threshold (at 20 the
    # file adds log1p(exp(-beta·x)) / beta < exp(-20) / beta to x there)
    x = (rng.standard_normal((9, 5)) * np.array([1, 1, 10, 100, 300])).astype(f32)
    (got,) = _run(path, {"input": x})
    want = model(x).data
    assert (want > threshold / beta).any() and (want < 0.1).any()  # both sides
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
