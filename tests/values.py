"""Shared test inputs: hypothesis shape strategies and value makers that keep
values away from kinks, poles and ties, so a gradient test fails only for a real bug."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autograd as ag

seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)

# pairs that must broadcast, drawn, plus the classic ones named explicitly
broadcast_pairs = st.one_of(
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4).map(
        lambda bs: bs.input_shapes
    ),
    st.sampled_from([((3, 1), (1, 4)), ((5,), (2, 5)), ((), (3, 4)), ((3, 4), ()),
                     ((2, 1, 3), (4, 1)), ((4, 1), (4, 3))]),
)


@st.composite
def shape_and_axis(draw, min_dims=0):
    """A shape, an axis argument for it (None, an int or a tuple, some negative) and
    keepdims."""
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=4))
    nd = len(shape)
    kinds = ["none"] + (["int", "tuple"] if nd else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-nd, nd - 1))
    else:
        picked = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
        # some axes spelled negatively
        axis = tuple(a - nd if draw(st.booleans()) else a for a in picked)
    return shape, axis, draw(st.booleans())


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def nonzero(rng, shape):
    """Magnitude in [0.3, 2], random sign: away from the kink of abs/relu and poles."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)


def distinct(rng, shape):
    """All values at least 4/size apart: no ties for max/min, even under eps."""
    n = int(np.prod(shape, dtype=int))
    grid = np.linspace(-2.0, 2.0, max(n, 2))[:n]
    step = 4.0 / max(n - 1, 1)
    vals = rng.permutation(grid) + rng.uniform(-step / 4, step / 4, n)
    return vals.reshape(shape)


def off_grid(rng, shape, offset):
    """k/2 + offset + jitter: two arrays with offsets 0.1 and 0.35 never come within
    0.15 of each other (no ties for maximum/minimum), and none of them lies within
    0.15 of a multiple of 1/2 (clip bounds) when offset is 0.25."""
    k = rng.integers(-4, 5, shape)
    return k / 2 + offset + rng.uniform(-0.05, 0.05, shape)


def leaf(data, name=None, dtype=np.float64):
    """A leaf tensor that requires grad."""
    return ag.Tensor(np.asarray(data, dtype=dtype), requires_grad=True, name=name)


# matmul operand shapes covering NumPy's rules: 1-D on either side, batches, broadcast
MATMUL_SHAPES = [
    ((4,), (4,)),
    ((4,), (4, 3)),
    ((3, 4), (4,)),
    ((3, 4), (4, 5)),
    ((2, 3, 4), (4, 5)),
    ((4, 5), (2, 5, 3)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
    ((1, 1), (1, 1)),
]


def cube_function(slope: float = 3.0):
    """A custom op computing x**3 whose backward claims d/dx = slope * x**2
    (right for slope 3, wrong everywhere otherwise)."""

    class Cube(ag.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved
            return slope * x**2 * grad

    Cube.__name__ = "Cube" if slope == 3.0 else f"WrongCube{slope:g}"
    return Cube
