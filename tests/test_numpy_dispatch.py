"""NumPy functions and ufuncs on Tensors keep the graph or refuse (autograd/numpy_api.py).

- every entry of ``numpy_api.dispatch_table()`` runs the same op as its ``ag`` spelling:
  same op class, same value, same gradients (a row below per entry, checked to exist);
- every callable of ``numpy_api.answered()`` answers exactly what NumPy answers on the
  values, with no gradient (a row per callable);
- everything else raises a TypeError naming the function and the way out; ``out=`` too.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import require_module

import autograd as ag
from autograd import numpy_api

SHAPES_2x3 = [(2, 3), (2, 3)]


def leaves(shapes, kind="normal", seed=0):
    """Fresh float64 leaves that require grad (``kind``: "normal" or "positive")."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) if kind == "normal" else rng.uniform(0.5, 2.0, s)
              for s in shapes]
    return [ag.Tensor(a, requires_grad=True) for a in arrays]


def mask(t):
    return t.data > 0


_IDX = np.array([[2, 0, 2, 2], [-1, 1, 0, 0]])  # along axis 1 of a (2, 3): repeats


# name in dispatch_table() -> (the NumPy call, the ag call it must equal, input shapes, kind)
DISPATCHED = {
    "np.add": (np.add, lambda a, b: a + b, [(2, 3), (3,)], "normal"),
    "np.subtract": (np.subtract, lambda a, b: a - b, [(2, 1), (3,)], "normal"),
    "np.multiply": (np.multiply, lambda a, b: a * b, [(), (2, 3)], "normal"),
    "np.divide": (np.divide, lambda a, b: a / b, SHAPES_2x3, "positive"),
    "np.power": (np.power, lambda a, b: a**b, SHAPES_2x3, "positive"),
    "np.matmul": (np.matmul, lambda a, b: a @ b, [(2, 3), (3, 4)], "normal"),
    "np.negative": (np.negative, lambda a: -a, [(2, 3)], "normal"),
    "np.positive": (np.positive, lambda a: +a, [(2, 3)], "normal"),
    "np.exp": (np.exp, lambda a: a.exp(), [(2, 3)], "normal"),
    "np.log": (np.log, lambda a: a.log(), [(2, 3)], "positive"),
    "np.sqrt": (np.sqrt, lambda a: a.sqrt(), [(2, 3)], "positive"),
    "np.absolute": (np.abs, lambda a: a.abs(), [(2, 3)], "normal"),
    "np.tanh": (np.tanh, lambda a: a.tanh(), [(2, 3)], "normal"),
    "np.square": (np.square, lambda a: a**2, [(2, 3)], "normal"),
    "np.maximum": (np.maximum, ag.maximum, [(2, 3), (3,)], "normal"),
    "np.minimum": (np.minimum, ag.minimum, [(2, 3), (3,)], "normal"),
    "np.add.reduce": (lambda a: np.add.reduce(a, axis=1, keepdims=True),
                      lambda a: a.sum(axis=1, keepdims=True), [(2, 3)], "normal"),
    "np.maximum.reduce": (np.maximum.reduce, lambda a: a.max(axis=0), [(2, 3)], "normal"),
    "np.minimum.reduce": (lambda a: np.minimum.reduce(a, axis=None),
                          lambda a: a.min(), [(2, 3)], "normal"),
    "np.sum": (lambda a: np.sum(a, axis=0), lambda a: a.sum(axis=0), [(2, 3)], "normal"),
    "np.mean": (lambda a: np.mean(a, (0, 2), None, None, True),
                lambda a: a.mean(axis=(0, 2), keepdims=True), [(2, 3, 4)], "normal"),
    "np.max": (lambda a: np.max(a, axis=-1), lambda a: a.max(axis=-1), [(2, 3)], "normal"),
    "np.amax": (np.amax, lambda a: a.max(), [(2, 3)], "normal"),
    "np.min": (lambda a: np.min(a, 1, keepdims=True), lambda a: a.min(1, keepdims=True),
               [(2, 3)], "normal"),
    "np.amin": (np.amin, lambda a: a.min(), [(2, 3)], "normal"),
    "np.concatenate": (lambda a, b: np.concatenate([a, b], axis=1),
                       lambda a, b: ag.concat([a, b], axis=1), [(2, 3), (2, 1)], "normal"),
    "np.stack": (lambda a, b: np.stack((a, b), axis=-1), lambda a, b: ag.stack([a, b], -1),
                 SHAPES_2x3, "normal"),
    "np.where": (lambda a, b: np.where(mask(a), a, b), lambda a, b: ag.where(mask(a), a, b),
                 SHAPES_2x3, "normal"),
    "np.reshape": (lambda a: np.reshape(a, (3, 2)), lambda a: a.reshape(3, 2), [(2, 3)],
                   "normal"),
    "np.ravel": (np.ravel, lambda a: a.flatten(), [(2, 3)], "normal"),
    "np.squeeze": (lambda a: np.squeeze(a, axis=1), lambda a: a.squeeze(1), [(2, 1, 3)],
                   "normal"),
    "np.expand_dims": (lambda a: np.expand_dims(a, (0, -1)), lambda a: a.expand_dims((0, -1)),
                       [(2, 3)], "normal"),
    "np.transpose": (lambda a: np.transpose(a, (1, 2, 0)), lambda a: a.transpose(1, 2, 0),
                     [(2, 3, 4)], "normal"),
    "np.swapaxes": (lambda a: np.swapaxes(a, 0, -1), lambda a: a.transpose(2, 1, 0),
                    [(2, 3, 4)], "normal"),
    "np.moveaxis": (lambda a: np.moveaxis(a, 0, -1), lambda a: a.transpose(1, 2, 0),
                    [(2, 3, 4)], "normal"),
    "np.clip": (lambda a: np.clip(a, -0.5, 0.5), lambda a: a.clip(-0.5, 0.5), [(2, 3)],
                "normal"),
    "np.dot": (np.dot, lambda a, b: a @ b, [(2, 3), (3,)], "normal"),
    # shapes, reductions and scans
    "np.var": (lambda a: np.var(a, axis=0, ddof=1, keepdims=True),
               lambda a: a.var(axis=0, ddof=1, keepdims=True), [(3, 2)], "normal"),
    "np.std": (lambda a: np.std(a, correction=1), lambda a: a.std(ddof=1), [(2, 3)], "normal"),
    "np.cumsum": (lambda a: np.cumsum(a, axis=1), lambda a: a.cumsum(1), [(2, 3)], "normal"),
    "np.add.accumulate": (np.add.accumulate, lambda a: a.cumsum(0), [(2, 3)], "normal"),
    "np.linalg.norm": (lambda a: np.linalg.norm(a, np.inf, axis=-1),
                       lambda a: a.norm(np.inf, axis=-1), [(2, 3)], "normal"),
    # padding, gathering, sorting, einsum
    "np.pad": (lambda a: np.pad(a, ((1, 0), (2, 1)), constant_values=1.5),
               lambda a: ag.pad(a, ((1, 0), (2, 1)), value=1.5), [(2, 3)], "normal"),
    "np.take_along_axis": (lambda a: np.take_along_axis(a, _IDX, axis=1),
                           lambda a: ag.take_along_axis(a, _IDX, 1), [(2, 3)], "normal"),
    "np.sort": (lambda a: np.sort(a, axis=0), lambda a: a.sort(0).values, [(2, 3)], "normal"),
    "np.einsum": (lambda a, b: np.einsum("ij,kj->ik", a, b),
                  lambda a, b: ag.einsum("ij,kj->ik", a, b), SHAPES_2x3, "normal"),
    # derivatives of derivatives: what backward formulas call on Tensors
    "np.broadcast_to": (lambda a: np.broadcast_to(a, (4, 2, 3)),
                        lambda a: ag.broadcast_to(a, (4, 2, 3)), [(2, 1)], "normal"),
}


def test_every_dispatched_callable_has_a_row():
    assert set(DISPATCHED) == set(numpy_api.dispatch_table())


@pytest.mark.parametrize("name", sorted(numpy_api.dispatch_table()))
def test_dispatched_runs_the_ag_op(name):
    np_call, ag_call, shapes, kind = DISPATCHED[name]
    ours, ref = leaves(shapes, kind), leaves(shapes, kind)
    out, expected = np_call(*ours), ag_call(*ref)
    assert isinstance(out, ag.Tensor), f"{name} returned {type(out).__name__}"
    assert out.requires_grad
    assert type(out.grad_fn) is type(expected.grad_fn)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected.data)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(upstream)
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert a.grad is not None, f"{name}: input {i} got no gradient"
        np.testing.assert_array_equal(a.grad, b.grad, err_msg=f"{name}: input {i}")


# --------------------------------------------------------------- against PyTorch float64

# name -> (the NumPy call on a Tensor, the same in PyTorch: torch_call(torch, tensor))
TORCH_CASES = {
    "exp": (np.exp, lambda th, a: a.exp()),
    "sum_axis": (lambda a: np.sum(a, axis=1), lambda th, a: a.sum(dim=1)),
    "mean_keepdims": (lambda a: np.mean(a, axis=0, keepdims=True),
                      lambda th, a: a.mean(dim=0, keepdim=True)),
    "maximum": (lambda a: np.maximum(a, a.data[::-1].copy()),
                lambda th, a: th.maximum(a, a.detach().flip(0))),
    "concatenate": (lambda a: np.concatenate([a, a * 2.0]), lambda th, a: th.cat([a, a * 2.0])),
    "where": (lambda a: np.where(a.data > 0, a, np.exp(a)),
              lambda th, a: th.where(a > 0, a, a.exp())),
    "matmul": (lambda a: np.matmul(a, np.transpose(a)), lambda th, a: a @ a.T),
    "clip": (lambda a: np.clip(a, -0.5, 0.5), lambda th, a: a.clamp(-0.5, 0.5)),
    "rmul_numpy_scalar": (lambda a: np.float64(2.5) * a, lambda th, a: 2.5 * a),
    "ndarray_sub": (lambda a: np.ones(3) - a, lambda th, a: 1.0 - a),
    "var_ddof": (lambda a: np.var(a, axis=0, ddof=1), lambda th, a: a.var(dim=0)),
    "std": (np.std, lambda th, a: a.std(correction=0)),
    "cumsum_axis": (lambda a: np.cumsum(a, axis=0), lambda th, a: a.cumsum(dim=0)),
    "linalg_norm": (np.linalg.norm, lambda th, a: th.linalg.vector_norm(a)),
    "linalg_norm_axis": (lambda a: np.linalg.norm(a, 1, axis=1, keepdims=True),
                         lambda th, a: th.linalg.vector_norm(a, 1, dim=1, keepdim=True)),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_against_torch_float64(case):
    torch = require_module("torch", "the PyTorch oracle")
    np_call, torch_call = TORCH_CASES[case]
    values = np.random.default_rng(2).standard_normal((4, 3))
    x = ag.Tensor(values, requires_grad=True)
    xt = torch.tensor(values, requires_grad=True)
    out, ref = np_call(x), torch_call(torch, xt)
    assert isinstance(out, ag.Tensor)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=0)
    upstream = np.random.default_rng(3).standard_normal(out.shape)
    out.backward(upstream)
    ref.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


# ------------------------------------------------------- operators and NumPy scalars


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scalar", [2.0, np.float64(2.0), np.float32(2.0)])
def test_numpy_scalars_and_ufuncs_take_the_operator_path(scalar, dtype):
    """np.multiply(s, x), s * x and x.__rmul__(s) are one path: same op, dtype, grad."""
    for numpy_form, reflected in [(lambda x: np.multiply(scalar, x), "__rmul__"),
                                  (lambda x: scalar * x, "__rmul__"),
                                  (lambda x: np.subtract(scalar, x), "__rsub__"),
                                  (lambda x: np.power(scalar, x), "__rpow__"),
                                  (lambda x: np.divide(x, scalar), None)]:
        x = ag.Tensor(np.array([1.0, 3.0], dtype=dtype), requires_grad=True)
        ref_x = ag.Tensor(x.data.copy(), requires_grad=True)
        out = numpy_form(x)
        ref = getattr(ref_x, reflected)(scalar) if reflected else ref_x / scalar
        assert isinstance(out, ag.Tensor) and type(out.grad_fn) is type(ref.grad_fn)
        assert out.dtype == ref.dtype
        np.testing.assert_array_equal(out.data, ref.data)
        out.sum().backward()
        ref.sum().backward()
        np.testing.assert_array_equal(x.grad, ref_x.grad)


def test_ndarray_operators_with_a_tensor_keep_the_graph():
    a = np.array([2.0, -1.0])
    x = ag.Tensor([3.0, 4.0], requires_grad=True)
    out = a * x + a @ x + np.float64(2.0) ** x + a / x - a
    assert isinstance(out, ag.Tensor)
    out.sum().backward()
    # a @ x is one value broadcast over both elements of out: it counts twice
    expected = a + 2 * a + 2.0 ** x.data * np.log(2.0) - a / x.data**2
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_comparisons_from_either_side_agree():
    a = np.array([1.0, 2.0, 3.0])
    x = ag.Tensor([3.0, 2.0, 1.0], requires_grad=True)
    for left, right in [(a < x, x > a), (a >= x, x <= a), (a == x, x == a),
                        (np.float64(2.0) != x, x != 2.0), (np.greater(x, a), x > a)]:
        assert isinstance(left, ag.Tensor) and not left.requires_grad
        assert left.dtype == bool
        np.testing.assert_array_equal(left.data, right.data)


def test_tensor_operators_do_not_go_through_numpy(monkeypatch):
    """Tensor's own operators are not slowed down by the protocols: they never call them."""

    def fail(*args, **kwargs):
        raise AssertionError("went through NumPy's dispatch")

    monkeypatch.setattr(ag.Tensor, "__array_ufunc__", fail)
    monkeypatch.setattr(ag.Tensor, "__array_function__", fail)
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x + 2.0 * x - x / 3.0) ** 2 @ x + x.exp().sum() + (-x).tanh().max()
    y.backward()
    assert x.grad.shape == (2,)


# ------------------------------------------------------------ answered on the values

FLOATS = np.array([[1.5, -0.0, np.nan], [np.inf, -2.5, 0.5]])
OTHER = np.array([[1.5, 1.0, 0.0], [np.inf, -3.0, 0.5]])
SORTED = np.array([-1.0, 0.0, 2.0])

# name in answered() -> a call on (a, b, s): two (2, 3) float arrays and a sorted 1-D one
ANSWERED = {
    "np.equal": lambda a, b, s: np.equal(a, b),
    "np.not_equal": lambda a, b, s: np.not_equal(a, b),
    "np.greater": lambda a, b, s: np.greater(a, b),
    "np.greater_equal": lambda a, b, s: np.greater_equal(a, b),
    "np.less": lambda a, b, s: np.less(a, b),
    "np.less_equal": lambda a, b, s: np.less_equal(b, a),
    "np.isfinite": lambda a, b, s: np.isfinite(a),
    "np.isinf": lambda a, b, s: np.isinf(a),
    "np.isnan": lambda a, b, s: np.isnan(a),
    "np.signbit": lambda a, b, s: np.signbit(a),
    "np.logical_and": lambda a, b, s: np.logical_and(a > 0, b > 0),
    "np.logical_or": lambda a, b, s: np.logical_or(a > 0, b > 0),
    "np.logical_xor": lambda a, b, s: np.logical_xor(a > 0, b > 0),
    "np.logical_not": lambda a, b, s: np.logical_not(a > 0),
    "np.bitwise_and": lambda a, b, s: np.bitwise_and(a > 0, b > 0),
    "np.bitwise_or": lambda a, b, s: np.bitwise_or(a > 0, b > 0),
    "np.bitwise_xor": lambda a, b, s: np.bitwise_xor(a > 0, b > 0),
    "np.invert": lambda a, b, s: np.invert(a > 0),
    "np.sign": lambda a, b, s: np.sign(a),
    "np.floor": lambda a, b, s: np.floor(a),
    "np.ceil": lambda a, b, s: np.ceil(a),
    "np.trunc": lambda a, b, s: np.trunc(a),
    "np.rint": lambda a, b, s: np.rint(a),
    "np.shape": lambda a, b, s: np.shape(a),
    "np.ndim": lambda a, b, s: np.ndim(a),
    "np.size": lambda a, b, s: np.size(a, 1),
    "np.result_type": lambda a, b, s: np.result_type(a, np.float32),
    "np.can_cast": lambda a, b, s: np.can_cast(a, np.float32),
    "np.iscomplexobj": lambda a, b, s: np.iscomplexobj(a),
    "np.isrealobj": lambda a, b, s: np.isrealobj(a),
    "np.iscomplex": lambda a, b, s: np.iscomplex(a),
    "np.isreal": lambda a, b, s: np.isreal(a),
    "np.isposinf": lambda a, b, s: np.isposinf(a),
    "np.isneginf": lambda a, b, s: np.isneginf(-a),
    "np.isclose": lambda a, b, s: np.isclose(a, b, equal_nan=True),
    "np.allclose": lambda a, b, s: np.allclose(a, a, equal_nan=True),
    "np.array_equal": lambda a, b, s: np.array_equal(a, b),
    "np.array_equiv": lambda a, b, s: np.array_equiv(s, s),
    "np.any": lambda a, b, s: np.any(a > 1, axis=0),
    "np.all": lambda a, b, s: np.all(b > -5),
    "np.count_nonzero": lambda a, b, s: np.count_nonzero(a, axis=1),
    "np.nonzero": lambda a, b, s: np.nonzero(a),
    "np.flatnonzero": lambda a, b, s: np.flatnonzero(b),
    "np.argwhere": lambda a, b, s: np.argwhere(b),
    "np.argmax": lambda a, b, s: np.argmax(b, axis=1),
    "np.argmin": lambda a, b, s: np.argmin(b),
    "np.argsort": lambda a, b, s: np.argsort(b, axis=None),
    "np.searchsorted": lambda a, b, s: np.searchsorted(s, 1.0),
    "np.zeros_like": lambda a, b, s: np.zeros_like(a),
    "np.ones_like": lambda a, b, s: np.ones_like(a, dtype=np.float32),
    "np.empty_like": lambda a, b, s: np.empty_like(a).shape,
    "np.full_like": lambda a, b, s: np.full_like(a, 7.0),
    "np.shares_memory": lambda a, b, s: np.shares_memory(a, b),
    "np.may_share_memory": lambda a, b, s: np.may_share_memory(a, a),
}


def test_every_answered_callable_has_a_row():
    assert set(ANSWERED) == set(numpy_api.answered())


@pytest.mark.parametrize("name", numpy_api.answered())
def test_answered_on_the_values_without_gradient(name):
    call = ANSWERED[name]
    tensors = [ag.Tensor(v, requires_grad=True) for v in (FLOATS, OTHER, SORTED)]
    with np.errstate(invalid="ignore"):
        out, expected = call(*tensors), call(FLOATS, OTHER, SORTED)
    if isinstance(getattr(np, name[len("np."):]), np.ufunc):
        # elementwise, like Tensor's comparison operators: a Tensor without gradient
        assert isinstance(out, ag.Tensor) and not out.requires_grad and out.grad_fn is None
        assert out.dtype == np.asarray(expected).dtype
        out = out.data
    else:  # NumPy's own answer on the values
        assert type(out) is type(expected)
        if isinstance(out, tuple):
            assert [type(o) for o in out] == [type(e) for e in expected]
    np.testing.assert_equal(out, expected)


def test_step_functions_pass_no_gradient_like_torch_zero():
    x = ag.Tensor([-1.5, 0.3, 2.0], requires_grad=True)
    y = (np.sign(x) * x + np.floor(x) * 2.0).sum()  # d/dx = sign(x): the step adds nothing
    y.backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 1.0, 1.0])


def test_where_with_only_a_condition_gives_indices():
    x = ag.Tensor([[0.0, 1.0], [2.0, 0.0]], requires_grad=True)
    rows, cols = np.where(x)
    assert isinstance(rows, np.ndarray)
    np.testing.assert_array_equal(rows, [0, 1])
    np.testing.assert_array_equal(cols, [1, 0])


def test_concatenate_without_axis_flattens_and_keeps_the_graph():
    a, b = leaves([(2, 2), (3,)])
    out = np.concatenate([a, b], axis=None)
    assert out.shape == (7,)
    (out * np.arange(7.0)).sum().backward()
    np.testing.assert_array_equal(a.grad, [[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(b.grad, [4.0, 5.0, 6.0])


# ------------------------------------------------------------------------- refusals


def x1():
    return ag.Tensor([3.0, 1.0, 2.0], requires_grad=True)


REFUSED = [
    # (call, what the message must contain: the function, then the way out)
    (lambda t: np.convolve(t, t), ["np.convolve", "not differentiable", "t.data"]),
    (lambda t: np.sin(t), ["np.sin", "t.data", "t.detach().numpy()"]),
    (lambda t: np.prod(t), ["np.prod", "t.data"]),
    (lambda t: np.linalg.norm(t.reshape(1, 3), 1), ["np.linalg.norm", "matrix norm",
                                                    "t.norm(ord, axis)", "t.data"]),
    (lambda t: np.average(t), ["np.average", "t.mean(axis)", "t.data"]),
    (lambda t: np.fmax(t, 0.0), ["np.fmax", "ag.maximum"]),
    (lambda t: np.round(t), ["np.round", "np.rint", "t.data"]),
    (lambda t: np.copy(t), ["np.copy", "t.detach()"]),
    (lambda t: np.multiply.outer(t, t), ["np.multiply.outer", "reshape"]),
    (lambda t: np.remainder(2.0, t), ["np.remainder", "t.data"]),
    (lambda t: np.dot(t.sum(), t), ["np.dot", "a * b", "t.data"]),
    (lambda t: np.clip(t, ag.Tensor(0.0), 1.0), ["np.clip", "ag.minimum(ag.maximum("]),
    (lambda t: np.pad(t, 1, mode="edge"), ["np.pad", "mode=", "ag.pad(", "t.data"]),
    (lambda t: np.pad(t, 1, constant_values=(0, 1)), ["np.pad", "one constant", "ag.pad("]),
    (lambda t: np.sort(t, order="x"), ["np.sort", "order"]),
    (lambda t: np.einsum(t, [0], [0]), ["np.einsum", "string"]),
]


@pytest.mark.parametrize("call, fragments", REFUSED, ids=[f[0] for _, f in REFUSED])
def test_refused_names_the_function_and_the_way_out(call, fragments):
    t = x1()
    with pytest.raises(TypeError) as err:
        call(t)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


def test_every_refused_function_still_works_on_the_values():
    """The way out that the messages give does work."""
    t = x1()
    np.testing.assert_array_equal(np.cumsum(t.data), [3.0, 4.0, 6.0])
    assert np.var(t.detach().numpy()) == pytest.approx(2.0 / 3.0)


@pytest.mark.parametrize("call", [
    lambda t, a: np.add(t, 1.0, out=t),
    lambda t, a: np.exp(t, out=a),
    lambda t, a: np.exp(t, a),
    lambda t, a: a.__iadd__(t),  # arr += t
    lambda t, a: np.multiply(a, 2.0, out=t),
    lambda t, a: np.sum(t, out=np.empty(())),
    lambda t, a: np.sum(t, None, None, np.empty(())),
    lambda t, a: np.concatenate([t, t], out=np.empty(6)),
    lambda t, a: np.argmax(t, out=np.empty((), dtype=np.intp)),
    lambda t, a: np.isfinite(t, out=np.empty(3, dtype=bool)),
], ids=["ufunc-into-tensor", "ufunc-into-array", "ufunc-positional-out", "iadd",
        "array-into-tensor", "sum", "sum-positional", "concatenate", "argmax", "isfinite"])
def test_out_is_refused(call):
    t, a = x1(), np.zeros(3)
    before = t.data.copy()
    with pytest.raises(TypeError, match="out="):
        call(t, a)
    np.testing.assert_array_equal(t.data, before)
    np.testing.assert_array_equal(a, np.zeros(3))


def test_positional_out_of_an_answering_function_cannot_write_a_tensor():
    m = ag.Tensor([[1.0, 5.0], [4.0, 2.0]])
    idx = ag.Tensor(np.zeros(2, dtype=np.intp))
    with pytest.raises(ValueError, match="read-only"):
        np.argmax(m, 1, idx)
    np.testing.assert_array_equal(idx.data, [0, 0])


def test_ufunc_at_changes_in_place_and_is_refused():
    t = x1()
    with pytest.raises(TypeError, match="in place"):
        np.add.at(t, [0, 0], 1.0)
    np.testing.assert_array_equal(t.data, [3.0, 1.0, 2.0])


@pytest.mark.parametrize("call, argument", [
    (lambda t: np.sum(t, dtype=np.float32), "dtype="),
    (lambda t: np.sum(t, initial=1.0), "initial="),
    (lambda t: np.mean(t, where=t.data > 1), "where="),
    (lambda t: np.reshape(t, -1, order="F"), "order="),
    (lambda t: np.multiply(t, 2.0, where=t.data > 1), "where="),
    (lambda t: np.exp(t, dtype=np.float32), "dtype="),
    (lambda t: np.add.reduce(t, initial=5.0), "initial="),
    (lambda t: np.matmul(t, t, axes=[(0,), (0,), ()]), "axes="),
], ids=["sum-dtype", "sum-initial", "mean-where", "reshape-order", "multiply-where",
        "exp-dtype", "add.reduce-initial", "matmul-axes"])
def test_arguments_the_op_has_no_use_for_are_refused(call, argument):
    with pytest.raises(TypeError, match=argument) as err:
        call(x1())
    assert "t.data" in str(err.value)


def test_arguments_at_numpys_default_are_accepted():
    t = x1()
    outs = [np.sum(t, dtype=None, where=True), np.reshape(t, -1, order="C"),
            np.add(t, 1.0, casting="same_kind", where=True), np.concatenate([t], dtype=None),
            np.add.reduce(t, dtype=None), np.clip(t, a_min=1.5, a_max=None)]
    assert all(isinstance(o, ag.Tensor) and o.requires_grad for o in outs)


def test_other_array_types_are_left_to_numpy():
    class Other:
        def __array_ufunc__(self, *args, **kwargs):
            return NotImplemented

        def __array_function__(self, *args, **kwargs):
            return NotImplemented

    t = x1()
    with pytest.raises(TypeError):
        np.add(t, Other())
    with pytest.raises(TypeError):
        np.concatenate([t, Other()])


# ------------------------------------------------------------- shapes, reductions, scans


def test_squeeze_follows_numpy_and_the_method_follows_torch():
    t = ag.Tensor(np.ones((2, 1, 3)), requires_grad=True)
    with pytest.raises(ValueError):
        np.squeeze(t, axis=0)  # NumPy refuses to squeeze an axis of length 2
    assert t.squeeze(0).shape == (2, 1, 3)  # torch.squeeze leaves it
    assert np.squeeze(t).shape == (2, 3)


def test_var_refuses_ddof_and_correction_together():
    with pytest.raises(ValueError, match="correction"):
        np.var(x1(), ddof=1, correction=1)
    with pytest.raises(TypeError, match="ddof"):
        x1().var(ddof=1, unbiased=True)
