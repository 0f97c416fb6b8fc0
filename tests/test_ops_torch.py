"""Values and gradients of every op against PyTorch float64, an independent oracle.

Each case runs the same inputs through chainrule and through torch, backpropagates
the same random upstream gradient through both and compares the outputs and every
input's gradient to ~1e-10. Skips when torch is missing (conftest makes that an error
in CI).
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

torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=25, deadline=None)
TOL = dict(rtol=1e-10, atol=1e-10)

def compare(ag_fn, torch_fn, *arrays, seed=0):
    """Same inputs, same upstream gradient: outputs and input gradients must agree."""
    ours = [ag.Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = ag_fn(*ours)
    ref = torch_fn(*theirs)
    assert out.dtype == np.float64
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL)
    v = np.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    out.backward(v)
    ref.backward(torch.from_numpy(v.copy()))
    for i, (a, t) in enumerate(zip(ours, theirs)):
        expected = np.zeros(a.shape) if t.grad is None else t.grad.numpy()
        assert a.grad is not None, f"input {i} got no gradient"
        assert a.grad.shape == a.shape
        np.testing.assert_allclose(a.grad, expected, **TOL, err_msg=f"gradient of input {i}")


# ----------------------------------------------------------------- elementwise

UNARY = {
    "neg": (lambda x: -x, lambda x: -x, normal),
    "exp": (lambda x: x.exp(), torch.exp, normal),
    "log": (lambda x: x.log(), torch.log, positive),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt, positive),
    "abs": (lambda x: x.abs(), torch.abs, nonzero),
    "tanh": (lambda x: x.tanh(), torch.tanh, normal),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid, lambda r, s: 5 * r.standard_normal(s)),
    "relu": (lambda x: x.relu(), torch.relu, nonzero),
    "clip": (lambda x: x.clip(-0.5, 0.5), lambda x: torch.clamp(x, -0.5, 0.5),
             lambda r, s: off_grid(r, s, 0.25)),
    "clip_lo": (lambda x: x.clip(min=0.0), lambda x: torch.clamp(x, min=0.0),
                lambda r, s: off_grid(r, s, 0.25)),
    "clip_hi": (lambda x: x.clip(max=0.5), lambda x: torch.clamp(x, max=0.5),
                lambda r, s: off_grid(r, s, 0.25)),
    "pow3": (lambda x: x**3, lambda x: x**3, normal),
    "pow_half": (lambda x: x**0.5, lambda x: x**0.5, positive),
    "pow_neg": (lambda x: x**-1.5, lambda x: x**-1.5, positive),
    "rpow": (lambda x: 2.0**x, lambda x: 2.0**x, normal),
    "rsub": (lambda x: 2.5 - x, lambda x: 2.5 - x, normal),
    "rdiv": (lambda x: 3.0 / x, lambda x: 3.0 / x, nonzero),
    "scalar_mix": (lambda x: (x * 1.5 + 2.0) / 4.0 - 1.0, lambda x: (x * 1.5 + 2.0) / 4.0 - 1.0,
                   normal),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary(name, shape, seed):
    ours, theirs, make = UNARY[name]
    compare(ours, theirs, make(np.random.default_rng(seed), shape), seed=seed)


BINARY = {
    "add": (lambda a, b: a + b, torch.add, normal, normal),
    "sub": (lambda a, b: a - b, torch.sub, normal, normal),
    "mul": (lambda a, b: a * b, torch.mul, normal, normal),
    "div": (lambda a, b: a / b, torch.div, normal, nonzero),
    "pow": (lambda a, b: a**b, torch.pow, positive, normal),
    "maximum": (ag.maximum, torch.maximum,
                lambda r, s: off_grid(r, s, 0.1), lambda r, s: off_grid(r, s, 0.35)),
    "minimum": (ag.minimum, torch.minimum,
                lambda r, s: off_grid(r, s, 0.1), lambda r, s: off_grid(r, s, 0.35)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(pair=broadcast_pairs, seed=seeds)
def test_binary(name, pair, seed):
    ours, theirs, make_a, make_b = BINARY[name]
    rng = np.random.default_rng(seed)
    compare(ours, theirs, make_a(rng, pair[0]), make_b(rng, pair[1]), seed=seed)


@SETTINGS
@given(shapes3=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4),
       seed=seeds)
def test_where(shapes3, seed):
    cshape, xshape, yshape = shapes3.input_shapes
    rng = np.random.default_rng(seed)
    cond = rng.random(cshape) < 0.5
    compare(lambda x, y: ag.where(cond, x, y),
            lambda x, y: torch.where(torch.tensor(cond), x, y),
            normal(rng, xshape), normal(rng, yshape), seed=seed)


@pytest.mark.parametrize("which", ["maximum", "minimum"])
def test_maximum_minimum_ties_match_torch(which):
    a = np.array([1.0, 2.0, 3.0, -1.0])
    b = np.array([1.0, 0.0, 3.0, -1.0])
    compare(getattr(ag, which), getattr(torch, which), a, b)


# ----------------------------------------------------------------- matmul



@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=str)
def test_matmul(sa, sb):
    rng = np.random.default_rng(sum(sa) + 7 * sum(sb))
    compare(lambda a, b: a @ b, torch.matmul, normal(rng, sa), normal(rng, sb), seed=1)


# ----------------------------------------------------------------- reductions


def _torch_dims(x, axis):
    return tuple(range(x.ndim)) if axis is None else axis


REDUCTIONS = {
    "sum": (lambda t, ax, kd: t.sum(dim=_torch_dims(t, ax), keepdim=kd), normal),
    "mean": (lambda t, ax, kd: t.mean(dim=_torch_dims(t, ax), keepdim=kd), normal),
    "max": (lambda t, ax, kd: t.amax(dim=_torch_dims(t, ax), keepdim=kd), distinct),
    "min": (lambda t, ax, kd: t.amin(dim=_torch_dims(t, ax), keepdim=kd), distinct),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@SETTINGS
@given(sak=shape_and_axis(min_dims=1), seed=seeds)
def test_reductions(name, sak, seed):
    shape, axis, keepdims = sak
    theirs, make = REDUCTIONS[name]
    compare(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims),
            lambda t: theirs(t, axis, keepdims),
            make(np.random.default_rng(seed), shape), seed=seed)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_full_reduction_of_0d(name):
    compare(lambda x: getattr(x, name)(), lambda t: getattr(t, name)(), np.array(1.7))


@pytest.mark.parametrize("name,torch_name", [("max", "amax"), ("min", "amin")])
def test_extremum_ties_match_torch(name, torch_name):
    x = np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.5], [-2.0, 7.0, -2.0, 1.0]])
    for axis in (None, 0, 1):
        dims = (0, 1) if axis is None else axis
        compare(lambda t, axis=axis: getattr(t, name)(axis=axis),
                lambda t, dims=dims: getattr(t, torch_name)(dim=dims), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@SETTINGS
@given(shape=nonscalar_shapes, data=st.data(), seed=seeds)
def test_softmax_family(name, shape, data, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = 3 * normal(np.random.default_rng(seed), shape)
    compare(lambda t: getattr(t, name)(axis=axis),
            lambda t: getattr(torch, name)(t, dim=axis), x, seed=seed)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_large_logits(name):
    x = np.array([[800.0, -800.0, 0.0], [-800.0, -799.0, -800.0], [1e3, 1e3, 1e3]])
    compare(lambda t: getattr(t, name)(axis=1), lambda t: getattr(torch, name)(t, dim=1), x)


def test_sigmoid_large_inputs():
    x = np.array([-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0])
    compare(lambda t: t.sigmoid(), torch.sigmoid, x)


# ----------------------------------------------------------------- shape ops


@SETTINGS
@given(shape=shapes, data=st.data(), seed=seeds)
def test_reshape(shape, data, seed):
    size = int(np.prod(shape, dtype=int))
    target = data.draw(st.sampled_from([(size,), (-1,), (1, size), tuple(reversed(shape)),
                                        (-1, 1), (1,) + shape]), label="target")
    compare(lambda t: t.reshape(target), lambda t: t.reshape(target),
            normal(np.random.default_rng(seed), shape), seed=seed)


@SETTINGS
@given(shape=shapes, data=st.data(), seed=seeds)
def test_transpose(shape, data, seed):
    nd = len(shape)
    perm = data.draw(st.permutations(range(nd)), label="perm")
    signs = data.draw(st.lists(st.booleans(), min_size=nd, max_size=nd), label="neg")
    axes = tuple(p - nd if neg else p for p, neg in zip(perm, signs))
    x = normal(np.random.default_rng(seed), shape)
    compare(lambda t: t.transpose(axes), lambda t: t.permute(axes), x, seed=seed)
    reverse = tuple(range(nd))[::-1]
    compare(lambda t: t.T, lambda t: t.permute(reverse), x, seed=seed)


@SETTINGS
@given(base=nonscalar_shapes, data=st.data(), seed=seeds)
def test_concat_and_stack(base, data, seed):
    nd = len(base)
    axis = data.draw(st.integers(-nd, nd - 1), label="axis")
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="sizes")
    rng = np.random.default_rng(seed)
    pieces = []
    for n in sizes:
        s = list(base)
        s[axis] = n
        pieces.append(normal(rng, tuple(s)))
    compare(lambda *ts: ag.concat(ts, axis=axis), lambda *ts: torch.cat(ts, dim=axis),
            *pieces, seed=seed)
    same = [normal(rng, base) for _ in sizes]
    new_axis = data.draw(st.integers(-nd - 1, nd), label="stack axis")
    compare(lambda *ts: ag.stack(ts, axis=new_axis), lambda *ts: torch.stack(ts, dim=new_axis),
            *same, seed=seed)


# ----------------------------------------------------------------- indexing

INDEX_CASES = [
    (np.s_[1], None),
    (np.s_[-1], None),
    (np.s_[1:3], None),
    (np.s_[::2], None),
    (np.s_[1, 2, 0], None),
    (np.s_[:, 1:4:2, -1], None),
    (np.s_[..., 1], None),
    (np.s_[None, 2], None),
    (np.s_[1, ..., None, 0:2], None),
    ("ints", lambda: (np.array([0, 0, 2, 3, 0]),)),
    ("ints_2d", lambda: (np.array([[3, 3], [1, 3]]),)),
    ("ints_axis1", lambda: (slice(None), np.array([4, 0, 4, 4]))),
    ("ints_pair", lambda: (np.array([0, 1, 1]), np.array([2, 2, 2]))),
    ("ints_split", lambda: (np.array([[0, 1], [1, 0]]), slice(None), np.array([2, 2]))),
    ("mask", lambda: (np.random.default_rng(3).random((4, 5)) < 0.5,)),
    ("mask_full", lambda: (np.random.default_rng(4).random((4, 5, 3)) < 0.5,)),
    ("mask_axis1", lambda: (slice(None), np.array([True, False, True, True, False]))),
]


def _torch_index(idx):
    parts = idx if isinstance(idx, tuple) else (idx,)
    return tuple(torch.from_numpy(p) if isinstance(p, np.ndarray) else p for p in parts)


@pytest.mark.parametrize("case", INDEX_CASES, ids=lambda c: c[0] if isinstance(c[0], str)
                         else repr(c[0]))
def test_getitem(case):
    idx = case[1]() if case[1] is not None else case[0]
    x = normal(np.random.default_rng(9), (4, 5, 3))
    compare(lambda t: t[idx], lambda t: t[_torch_index(idx)], x, seed=2)


# ----------------------------------------------------------------- a composite


@SETTINGS
@given(pair=broadcast_pairs, seed=seeds)
def test_composite(pair, seed):
    rng = np.random.default_rng(seed)
    a, b = normal(rng, pair[0]), positive(rng, pair[1])

    def f(x, y):
        z = x * y + (x - y).tanh() * x
        return ((z.sigmoid() + y.log() * z) / (1.0 + y)).exp().sqrt()

    compare(f, f, a, b, seed=seed)


def test_mlp_like_graph():
    rng = np.random.default_rng(11)
    X, W1, b1, W2 = (normal(rng, s) for s in [(6, 4), (4, 5), (5,), (5, 3)])

    def ours(x, w1, c1, w2):
        h = (x @ w1 + c1).relu()
        return (h @ w2).log_softmax(axis=-1).mean()

    def theirs(x, w1, c1, w2):
        h = torch.relu(x @ w1 + c1)
        return torch.log_softmax(h @ w2, dim=-1).mean()

    compare(ours, theirs, X, W1, b1, W2)
