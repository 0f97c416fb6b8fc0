"""The Tensor shell: construction, dtypes, operators, identity, NumPy interplay, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from values import leaf

import autograd as ag

# ----------------------------------------------------------------- construction


def test_defaults():
    t = ag.Tensor([1.0, 2.0])
    assert t.dtype == np.float64 and t.shape == (2,) and t.ndim == 1 and t.size == 2
    assert not t.requires_grad and t.grad is None and t.is_leaf and t.name is None
    assert isinstance(t.data, np.ndarray) and isinstance(t.numpy(), np.ndarray)
    assert ag.Tensor(2.5).item() == 2.5 and ag.Tensor(2.5).shape == ()
    assert ag.Tensor([1, 2]).dtype.kind == "i"  # ints stay ints (no grad for them)
    assert ag.Tensor(np.ones(2, np.float32)).dtype == np.float32
    assert ag.Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert ag.Tensor([1.0], name="w").name == "w"


def test_constructor_copies_arrays():
    a = np.array([1.0, 2.0])
    t = ag.Tensor(a)
    a[0] = 99.0
    assert t.data[0] == 1.0


def test_set_default_dtype():
    ag.set_default_dtype(np.float32)
    try:
        assert ag.Tensor([1.0, 2.0]).dtype == np.float32
        assert ag.Tensor(np.ones(2)).dtype == np.float64  # arrays keep theirs
    finally:
        ag.set_default_dtype(np.float64)
    assert ag.Tensor([1.0]).dtype == np.float64
    with pytest.raises(TypeError):
        ag.set_default_dtype(np.int32)


@pytest.mark.parametrize("data", [[1, 2, 3], np.arange(3), np.array([True, False]), 7, True])
def test_integer_and_bool_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="float"):
        ag.Tensor(data, requires_grad=True)
    t = ag.Tensor(data)
    with pytest.raises(TypeError):
        t.requires_grad_()


def test_requires_grad_and_dtype_argument():
    t = ag.Tensor([1, 2, 3], dtype=np.float64, requires_grad=True)
    assert t.requires_grad and t.dtype == np.float64
    u = ag.Tensor([1.0]).requires_grad_()
    assert u.requires_grad


def test_integer_tensors_compute_without_grad():
    i = ag.Tensor([1, 2, 3])
    assert ((i * 2).data == [2, 4, 6]).all()
    x = leaf([0.5, 0.5, 0.5])
    (x * i).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 3.0])
    assert x.grad.dtype == np.float64


# ----------------------------------------------------------------- float32 everywhere

F32_OPS = {
    "mul_scalar": lambda x, w: x * 2.5,
    "rmul_scalar": lambda x, w: 2.5 * x,
    "add_scalar": lambda x, w: x + 1.5,
    "radd_scalar": lambda x, w: 1.5 + x,
    "sub_scalar": lambda x, w: x - 0.5,
    "rsub_scalar": lambda x, w: 2.5 - x,
    "div_scalar": lambda x, w: x / 3,
    "rdiv_scalar": lambda x, w: 3.0 / x,
    "pow_int": lambda x, w: x**2,
    "pow_float": lambda x, w: x**0.5,
    "rpow": lambda x, w: 2.0**x,
    "neg": lambda x, w: -x,
    "exp": lambda x, w: x.exp(),
    "log": lambda x, w: x.log(),
    "sqrt": lambda x, w: x.sqrt(),
    "abs": lambda x, w: x.abs(),
    "tanh": lambda x, w: x.tanh(),
    "sigmoid": lambda x, w: x.sigmoid(),
    "relu": lambda x, w: (x - 1.0).relu(),
    "clip": lambda x, w: x.clip(0.7, 1.3),
    "sum": lambda x, w: x.sum(),
    "sum_axis": lambda x, w: x.sum(axis=0),
    "mean": lambda x, w: x.mean(),
    "mean_axis": lambda x, w: x.mean(axis=1, keepdims=True),
    "max": lambda x, w: x.max(axis=1),
    "min": lambda x, w: x.min(),
    "softmax": lambda x, w: x.softmax(),
    "log_softmax": lambda x, w: x.log_softmax(axis=0),
    "matmul": lambda x, w: x @ w,
    "matmul_vec": lambda x, w: x[0] @ w,
    "mul_tensor": lambda x, w: x * w.T,
    "reshape": lambda x, w: x.reshape(-1),
    "transpose": lambda x, w: x.T,
    "getitem": lambda x, w: x[[0, 0, 1], 1:],
    "mask": lambda x, w: x[x.data > 1.0],
    "concat": lambda x, w: ag.concat([x, w.T], axis=0),
    "stack": lambda x, w: ag.stack([x, w.T]),
    "where": lambda x, w: ag.where(x.data > 1.0, x, 0.0),
    "maximum": lambda x, w: ag.maximum(x, 1.0),
    "minimum": lambda x, w: ag.minimum(x, w.T),
}


@pytest.mark.parametrize("name", sorted(F32_OPS))
def test_float32_preserved_through_every_op(name):
    fn = F32_OPS[name]
    rng = np.random.default_rng(0)
    xd = rng.uniform(0.5, 1.5, (2, 3)).astype(np.float32)
    wd = rng.uniform(0.5, 1.5, (3, 2)).astype(np.float32)
    x, w = leaf(xd, dtype=np.float32), leaf(wd, dtype=np.float32)
    out = fn(x, w)
    assert out.dtype == np.float32, f"{name}: output is {out.dtype}"
    # the same computation in float64 agrees to float32 precision
    ref = fn(ag.Tensor(xd.astype(np.float64)), ag.Tensor(wd.astype(np.float64)))
    np.testing.assert_allclose(out.data, ref.data, rtol=2e-6, atol=1e-6)
    out.backward(np.ones(out.shape, np.float32))
    for t in (x, w):
        if t.grad is not None:
            assert t.grad.dtype == np.float32, f"{name}: grad is {t.grad.dtype}"
    assert x.grad is not None


def test_float32_gradient_seed_and_mixed_precision():
    x = leaf([1.0, 2.0], dtype=np.float32)
    y = x * 2.0
    y.backward(np.ones(2))  # a float64 seed does not turn the gradient into float64
    assert x.grad.dtype == np.float32
    d = leaf([1.0, 2.0])  # float64 with float32 promotes, as in NumPy
    z = x * d
    assert z.dtype == np.float64
    z.sum().backward()
    assert x.grad.dtype == np.float32 and d.grad.dtype == np.float64


def test_float32_0d_tensor():
    x = ag.Tensor(np.float32(1.5), requires_grad=True)
    y = (x * 2.5 + 1.0) ** 2 / 3
    assert y.dtype == np.float32 and y.shape == ()
    y.backward()
    assert x.grad.dtype == np.float32
    assert float(x.grad) == pytest.approx(2 * (1.5 * 2.5 + 1.0) * 2.5 / 3, rel=1e-6)


# ----------------------------------------------------------------- in-place operators


def test_inplace_operators_build_new_nodes():
    a = leaf([1.0, 2.0])
    c = a * 2.0
    before, before_data = c, c.data.copy()
    c += c + 1.0
    assert c is not before
    np.testing.assert_array_equal(before.data, before_data)  # the node in the graph is intact
    c *= 3.0
    c -= a
    c /= 2.0
    c **= 2
    c.sum().backward()
    # c = ((3 * (2 * (2a) + 1) - a) / 2)^2 = ((11a + 3) / 2)^2
    np.testing.assert_allclose(c.data, ((11 * a.data + 3) / 2) ** 2)
    np.testing.assert_allclose(a.grad, 2 * (11 * a.data + 3) / 2 * 11 / 2)


def test_setitem_is_refused():
    t = ag.Tensor([1.0, 2.0])
    with pytest.raises(TypeError):
        t[0] = 3.0


# ----------------------------------------------------------------- identity and comparisons


def test_hash_by_identity_and_elementwise_eq():
    a, b = ag.Tensor([1.0, 2.0]), ag.Tensor([1.0, 2.0])
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b" and len(d) == 2
    assert len({a, b, a}) == 2
    eq = a == b
    assert isinstance(eq, ag.Tensor) and eq.dtype == np.bool_
    np.testing.assert_array_equal(eq.data, [True, True])
    np.testing.assert_array_equal((a == 2.0).data, [False, True])
    np.testing.assert_array_equal((a != 2.0).data, [True, False])
    np.testing.assert_array_equal((a < 2.0).data, [True, False])
    np.testing.assert_array_equal((a <= 1.0).data, [True, False])
    np.testing.assert_array_equal((a > 1.0).data, [False, True])
    np.testing.assert_array_equal((a >= 2.0).data, [False, True])


def test_comparisons_carry_no_gradient():
    x = leaf([1.0, -1.0])
    m = x > 0
    assert not m.requires_grad and m.grad_fn is None


# ----------------------------------------------------------------- NumPy interplay


def test_ndarray_on_the_left_gives_a_tensor():
    x = leaf([1.0, 2.0, 3.0])
    a = np.array([2.0, 3.0, 4.0])
    for out in (a * x, a + x, a - x, a / x, a**x):
        assert isinstance(out, ag.Tensor) and out.requires_grad
    y = a * x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, a)
    m = np.ones((2, 3)) @ x
    assert isinstance(m, ag.Tensor) and m.shape == (2,)
    np.testing.assert_array_equal((a - x).data, a - x.data)
    np.testing.assert_array_equal((a / x).data, a / x.data)


def test_numpy_ufuncs_do_not_silently_swallow_tensors():
    # a ufunc either runs the ag op (tests/test_numpy_dispatch.py) or refuses
    x = leaf([1.0, 2.0])
    with pytest.raises(TypeError, match="np.sin"):
        np.sin(x)
    assert isinstance(np.add(np.ones(2), x).grad_fn, ag.Function)


def test_array_conversion():
    x = ag.Tensor([1.0, 2.0])
    a = np.asarray(x)
    assert isinstance(a, np.ndarray) and a.tolist() == [1.0, 2.0]
    assert np.array(x, dtype=np.float32).dtype == np.float32
    assert float(ag.Tensor(2.0)) == 2.0 and len(x) == 2
    assert x.tolist() == [1.0, 2.0]


def test_repr_mentions_grad_fn_and_name():
    x = ag.Tensor([1.0], requires_grad=True, name="x")
    assert "requires_grad=True" in repr(x) and "name='x'" in repr(x)
    assert "Mul" in repr(x * 2.0)


# ----------------------------------------------------------------- shape errors


def test_matmul_shape_error_names_both_shapes():
    a, b = ag.Tensor(np.ones((3, 4))), ag.Tensor(np.ones((5, 6)))
    with pytest.raises(ag.ShapeError) as info:
        a @ b
    msg = str(info.value)
    assert "matmul" in msg and "(3, 4)" in msg and "(5, 6)" in msg


def test_matmul_error_suggests_transpose():
    x, w = ag.Tensor(np.ones((3, 4))), ag.Tensor(np.ones((5, 4)))
    with pytest.raises(ag.ShapeError, match=r"\.T"):
        x @ w


def test_matmul_of_0d_is_a_shape_error():
    with pytest.raises(ag.ShapeError):
        ag.Tensor(2.0) @ ag.Tensor(np.ones(3))


@pytest.mark.parametrize("op,name", [
    (lambda a, b: a + b, "add"), (lambda a, b: a - b, "sub"), (lambda a, b: a * b, "mul"),
    (lambda a, b: a / b, "div"), (lambda a, b: a**b, "pow"),
    (lambda a, b: ag.maximum(a, b), "maximum"), (lambda a, b: ag.where(True, a, b), "where"),
])
def test_broadcast_errors_name_op_and_both_shapes(op, name):
    a, b = ag.Tensor(np.ones(3), requires_grad=True), ag.Tensor(np.ones(4))
    with pytest.raises(ag.ShapeError) as info:
        op(a, b)
    msg = str(info.value)
    assert name in msg.lower() and "(3,)" in msg and "(4,)" in msg
    assert isinstance(info.value, ValueError)  # catchable as NumPy's error would be


def test_other_shape_errors():
    t = ag.Tensor(np.ones((2, 3)))
    with pytest.raises(ag.ShapeError, match=r"\(2, 3\)"):
        t.reshape(4, 2)
    with pytest.raises(ag.ShapeError, match="concat"):
        ag.concat([t, ag.Tensor(np.ones((2, 4)))], axis=0)
    with pytest.raises(ag.ShapeError, match="stack"):
        ag.stack([t, ag.Tensor(np.ones((3, 2)))])
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        t[5]


# ----------------------------------------------------------------- max/min ties


def test_max_tie_splits_gradient_evenly():
    x = leaf([1.0, 3.0, 3.0])
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])


def test_min_tie_splits_gradient_evenly():
    x = leaf([[1.0, 3.0, 1.0], [2.0, 2.0, 2.0]])
    x.min(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0.5, 0.0, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_max_ties_along_axis_with_keepdims():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    out = x.max(axis=-1, keepdims=True)
    assert out.shape == (2, 1)
    out.backward(np.array([[2.0], [4.0]]))
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0, 1.0], [2.0, 2.0, 0.0]])


@pytest.mark.parametrize("fn", [ag.maximum, ag.minimum])
def test_maximum_minimum_ties_split_half(fn):
    a, b = leaf([1.0, 2.0, 5.0]), leaf([1.0, 3.0, 0.0])
    fn(a, b).sum().backward()
    tie = np.array([0.5, 0.0, 0.0])
    a_wins = (np.array([0.0, 0.0, 1.0]) if fn is ag.maximum else np.array([0.0, 1.0, 0.0]))
    np.testing.assert_array_equal(a.grad, tie + a_wins)
    np.testing.assert_array_equal(b.grad, tie + (1 - tie * 2 - a_wins))


# ----------------------------------------------------------------- stability at ±800


@pytest.mark.parametrize("name", ["sigmoid", "softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_at_extreme_logits(name, dtype):
    x = leaf([[-800.0, 800.0, 0.0], [800.0, 800.0, -800.0]], dtype=dtype)
    # overflow, division by zero and invalid operations are errors here; underflow of
    # exp(-1600) to 0 is the correct rounding and stays allowed
    with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
        warnings.simplefilter("error")
        out = getattr(x, name)()
        out.backward(np.ones(out.shape, dtype) / 3)
    assert out.dtype == dtype
    assert np.isfinite(out.data).all() and np.isfinite(x.grad).all()
    if name == "sigmoid":
        np.testing.assert_allclose(out.data, [[0.0, 1.0, 0.5], [1.0, 1.0, 0.0]], atol=1e-30)
    elif name == "softmax":
        np.testing.assert_allclose(out.data, [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]], atol=1e-30)
        np.testing.assert_allclose(out.data.sum(axis=-1), 1.0, rtol=1e-6)
    else:
        np.testing.assert_allclose(out.data[0], [-1600.0, 0.0, -800.0], rtol=1e-6)
        np.testing.assert_allclose(out.data[1, :2], -np.log(2.0), rtol=1e-6)


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
def test_reductions_take_pytorchs_dim_and_keepdim(op):
    x = ag.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    numpy_spelling = getattr(x, op)(axis=1, keepdims=True)
    torch_spelling = getattr(x, op)(dim=1, keepdim=True)
    assert torch_spelling.shape == (2, 1)
    np.testing.assert_array_equal(torch_spelling.data, numpy_spelling.data)
    np.testing.assert_array_equal(getattr(x, op)(dim=(0, 1)).data, getattr(x, op)().data)
    with pytest.raises(TypeError, match=f"{op}: got both axis=0 and dim=1"):
        getattr(x, op)(axis=0, dim=1)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_takes_pytorchs_dim(op):
    x = ag.Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(getattr(x, op)(dim=0).data, getattr(x, op)(axis=0).data)
    with pytest.raises(TypeError, match="both axis=0 and dim=1"):
        getattr(x, op)(0, dim=1)
