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
    model = nn.Sequential(nn.Linear(3, 4, dtype=f32), nn.LeakyReLU(0.1))
    with pytest.raises(ag.OnnxExportError, match=r"Where.*\(4, 4\).*frozen"):
        nn.export_onnx(model, np.ones((4, 3), f32), tmp_path / "m.onnx")
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
