"""Every primitive op against central differences (``ag.gradcheck``).

Shapes are drawn by hypothesis, broadcasting pairs included; values come from a
seeded generator and are kept away from kinks and poles (log/sqrt on positive
numbers, abs/relu/clip away from their corners, max/min/maximum/minimum without ties).
A non-scalar output is checked through gradcheck's random projection, whose seed is
drawn too, so the upstream gradient is random.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from values import (
    MATMUL_SHAPES,
    broadcast_pairs,
    distinct,
    leaf,
    nonscalar_shapes,
    nonzero,
    normal,
    off_grid,
    positive,
    seeds,
    shape_and_axis,
    shapes,
)

import autograd as ag

SETTINGS = settings(max_examples=30, deadline=None)



def check(fn, *arrays, seed=0):
    inputs = [leaf(a, name=f"x{i}") for i, a in enumerate(arrays)]
    result = ag.gradcheck(fn, inputs, seed=seed)
    assert result  # gradcheck raises on failure; this guards a falsy pass


# ----------------------------------------------------------------- elementwise unary

UNARY = {
    "neg": (lambda x: -x, normal),
    "exp": (lambda x: x.exp(), normal),
    "log": (lambda x: x.log(), positive),
    "sqrt": (lambda x: x.sqrt(), positive),
    "abs": (lambda x: x.abs(), nonzero),
    "tanh": (lambda x: x.tanh(), normal),
    "sigmoid": (lambda x: x.sigmoid(), lambda r, s: 3 * r.standard_normal(s)),
    "relu": (lambda x: x.relu(), nonzero),
    "clip": (lambda x: x.clip(-0.5, 0.5), lambda r, s: off_grid(r, s, 0.25)),
    "clip_lo": (lambda x: x.clip(min=0.0), lambda r, s: off_grid(r, s, 0.25)),
    "clip_hi": (lambda x: x.clip(max=0.5), lambda r, s: off_grid(r, s, 0.25)),
    "pow2": (lambda x: x**2, normal),
    "pow3": (lambda x: x**3, normal),
    "pow_half": (lambda x: x**0.5, positive),
    "pow_neg": (lambda x: x**-1.5, positive),
    "rpow": (lambda x: 2.0**x, normal),
    "scalar_add": (lambda x: x + 2.5, normal),
    "scalar_radd": (lambda x: 2.5 + x, normal),
    "scalar_sub": (lambda x: x - 2.5, normal),
    "scalar_rsub": (lambda x: 2.5 - x, normal),
    "scalar_mul": (lambda x: x * -1.5, normal),
    "scalar_rmul": (lambda x: -1.5 * x, normal),
    "scalar_div": (lambda x: x / 3.0, normal),
    "scalar_rdiv": (lambda x: 3.0 / x, nonzero),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary(name, shape, seed):
    fn, make = UNARY[name]
    rng = np.random.default_rng(seed)
    check(fn, make(rng, shape), seed=seed)


# ----------------------------------------------------------------- elementwise binary

BINARY = {
    "add": (lambda a, b: a + b, normal, normal),
    "sub": (lambda a, b: a - b, normal, normal),
    "mul": (lambda a, b: a * b, normal, normal),
    "div": (lambda a, b: a / b, normal, nonzero),
    "pow": (lambda a, b: a**b, positive, normal),
    "maximum": (ag.maximum, lambda r, s: off_grid(r, s, 0.1), lambda r, s: off_grid(r, s, 0.35)),
    "minimum": (ag.minimum, lambda r, s: off_grid(r, s, 0.1), lambda r, s: off_grid(r, s, 0.35)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(pair=broadcast_pairs, seed=seeds)
def test_binary_broadcasting(name, pair, seed):
    fn, make_a, make_b = BINARY[name]
    rng = np.random.default_rng(seed)
    a, b = make_a(rng, pair[0]), make_b(rng, pair[1])
    check(fn, a, b, seed=seed)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_against_constant_operand(name):
    """Only one side requires grad; the other is a constant array (broadcast)."""
    fn, make_a, make_b = BINARY[name]
    rng = np.random.default_rng(0)
    a, b = make_a(rng, (3, 1)), make_b(rng, (1, 4))
    check(lambda x: fn(x, ag.Tensor(b)), a)
    check(lambda y: fn(ag.Tensor(a), y), b)


@SETTINGS
@given(shapes3=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4),
       seed=seeds)
def test_where(shapes3, seed):
    cshape, xshape, yshape = shapes3.input_shapes
    rng = np.random.default_rng(seed)
    cond = rng.random(cshape) < 0.5
    check(lambda x, y: ag.where(cond, x, y), normal(rng, xshape), normal(rng, yshape),
          seed=seed)


def test_where_with_tensor_condition_and_scalar_branch():
    rng = np.random.default_rng(1)
    x = normal(rng, (3, 4))
    check(lambda t: ag.where(t > 0, t, 0.0), x)
    check(lambda t: ag.where(ag.Tensor(x < 0), 1.5, t * 2), x)


# ----------------------------------------------------------------- matmul



@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=str)
def test_matmul_fixed_shapes(sa, sb):
    rng = np.random.default_rng(len(sa) * 10 + len(sb))
    check(lambda a, b: a @ b, normal(rng, sa), normal(rng, sb), seed=3)


@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    a_vec, b_vec = draw(st.booleans()), draw(st.booleans())
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    ba, bb = batch.input_shapes
    sa = (k,) if a_vec else ba + (n, k)
    sb = (k,) if b_vec else bb + (k, m)
    return sa, sb


@SETTINGS
@given(sh=matmul_shapes(), seed=seeds)
def test_matmul_drawn_shapes(sh, seed):
    rng = np.random.default_rng(seed)
    check(lambda a, b: a @ b, normal(rng, sh[0]), normal(rng, sh[1]), seed=seed)


# ----------------------------------------------------------------- reductions


REDUCTIONS = {
    "sum": (lambda x, axis, kd: x.sum(axis=axis, keepdims=kd), normal),
    "mean": (lambda x, axis, kd: x.mean(axis=axis, keepdims=kd), normal),
    "max": (lambda x, axis, kd: x.max(axis=axis, keepdims=kd), distinct),
    "min": (lambda x, axis, kd: x.min(axis=axis, keepdims=kd), distinct),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@SETTINGS
@given(sak=shape_and_axis(), seed=seeds)
def test_reductions(name, sak, seed):
    shape, axis, keepdims = sak
    fn, make = REDUCTIONS[name]
    rng = np.random.default_rng(seed)
    x = make(rng, shape)
    check(lambda t: fn(t, axis, keepdims), x, seed=seed)


def test_reduction_axis_as_list():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    check(lambda t: t.sum(axis=[0, 2]), x)
    check(lambda t: t.mean(axis=[-1, 0], keepdims=True), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@SETTINGS
@given(shape=nonscalar_shapes, data=st.data(), seed=seeds)
def test_softmax_family(name, shape, data, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    rng = np.random.default_rng(seed)
    x = 2 * normal(rng, shape)
    check(lambda t: getattr(t, name)(axis=axis), x, seed=seed)


# ----------------------------------------------------------------- shape ops


@SETTINGS
@given(shape=shapes, data=st.data(), seed=seeds)
def test_reshape(shape, data, seed):
    size = int(np.prod(shape, dtype=int))
    target = data.draw(st.sampled_from([
        (size,), (-1,), (1, size), (size, 1, 1), tuple(reversed(shape)), (-1, 1),
        shape + (1,), (1,) + shape,
    ]), label="target")
    x = normal(np.random.default_rng(seed), shape)
    check(lambda t: t.reshape(target), x, seed=seed)
    check(lambda t: t.reshape(*target), x, seed=seed)


@SETTINGS
@given(shape=shapes, data=st.data(), seed=seeds)
def test_transpose(shape, data, seed):
    nd = len(shape)
    perm = data.draw(st.permutations(range(nd)), label="perm")
    signs = data.draw(st.lists(st.booleans(), min_size=nd, max_size=nd), label="neg")
    axes = tuple(p - nd if neg else p for p, neg in zip(perm, signs))
    x = normal(np.random.default_rng(seed), shape)
    check(lambda t: t.transpose(axes), x, seed=seed)
    check(lambda t: t.transpose(*axes) * 1.0, x, seed=seed)
    check(lambda t: t.T, x, seed=seed)
    check(lambda t: t.transpose(), x, seed=seed)


def test_transpose_negative_axes_gradient_shape():
    """Inverse permutation of (-1, 0, 1) is (1, 2, 0): the gradient keeps x's shape."""
    x = normal(np.random.default_rng(0), (2, 3, 4))
    check(lambda t: t.transpose(-1, 0, 1), x)
    check(lambda t: t.transpose(0, -1, -2), x)


@st.composite
def concat_case(draw):
    base = list(draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)))
    nd = len(base)
    axis = draw(st.integers(-nd, nd - 1))
    n = draw(st.integers(1, 3))
    shapes_ = []
    for _ in range(n):
        s = list(base)
        s[axis] = draw(st.integers(1, 3))
        shapes_.append(tuple(s))
    return shapes_, axis


@SETTINGS
@given(case=concat_case(), seed=seeds)
def test_concat(case, seed):
    shapes_, axis = case
    rng = np.random.default_rng(seed)
    arrays = [normal(rng, s) for s in shapes_]
    check(lambda *ts: ag.concat(ts, axis=axis), *arrays, seed=seed)


@SETTINGS
@given(shape=shapes, n=st.integers(1, 3), data=st.data(), seed=seeds)
def test_stack(shape, n, data, seed):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    rng = np.random.default_rng(seed)
    arrays = [normal(rng, shape) for _ in range(n)]
    check(lambda *ts: ag.stack(ts, axis=axis), *arrays, seed=seed)


def test_concat_with_constant_piece():
    rng = np.random.default_rng(4)
    const = ag.Tensor(normal(rng, (2, 3)))
    check(lambda a: ag.concat([const, a, const], axis=0), normal(rng, (1, 3)))
    check(lambda a: ag.stack([a, const], axis=1), normal(rng, (2, 3)))


# ----------------------------------------------------------------- indexing

GETITEM_SHAPE = (4, 5, 3)
GETITEM_CASES = [
    np.s_[1],
    np.s_[-1],
    np.s_[1:3],
    np.s_[::-2],
    np.s_[1, 2, 0],
    np.s_[:, 1:4:2, -1],
    np.s_[..., 1],
    np.s_[None, 2],
    np.s_[1, ..., None, ::-1],
    np.s_[[0, 0, 2]],
    np.s_[[3, 3, 3, 3]],
    np.s_[:, [4, 0, 4]],
    np.s_[[0, 1, 1], [2, 2, 2]],
    np.s_[[[0, 1], [1, 0]], :, [2, 2]],
    np.s_[[0, 0], 1:3, None],
    [1, 1, 0],
]


@pytest.mark.parametrize("idx", GETITEM_CASES, ids=repr)
def test_getitem_cases(idx):
    x = normal(np.random.default_rng(5), GETITEM_SHAPE)
    check(lambda t: t[idx], x, seed=7)


def test_getitem_repeats_accumulate():
    x = leaf(np.arange(4.0))
    x[np.array([1, 1, 1, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 3.0, 0.0, 1.0])


def test_getitem_tensor_index():
    rng = np.random.default_rng(6)
    idx = ag.Tensor(np.array([2, 0, 2]))
    check(lambda t: t[idx], normal(rng, (3, 2)))


@SETTINGS
@given(shape=nonscalar_shapes, data=st.data(), seed=seeds)
def test_getitem_basic_indices(shape, data, seed):
    idx = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True),
                    label="idx")
    x = normal(np.random.default_rng(seed), shape)
    check(lambda t: t[idx], x, seed=seed)


@SETTINGS
@given(shape=nonscalar_shapes, data=st.data(), seed=seeds)
def test_getitem_integer_arrays(shape, data, seed):
    idx = data.draw(hnp.integer_array_indices(
        shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)), label="idx")
    x = normal(np.random.default_rng(seed), shape)
    check(lambda t: t[idx], x, seed=seed)


@SETTINGS
@given(shape=nonscalar_shapes, data=st.data(), seed=seeds)
def test_getitem_boolean_mask(shape, data, seed):
    k = data.draw(st.integers(1, len(shape)), label="mask dims")
    rng = np.random.default_rng(seed)
    mask = rng.random(shape[:k]) < 0.5
    x = normal(rng, shape)
    check(lambda t: t[mask], x, seed=seed)
    check(lambda t: t[ag.Tensor(mask)], x, seed=seed)
    if k < len(shape):
        check(lambda t: t[..., 0][mask], x, seed=seed)


# ----------------------------------------------------------------- compositions


@SETTINGS
@given(pair=broadcast_pairs, seed=seeds)
def test_composite_expression(pair, seed):
    """Several ops and a shared input: gradients from several paths must add up."""
    rng = np.random.default_rng(seed)
    a, b = normal(rng, pair[0]), positive(rng, pair[1])

    def f(x, y):
        z = x * y + (x - y).tanh() * x
        return (z.sigmoid() + y.log() * z) / (1.0 + y)

    check(f, a, b, seed=seed)


# ----------------------------------------------------------------- the oracle's CI guard
