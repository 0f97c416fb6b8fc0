"""The op table: one row per op, read by the gradcheck tests, the PyTorch tests and the fuzzer.

A row (``OpInfo``) holds, for one op:

- ``op``: its class (a ``Function`` in ``autograd/ops.py``, or one of nn's fused ops);
- ``forms``: the ways a user calls it, as code templates with the PyTorch float64
  equivalent next to each: ``Form("{a} - {b}")``, ``Form("{k} - {a}")``,
  ``Form("{a}.max(axis={axis}, keepdims={keepdims})", "{a}.amax(dim={dims}, ...)")``.
  Fields ``{a}``, ``{b}``, ``{c}`` are tensors, ``{xs}`` a list of tensors; every other
  field is a parameter. Compiled, a template is the call a test makes; filled in with
  names and literals, it is a line of a repro a developer can paste;
- ``family``: the shapes the op takes (elementwise, broadcasting pair, reduction, matmul,
  indexing, ...). From the first input's shape it draws the other inputs' shapes
  (``Partner``) and the shape parameters (axis, index, target shape, ...);
- ``domains``: the values each tensor input accepts (``Domain``): the unit tests draw
  them off every kink, pole and tie (``values.py``); the fuzzer, whose values are
  computed, checks them and inserts a guard (``x.abs() + 0.5`` before a log) when they
  are outside;
- ``examples``: fixed cases kept whatever hypothesis draws; ``tol``: tolerances, if any
  op needs others than the tests' defaults.

A family draws through a ``Picker``: hypothesis in the unit tests (a failure shrinks to
a small case), a seeded NumPy generator in the fuzzer (a program replays from its seed).

Adding an op: its class in ``autograd/ops.py``, its Tensor method or ``ag.`` function,
and its row here (see CONTRIBUTING.md). ``missing_rows()`` names ops without a row.
"""

from __future__ import annotations

import functools
import math
import string
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from values import distinct, nonzero, normal, off_grid, positive

import autograd as ag
import nn.functional as F
from autograd import ops

# ============================================================================ pickers


class Picker:
    """Where a family's random choices come from."""

    def integer(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        raise NotImplementedError

    def choice(self, options):
        """One of ``options`` (hypothesis shrinks towards the first)."""
        raise NotImplementedError

    def boolean(self) -> bool:
        return self.choice((False, True))

    def generator(self) -> np.random.Generator:
        """A NumPy generator, for arrays of values (masks, index arrays)."""
        return np.random.default_rng(self.integer(0, 2**32 - 1))

    def shape(self, min_dims: int = 0, max_dims: int = 3, sides=(1, 2, 3, 4)) -> tuple:
        return tuple(self.choice(sides) for _ in range(self.integer(min_dims, max_dims)))

    def axes(self, ndim: int, k: int) -> list:
        """``k`` distinct axes of ``ndim``, in random order."""
        pool = list(range(ndim))
        for i in range(k):
            j = self.integer(i, ndim - 1)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


class HypothesisPicker(Picker):
    """Draws from hypothesis' ``st.data()``: failing cases shrink."""

    def __init__(self, data):
        self._data = data

    def integer(self, lo, hi):
        return self._data.draw(st.integers(lo, hi))

    def choice(self, options):
        return self._data.draw(st.sampled_from(options))


class RandomPicker(Picker):
    """Draws from a NumPy generator: the same seed gives the same choices."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def integer(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def choice(self, options):
        return options[int(self.rng.integers(len(options)))]


# ============================================================================ domains

TAME = 1e3  # the fuzzer squashes larger values (and infinities) unless it tries an edge

ROUNDING = 1e-5  # relative: what float32 rounding over a program can move a value


def near(d, scale) -> bool:
    """Some element of ``d`` is within rounding error of 0 without being 0; rounding
    error relative to the largest finite magnitude in ``scale``."""
    d = np.abs(np.asarray(d, dtype=np.float64))
    scale = np.abs(np.asarray(scale, dtype=np.float64))
    tol = ROUNDING * max(1.0, float(np.max(scale[np.isfinite(scale)], initial=0.0)))
    return bool(np.any((d > 0) & (d <= tol)))


def _tame(x) -> bool:
    """Finite and at most ``TAME`` in magnitude."""
    return bool(np.all(np.isfinite(x)) and np.all(np.abs(x) <= TAME))


def _not_nan(x) -> bool:
    return not np.isnan(x).any()


@dataclass(frozen=True)
class GuardStep:
    """One step of a guard: a form of another row, by its template."""

    row: str
    template: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Domain:
    """The values an op input accepts.

    ``make(rng, shape)``: values for the unit tests, away from every kink, pole and tie.
    ``holds(x)``: whether computed values (the fuzzer's) may go in as they are.
    ``edge(x)``: whether they lie on the closed domain (zeros under a sqrt, a log or a
    division, infinities): the forward is defined there, and PyTorch says what the
    gradient is; the fuzzer tries such values now and then instead of guarding them.
    Values on the edge must be exactly on it: a value a rounding away (1e-17 for 0)
    could be on the other side in another implementation.
    ``guard``: the steps that map any value into the domain.
    """

    name: str
    make: Callable
    holds: Callable = _tame
    edge: Callable = _not_nan
    guard: tuple = (GuardStep("tanh", "{a}.tanh()"),)


def _in(lo, hi):
    def holds(x):
        return bool(np.all(x >= lo) and np.all(x <= hi))

    return holds


def _far_from_zero(x) -> bool:
    return bool(np.all(np.abs(x) >= 0.01) and _tame(x))


def _exact_zeros(x) -> bool:
    """No NaN, and no value a rounding away from 0: on the edge at 0, exactly."""
    return _not_nan(x) and not near(x, x)


def _exact_unit_interval(x) -> bool:
    return _in(0.0, 1.0)(x) and not near(x, 1) and not near(x - 1, 1)


_PLUS_HALF = (GuardStep("abs", "{a}.abs()"), GuardStep("add", "{a} + {k}", {"k": 0.5}))
_SQUASH_TO_UNIT = (GuardStep("tanh", "{a}.tanh()"), GuardStep("sigmoid", "{a}.sigmoid()"))

REAL = Domain("real", normal)
KINKED = Domain("off the kink at 0", nonzero)  # abs, relu: the unit tests avoid 0
CLIPPED = Domain("off the clip bounds", lambda r, s: off_grid(r, s, 0.25))
DISTINCT = Domain("without ties", distinct)  # max / min reductions
TIE_FREE_LOW = Domain("below ties", lambda r, s: off_grid(r, s, 0.1))  # maximum / minimum
TIE_FREE_HIGH = Domain("above ties", lambda r, s: off_grid(r, s, 0.35))
LOGITS = Domain("logits", lambda r, s: 3 * normal(r, s))
SMALL = Domain("small", normal, holds=_in(-20, 20))  # exponents: no overflow
POSITIVE = Domain("positive", positive, holds=_in(0.01, TAME),
                  edge=lambda x: bool(np.all(x >= 0)) and _exact_zeros(x), guard=_PLUS_HALF)
NONZERO = Domain("nonzero", nonzero, holds=_far_from_zero, edge=_exact_zeros,
                 guard=_PLUS_HALF)
PROBABILITY = Domain("probability", lambda r, s: r.uniform(0.05, 0.95, s),
                     holds=_in(0.01, 0.99), edge=_exact_unit_interval, guard=_SQUASH_TO_UNIT)
TARGET = Domain("target in [0, 1]", lambda r, s: r.uniform(0.0, 1.0, s), holds=_in(0.0, 1.0),
                edge=_in(0.0, 1.0), guard=_SQUASH_TO_UNIT)

# ============================================================================ families

TENSOR_FIELDS = ("a", "b", "c", "xs")
SELF = "self"  # in a list of partners: the first input itself (concat(a, a))


@dataclass(frozen=True)
class Partner:
    """Another tensor input: the ``shape`` drawn for it, and which shapes of values
    that already exist would do as well (the fuzzer reuses them: diamonds, ``x * x``)."""

    shape: tuple
    fits: Callable = None

    def accepts(self, shape) -> bool:
        return self.fits(shape) if self.fits else tuple(shape) == tuple(self.shape)


@dataclass(frozen=True)
class Sample:
    """What a family drew: partners by field (a list for ``xs``) and parameters."""

    partners: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """The shapes an op takes. ``sample(pick, shape)`` draws the rest of a call from the
    first input's shape; that shape has ``min_dims`` to ``max_dims`` dimensions
    (``max_dims=None``: any; the unit tests stop at 3)."""

    name: str
    sample: Callable
    min_dims: int = 0
    max_dims: int | None = None
    accepts: Callable = None  # a further condition on the first input's shape
    sides: tuple = (1, 2, 3, 4)  # the sizes drawn, the simplest first

    def takes(self, shape) -> bool:
        nd = len(shape)
        if nd < self.min_dims or (self.max_dims is not None and nd > self.max_dims):
            return False
        return self.accepts is None or self.accepts(shape)


def broadcastable(*shapes) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def broadcast_partner(pick: Picker, shape, widen: bool = True) -> tuple:
    """A shape that broadcasts with ``shape``: some of its trailing axes, each the same
    or 1, and, when ``widen``, any size where ``shape`` has a 1 and new leading axes.
    (With ``widen=False`` the result broadcasts with anything ``shape`` broadcasts with.)"""
    nd = len(shape)
    keep = pick.integer(0, nd)
    dims = tuple(pick.choice((1, 2, 3)) if n == 1 and widen else pick.choice((n, 1))
                 for n in shape[nd - keep:])
    lead = pick.integer(0, max(0, min(2, 4 - nd))) if widen and keep == nd else 0
    return tuple(pick.choice((1, 2, 3)) for _ in range(lead)) + dims


def _elementwise(pick, shape):
    return Sample()


def _broadcasting(pick, shape):
    other = broadcast_partner(pick, shape)
    return Sample({"b": Partner(other, lambda s: broadcastable(shape, s))})


def _where(pick, shape):
    other = broadcast_partner(pick, shape)
    cond = pick.generator().random(broadcast_partner(pick, shape, widen=False)) < 0.5
    return Sample({"b": Partner(other, lambda s: broadcastable(shape, s))}, {"cond": cond})


def _matmul(pick, shape):
    k = shape[-1]
    if pick.boolean():
        return Sample({"b": Partner((k,))})
    batch = broadcast_partner(pick, shape[:-2]) if len(shape) > 2 else ()
    if len(shape) == 2 and pick.boolean():
        batch = (pick.choice((1, 2, 3)),)  # a matrix times a batch of matrices
    return Sample({"b": Partner(batch + (k, pick.choice((1, 2, 3, 4))))})


def _reduction(pick, shape):
    nd = len(shape)
    kind = pick.choice(("all", "int", "tuple", "list")) if nd else "all"
    if kind == "all":
        axis = None
    elif kind == "int":
        axis = pick.integer(-nd, nd - 1)
    else:  # distinct axes, some spelled negatively
        axes = [a - nd if pick.boolean() else a for a in pick.axes(nd, pick.integer(1, nd))]
        axis = tuple(axes) if kind == "tuple" else axes
    dims = tuple(range(nd)) if axis is None else tuple(axis) if kind == "list" else axis
    return Sample(params={"axis": axis, "keepdims": pick.boolean(), "dims": dims})


def _along_axis(pick, shape):
    nd = len(shape)
    return Sample(params={"axis": pick.integer(-nd, nd - 1)})


def _divisors(n):
    return [d for d in range(2, n + 1) if n % d == 0]


def _reshape(pick, shape):
    size = math.prod(shape)
    targets = [(size,), (-1,), (1, size), tuple(reversed(shape)), (-1, 1), (1,) + shape,
               shape + (1,)]
    if size == 1:
        targets.append(())
    if _divisors(size):  # a random factorisation, one factor maybe left to -1
        first = pick.choice(_divisors(size))
        split = (first, size // first)
        targets.append(split if pick.boolean() else (first, -1))
    return Sample(params={"shape": pick.choice(targets)})


def _transpose(pick, shape):
    nd = len(shape)
    perm = tuple(pick.axes(nd, nd))
    axes = tuple(p - nd if pick.boolean() else p for p in perm)
    return Sample(params={"axes": axes, "perm": perm, "rev": tuple(range(nd))[::-1]})


def _slice(pick):
    return slice(pick.choice((None, 0, 1, -1, -3)), pick.choice((None, 2, -1, 1, 5)),
                 pick.choice((None, 2, -1, 1, -2)))


def _basic_index(pick, shape):
    """Integers and slices on some leading (or, after ``...``, trailing) axes, maybe
    with a ``None`` (new axis) among them."""
    nd = len(shape)
    j = pick.integer(1, nd)
    from_end = pick.boolean()
    parts = [pick.integer(-n, n - 1) if n and pick.boolean() else _slice(pick)
             for n in (shape[nd - j:] if from_end else shape[:j])]
    if from_end:
        parts.insert(0, Ellipsis)
    if pick.boolean():
        parts.insert(pick.integer(0, len(parts)), None)
    return parts[0] if len(parts) == 1 and pick.boolean() else tuple(parts)


def _integer_index(pick, shape):
    """One or two integer arrays, with repeats (the gradient must add them up), maybe
    separated by a slice (NumPy then moves the indexed axes to the front)."""
    nd = len(shape)
    rng = pick.generator()
    positions = [pick.integer(0, nd - 1)]
    if nd >= 2 and pick.boolean():
        positions = [0, pick.integer(1, min(2, nd - 1))]
    result = pick.choice(((3,), (5,), (2, 2), (1,)))
    if not all(shape[p] for p in positions):
        result = (0,)  # an empty axis has no valid integer: index it with []
    parts = [slice(None)] * (max(positions) + 1)
    for p in positions:
        n = shape[p]
        parts[p] = rng.integers(-n, n, result) if n else np.zeros(result, dtype=np.int64)
    if len(parts) == 1:
        # alone: maybe a plain list, as users write it
        return parts[0].tolist() if parts[0].ndim == 1 and pick.boolean() else parts[0]
    return tuple(parts)


def _mask_index(pick, shape):
    """A boolean mask over some consecutive axes, maybe after slices."""
    nd = len(shape)
    start = pick.integer(0, nd - 1)
    stop = pick.integer(start + 1, nd)
    mask = pick.generator().random(shape[start:stop]) < 0.5
    return tuple([slice(None)] * start + [mask]) if start else mask


def _getitem(pick, shape):
    if not shape:
        return Sample(params={"idx": pick.choice(((), Ellipsis, None))})
    kind = pick.choice((_basic_index, _integer_index, _mask_index))
    return Sample(params={"idx": kind(pick, shape)})


def _pieces(pick, shape, axis, same_shape):
    """Inputs to concatenate or stack with the first one (itself included, maybe twice)."""
    n = pick.integer(0, 2)
    pieces = []
    for _ in range(n):
        if same_shape:
            pieces.append(Partner(shape))
        else:
            s = list(shape)
            s[axis] = pick.choice((1, 2, 3))
            pieces.append(Partner(tuple(s), functools.partial(_fits_but_axis, shape, axis)))
    pieces.insert(pick.integer(0, n), SELF)
    return pieces


def _fits_but_axis(shape, axis, s):
    return len(s) == len(shape) and all(
        m == n for i, (m, n) in enumerate(zip(s, shape)) if i != axis % len(shape))


def _concat(pick, shape):
    nd = len(shape)
    axis = pick.integer(-nd, nd - 1)
    return Sample({"xs": _pieces(pick, shape, axis, same_shape=False)}, {"axis": axis})


def _stack(pick, shape):
    nd = len(shape)
    axis = pick.integer(-nd - 1, nd)
    return Sample({"xs": _pieces(pick, shape, axis, same_shape=True)}, {"axis": axis})


def _linear(pick, shape):
    n_in = shape[-1]
    out = pick.choice((1, 2, 3) + ((shape[-2],) if len(shape) >= 2 else ()))
    return Sample({"b": Partner((out, n_in)), "c": Partner((out,))})


def _same_shape(pick, shape):
    return Sample({"b": Partner(shape)})


def _class_targets(pick, shape):
    target = pick.generator().integers(0, shape[-1], shape[:-1])
    return Sample(params={"target": np.asarray(target, dtype=np.int64)})


ELEMENTWISE = Family("elementwise", _elementwise)
BROADCASTING = Family("broadcasting pair", _broadcasting)
WHERE = Family("mask and broadcasting pair", _where)
MATMUL = Family("matmul: 1-D, matrices, broadcast batches", _matmul, min_dims=1)
REDUCTION = Family("reduction with axis / keepdims", _reduction)
ALONG_AXIS = Family("along one axis", _along_axis, min_dims=1)
RESHAPE = Family("reshape targets", _reshape)
TRANSPOSE = Family("axis permutations", _transpose)
GETITEM = Family("indices: basic, integer arrays, masks", _getitem)
CONCAT = Family("n-ary, along an existing axis", _concat, min_dims=1)
STACK = Family("n-ary, along a new axis", _stack)
LINEAR = Family("(..., in) with weight (out, in) and bias (out,)", _linear, min_dims=1)
SAME_SHAPE = Family("pair of one shape", _same_shape)
CLASSES = Family("(N, C) or (C,) with class indices", _class_targets, min_dims=1,
                 max_dims=2, accepts=lambda s: s[-1] > 0)

# ------------------------------------------------------ padding, gathering, sorting, einsum


def _pad(pick, shape):
    """NumPy's pad_width as n, (before, after) or a pair per axis, and PyTorch's pad:
    the same pairs from the last axis backwards, flattened."""
    nd = len(shape)
    kind = pick.choice(("pairs", "int", "pair"))
    if kind == "int":
        n = pick.integer(0, 2)
        width, pairs = n, [(n, n)] * nd
    elif kind == "pair":
        width = (pick.integer(0, 2), pick.integer(0, 2))
        pairs = [width] * nd
    else:
        pairs = [(pick.integer(0, 2), pick.integer(0, 2)) for _ in range(nd)]
        width = tuple(pairs)
    torch_pad = tuple(n for pair in reversed(pairs) for n in pair)
    return Sample(params={"pad_width": width, "torch_pad": torch_pad})


def _gather(pick, shape):
    """An axis and two index arrays with repeats: ``index`` for np.take_along_axis
    (negative entries, size 1 where it broadcasts) with ``full``, the same for
    torch.gather; ``gindex`` for t.gather (no larger than the input off the axis)."""
    nd = len(shape)
    axis = pick.integer(-nd, nd - 1)
    ax, n, rng = axis % nd, shape[axis], pick.generator()
    k = pick.choice((1, 2, 3, 5)) if n else 0
    sides = tuple(k if d == ax else pick.choice((m, 1)) for d, m in enumerate(shape))
    index = rng.integers(-n, n, sides) if n else np.zeros(sides, dtype=np.int64)
    full = shape[:ax] + (k,) + shape[ax + 1:]
    gsides = tuple(k if d == ax else pick.integer(min(m, 1), m) for d, m in enumerate(shape))
    gindex = rng.integers(0, n, gsides) if n else np.zeros(gsides, dtype=np.int64)
    return Sample(params={"axis": axis, "index": index,
                          "full": np.broadcast_to(index % max(n, 1), full).copy(),
                          "gindex": gindex})


def _index_add(pick, shape):
    """A source partner and a 1-D index (with repeats) along an axis."""
    nd = len(shape)
    axis = pick.integer(-nd, nd - 1)
    n = shape[axis]
    m = pick.choice((1, 2, 4)) if n else 0
    index = pick.generator().integers(0, max(n, 1), m)
    source = shape[:axis % nd] + (m,) + shape[axis % nd + 1:]
    return Sample({"b": Partner(source)}, {"axis": axis, "index": index})


def _scatter_add(pick, shape):
    """torch.scatter_add: an index (with repeats) no larger than the tensor off the
    axis, and a source of the index's shape (a larger source is computed forward by
    PyTorch, but its backward then returns a gradient of the wrong shape)."""
    nd = len(shape)
    axis = pick.integer(-nd, nd - 1)
    ax, n = axis % nd, shape[axis]
    sides = tuple((pick.choice((1, 2, 4)) if n else 0) if d == ax
                  else pick.integer(min(m, 1), m) for d, m in enumerate(shape))
    index = pick.generator().integers(0, max(n, 1), sides)
    return Sample({"b": Partner(sides)}, {"axis": axis, "index": index})


def _sort(pick, shape):
    nd = len(shape)
    axis = pick.integer(-nd, nd - 1)
    k = pick.integer(0, shape[axis])
    return Sample(params={"axis": axis, "descending": pick.boolean(), "k": k})


def _einsum(pick, shape):
    """Subscripts for one operand (``spec1``: transpose, sums, diagonals, trace) and for
    two (``spec2``: matmul-like contractions, outer and batch products), explicit or
    implicit, with the second operand's shape."""
    nd = len(shape)
    letters = list("ijkl"[:nd])
    for d in range(1, nd):  # maybe a repeated letter (a diagonal) where sizes agree
        if shape[d] == shape[d - 1] and pick.integer(0, 3) == 0:
            letters[d] = letters[d - 1]
    term_a = "".join(letters)
    unique = list(dict.fromkeys(letters))
    # the second operand: some of a's letters (same sizes) and some new ones
    size = dict(zip(letters, shape))
    b_letters = [c for c in unique if pick.boolean()]
    b_letters += list("mn"[:pick.integer(0, 2)])
    b_letters = [b_letters[i] for i in pick.axes(len(b_letters), len(b_letters))]
    b_shape = tuple(size[c] if c in size else pick.choice((1, 2, 3)) for c in b_letters)
    if b_shape and pick.integer(0, 3) == 0:  # a length 1 that broadcasts, as NumPy allows
        b_shape = (1,) + b_shape[1:]
    term_b = "".join(b_letters)

    def output(pool):
        if pick.integer(0, 3) == 0:
            return ""  # implicit
        kept = [c for c in pool if pick.boolean()]
        return "->" + "".join(kept[i] for i in pick.axes(len(kept), len(kept)))

    spec1 = term_a + output(unique)
    spec2 = term_a + "," + term_b + output(list(dict.fromkeys(unique + b_letters)))
    return Sample({"b": Partner(b_shape)}, {"spec1": spec1, "spec2": spec2})


PAD = Family("NumPy pad widths", _pad)
GATHER = Family("indices along an axis", _gather, min_dims=1)
INDEX_ADD = Family("1-D index and source along an axis", _index_add, min_dims=1)
SCATTER_ADD = Family("index and larger source along an axis", _scatter_add, min_dims=1)
SORT = Family("along one axis, with k and order", _sort, min_dims=1)
EINSUM = Family("einsum subscripts, one and two operands", _einsum, max_dims=4)

# ----------------------------------------------------------------------- convolution


def _conv_spec(nsp):
    """From the input (N, C, *spatial) or unbatched (C, *spatial): groups dividing C,
    out_channels a multiple of groups, and per spatial axis a padding, a dilation, a
    kernel that fits the padded input and a stride; each of stride / padding / dilation
    given as an int or a tuple, as PyTorch takes either."""

    def sample(pick, shape):
        c, spatial = shape[-nsp - 1], shape[-nsp:]
        groups = pick.choice([1] + _divisors(c))
        out = groups * pick.choice((1, 2))
        pads, dils, kernel, strides = [], [], [], []
        for n in spatial:
            p, d = pick.integer(0, 1), pick.choice((1, 1, 2))
            kmax = min(3, (n + 2 * p - 1) // d + 1)
            pads.append(p)
            dils.append(d)
            kernel.append(pick.integer(1, kmax))
            strides.append(pick.choice((1, 2)))

        def spell(vals):
            return vals[0] if len(set(vals)) == 1 and pick.boolean() else tuple(vals)

        return Sample({"b": Partner((out, c // groups) + tuple(kernel)), "c": Partner((out,))},
                      {"stride": spell(strides), "padding": spell(pads),
                       "dilation": spell(dils), "groups": groups})

    return sample


def _no_empty_axis(shape) -> bool:
    return 0 not in shape


CONV1D = Family("(N, C, L) or (C, L) with weight (O, C/groups, k), bias (O,)", _conv_spec(1),
                min_dims=2, max_dims=3, accepts=_no_empty_axis)
CONV2D = Family("(N, C, H, W) or (C, H, W) with weight (O, C/groups, kh, kw), bias (O,)",
                _conv_spec(2), min_dims=3, max_dims=4, accepts=_no_empty_axis)


# ----------------------------------------------------------------------- batch norm


def _batch_norm(pick, shape):
    """(N, C, ...) with a weight and a bias of shape (C,)."""
    return Sample({"b": Partner((shape[1],)), "c": Partner((shape[1],))})


BATCH_NORM = Family("(N, C, ...) with more than one value per channel, weight and bias (C,)",
                    _batch_norm, min_dims=2, max_dims=4,
                    accepts=lambda s: 0 not in s and math.prod(s) // s[1] > 1,
                    sides=(2, 3, 1, 4))  # the simplest shape has 2 values per channel

# ============================================================================ rows


def _fields(template: str) -> list:
    seen = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in seen:
            seen.append(name)
    return seen


def _namespace(side: str) -> dict:
    if side == "ours":
        return {"ag": ag, "np": np, "F": F}
    import torch

    return {"torch": torch, "np": np}


@dataclass(frozen=True)
class Form:
    """One way to call an op: chainrule code and its PyTorch float64 equivalent.

    ``domains`` overrides the row's for this form; ``params`` gives the choices of
    parameters that no family draws (``{"k": (2.5, -1.5)}``); ``label`` tells apart
    forms with the same template.
    """

    ours: str
    theirs: str | None = None
    domains: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    label: str = ""

    @property
    def id(self) -> str:
        return self.ours + (f" [{self.label}]" if self.label else "")

    @property
    def tensors(self) -> list:
        """The tensor fields, in the order they appear."""
        return [f for f in _fields(self.ours) if f in TENSOR_FIELDS]

    def template(self, side: str) -> str:
        return self.theirs if side == "theirs" and self.theirs is not None else self.ours

    @functools.cached_property
    def _compiled(self) -> dict:
        return {}

    def function(self, side: str) -> Callable:
        """The template as a function of keyword arguments (one per field)."""
        fn = self._compiled.get(side)
        if fn is None:
            template = self.template(side)
            names = _fields(template)
            source = f"lambda *, {', '.join(names)}: " + template.format(**{n: n for n in names})
            fn = self._compiled[side] = eval(source, _namespace(side))  # noqa: S307
        return fn

    def call(self, side: str, **fields):
        """Run the form: ``side`` is "ours" (chainrule) or "theirs" (PyTorch)."""
        template = self.template(side)
        return self.function(side)(**{n: fields[n] for n in _fields(template)})

    def render(self, side: str, **code) -> str:
        """The template filled in with code strings (names and literals)."""
        template = self.template(side)
        return template.format(**{n: code[n] for n in _fields(template)})


@dataclass(frozen=True)
class Example:
    """A fixed case: the tensor inputs' shapes and the family's parameters."""

    shapes: dict
    params: dict = field(default_factory=dict)
    form: int = 0

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v}" for k, v in self.shapes.items())
        params = ", ".join(f"{k}={literal(v, subscript=k == 'idx')}"
                           for k, v in self.params.items())
        return "; ".join(filter(None, (shapes, params)))


@dataclass(frozen=True)
class OpInfo:
    """One op of the table (see the module docstring).

    ``rounding_sensitive(inputs, params)``: whether some input (arrays by field) lies
    where rounding decides the result: within rounding error of a kink or a tie without
    being on it (relu at 0, ties of max), or where the derivative is a difference of
    nearly equal numbers (tanh, sigmoid nearly saturated). Two implementations may
    round either way there, so the fuzzer draws another step instead (exact kinks,
    ties and full saturation stay in).
    """

    name: str
    op: type
    family: Family
    forms: tuple
    domains: dict = field(default_factory=dict)  # by tensor field; REAL where absent
    examples: tuple = ()
    tol: dict = field(default_factory=dict)  # {"gradcheck": {...}, "torch": {...}}
    rounding_sensitive: Callable = None

    def domain(self, form: Form, name: str) -> Domain:
        return form.domains.get(name) or self.domains.get(name) or REAL

    def form(self, template: str) -> Form:
        for f in self.forms:
            if f.ours == template:
                return f
        raise KeyError(f"{self.name}: no form {template!r}")

    def __repr__(self) -> str:
        return f"OpInfo({self.name})"


def _saturating(start, stop):
    """tanh / sigmoid: an input where 1 - y is tiny but not 0, computed from y with a
    relative error of eps / (1 - y) in float32 (from |x| = start) and float64 (up to
    ``stop``, where y rounds to 1 in both)."""

    def sensitive(inputs, params):
        x = np.abs(inputs["a"])
        return bool(np.any((x > start) & (x < stop)))

    return sensitive


def _near_zero(inputs, params):
    return near(inputs["a"], inputs["a"])


def _near_bounds(inputs, params):
    a = inputs["a"]
    return any(near(a - params[b], a) for b in ("lo", "hi") if params.get(b) is not None)


def _near_other(inputs, params):
    """maximum / minimum: the two sides nearly equal."""
    a = inputs["a"]
    other = inputs["b"] if "b" in inputs else params.get("k", 0.0)
    return near(a - other, np.abs(a) + np.abs(other))


def _near_threshold(inputs, params):
    """where(a > k, ...): a nearly k."""
    return near(inputs["a"] - params.get("k", 0.0), inputs["a"])


def _near_tie(inputs, params):
    a, axis = inputs["a"], params.get("axis")
    if a.size == 0:
        return False
    axis = tuple(axis) if isinstance(axis, list) else axis
    return any(near(a - r(a, axis=axis, keepdims=True), a) for r in (np.max, np.min))


def _binary(name, op, symbol, domains=None, scalars=(2.5, -1.5), rdomains=None):
    """A row for an arithmetic operator: tensor-tensor, tensor-scalar, scalar-tensor."""
    return OpInfo(name, op, BROADCASTING, (
        Form(f"{{a}} {symbol} {{b}}"),
        Form(f"{{a}} {symbol} {{k}}", params={"k": scalars}),
        Form(f"{{k}} {symbol} {{a}}", params={"k": scalars}, domains=rdomains or {}),
    ), domains=domains or {})


def _unary(name, op, method, torch_fn, domain=REAL, rounding_sensitive=None):
    return OpInfo(name, op, ELEMENTWISE, (Form(f"{{a}}.{method}()", f"torch.{torch_fn}({{a}})"),),
                  domains={"a": domain}, rounding_sensitive=rounding_sensitive)


def _pick(name, op):
    """maximum / minimum: ties split the gradient in half, as PyTorch's do."""
    return OpInfo(name, op, BROADCASTING, (
        Form(f"ag.{name}({{a}}, {{b}})", f"torch.{name}({{a}}, {{b}})"),
        Form(f"ag.{name}({{a}}, {{k}})",
             f"torch.{name}({{a}}, torch.tensor({{k}}, dtype={{a}}.dtype))",
             params={"k": (0.0, 0.5)}),
    ), domains={"a": TIE_FREE_LOW, "b": TIE_FREE_HIGH}, rounding_sensitive=_near_other)


def _reduce(name, op, torch_name, domain):
    return OpInfo(name, op, REDUCTION, (
        Form(f"{{a}}.{name}(axis={{axis}}, keepdims={{keepdims}})",
             f"{{a}}.{torch_name}(dim={{dims}}, keepdim={{keepdims}})"),
        Form(f"{{a}}.{name}()", f"{{a}}.{torch_name}()"),
    ), domains={"a": domain})


def _extremum(name, op, torch_name):
    """max / min: ties split the gradient evenly, as torch.amax/amin do. Elements that
    are not picked get no gradient even when an infinite one arrives (torch.amax
    multiplies by its mask, 0 * inf = NaN): the reference selects them out first."""
    def picked(dims, keepdim):
        return (f"torch.where({{a}} == {{a}}.{torch_name}({dims}keepdim=True), {{a}}, "
                f"{{a}}.detach()).{torch_name}({dims}{keepdim})")

    return OpInfo(name, op, REDUCTION, (
        Form(f"{{a}}.{name}(axis={{axis}}, keepdims={{keepdims}})",
             picked("dim={dims}, ", "keepdim={keepdims}")),
        Form(f"{{a}}.{name}()", picked("dim=tuple(range({a}.ndim)), ", "")),
    ), domains={"a": DISTINCT}, rounding_sensitive=_near_tie)


def _softmax(name, op):
    return OpInfo(name, op, ALONG_AXIS, (
        Form(f"{{a}}.{name}(axis={{axis}})", f"torch.{name}({{a}}, dim={{axis}})"),
        Form(f"{{a}}.{name}()", f"torch.{name}({{a}}, dim=-1)"),
    ), domains={"a": LOGITS})


def _joined(name, op, family, torch_name):
    return OpInfo(name, op, family, (
        Form(f"ag.{name}({{xs}}, axis={{axis}})", f"torch.{torch_name}({{xs}}, dim={{axis}})"),
    ))


# matmul operand shapes covering NumPy's rules: 1-D on either side, batches, broadcast
MATMUL_EXAMPLES = tuple(Example({"a": sa, "b": sb}) for sa, sb in [
    ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((3, 4), (4, 5)), ((2, 3, 4), (4, 5)),
    ((4, 5), (2, 5, 3)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)), ((1, 1), (1, 1)),
])

_MASK_45 = np.random.default_rng(3).random((4, 5)) < 0.5
_MASK_453 = np.random.default_rng(4).random((4, 5, 3)) < 0.5
GETITEM_EXAMPLES = tuple(Example({"a": (4, 5, 3)}, {"idx": idx}) for idx in [
    np.s_[1], np.s_[-1], np.s_[1:3], np.s_[::2], np.s_[::-2], np.s_[1, 2, 0],
    np.s_[:, 1:4:2, -1], np.s_[..., 1], np.s_[None, 2], np.s_[1, ..., None, ::-1],
    np.s_[1, ..., None, 0:2], np.array([0, 0, 2, 3, 0]), np.array([[3, 3], [1, 3]]),
    [1, 1, 0], np.s_[:, [4, 0, 4]], (slice(None), np.array([4, 0, 4, 4])),
    np.s_[[0, 1, 1], [2, 2, 2]], np.s_[[[0, 1], [1, 0]], :, [2, 2]], np.s_[[0, 0], 1:3, None],
    _MASK_45, _MASK_453, (slice(None), np.array([True, False, True, True, False])),
])

# PyTorch indexes like NumPy but without negative steps: the oracle gathers from the
# flattened tensor the positions that NumPy's indexing picks out.
_TORCH_GETITEM = ("{a}.reshape(-1)[torch.as_tensor("
                  "np.arange({a}.numel()).reshape(tuple({a}.shape))[{idx}].copy())]")
_TF = "torch.nn.functional"
_BOUNDS = {"lo": (-0.5, 0.0, -1.0), "hi": (0.5, 1.0)}  # multiples of 1/2: off CLIPPED values

# ---------------------------------------------------------------- shapes,
# reductions and scans (squeeze, unsqueeze, flatten, logsumexp, var, std, norm, cumsum)


def _squeeze(pick, shape):
    """An int axis (any: PyTorch leaves an axis whose length is not 1) or a tuple."""
    nd = len(shape)
    if nd and pick.boolean():
        axis = tuple(a - nd if pick.boolean() else a for a in pick.axes(nd, pick.integer(1, nd)))
    else:
        axis = pick.integer(-max(nd, 1), max(nd, 1) - 1)
    return Sample(params={"axis": axis})


def _unsqueeze(pick, shape):
    nd = len(shape)
    return Sample(params={"dim": pick.integer(-nd - 1, nd)})


def _flatten(pick, shape):
    n = max(len(shape), 1)
    start = pick.integer(0, n - 1)
    end = pick.integer(start, n - 1)
    if pick.boolean():  # spelled from the end
        start, end = start - n, end - n
    return Sample(params={"start": start, "end": end})


def _moments(pick, shape):
    """A reduction whose axes hold at least two values when ddof is 1 (else 0)."""
    sample = _reduction(pick, shape)
    dims = sample.params["dims"]
    axes = dims if isinstance(dims, tuple) else (dims,)
    n = math.prod(shape[a] for a in axes) if shape else 1
    ddof = pick.choice((0, 1)) if n >= 2 else 0
    return Sample(params={**sample.params, "ddof": ddof, "unbiased": ddof == 1})


def _near_constant(inputs, params):
    """std / var: values along the axes equal up to rounding (not all exactly 0): the
    two-pass mean rounds differently in another summation order, and std's gradient
    jumps between 0 (std exactly 0) and a finite value."""
    a, axis = inputs["a"], params.get("axis")
    if a.size == 0:
        return False
    axis = tuple(axis) if isinstance(axis, list) else axis
    spread = np.max(a, axis=axis) - np.min(a, axis=axis)
    scale = np.max(np.abs(a), axis=axis)
    return bool(np.any((spread <= ROUNDING * np.maximum(scale, 1.0)) & (scale > 0)))


def _near_abs_tie(inputs, params):
    """inf-norm: two magnitudes nearly tie for the largest; 1-norm: a value near 0."""
    a, axis = np.abs(inputs["a"]), params.get("axis")
    if a.size == 0:
        return False
    axis = tuple(axis) if isinstance(axis, list) else axis
    return near(inputs["a"], inputs["a"]) or near(a - np.max(a, axis=axis, keepdims=True), a)


def _distinct_magnitudes(rng, shape):
    """Magnitudes in about [0.5, 2.5], all distinct, random signs: no ties of |x|."""
    return rng.choice([-1.0, 1.0], shape) * (1.5 + distinct(rng, shape) / 2)


SQUEEZE = Family("size-1 axes to drop", _squeeze)
UNSQUEEZE = Family("a new axis", _unsqueeze)
FLATTEN = Family("a range of axes", _flatten)
MOMENTS = Family("reduction with axis / keepdims / ddof", _moments)
DISTINCT_MAGNITUDES = Domain("distinct magnitudes", _distinct_magnitudes)
_VNORM = "torch.linalg.vector_norm"
# inf-norm: elements that are not picked get no gradient even when an infinite one
# arrives (PyTorch multiplies by its mask, 0 * inf = NaN): the reference selects first
_INF_PICKED = ("torch.where({a}.abs() == {a}.abs().amax(dim={dims}, keepdim=True), {a}, "
               "{a}.detach())")


def _moment(name, op):
    return OpInfo(name, op, MOMENTS, (
        Form(f"{{a}}.{name}(axis={{axis}}, ddof={{ddof}}, keepdims={{keepdims}})",
             f"torch.{name}({{a}}, dim={{dims}}, correction={{ddof}}, keepdim={{keepdims}})"),
        Form(f"{{a}}.{name}(dim={{axis}}, unbiased={{unbiased}}, keepdim={{keepdims}})",
             f"torch.{name}({{a}}, dim={{dims}}, unbiased={{unbiased}}, "
             "keepdim={keepdims})"),
        Form(f"ag.{name}({{a}})", f"torch.{name}({{a}}, dim=tuple(range({{a}}.ndim)), "
             "correction=0)"),
    ), rounding_sensitive=_near_constant)


def _near_order_tie(inputs, params):
    """sort / topk: two values along the axis nearly equal, so that rounding could
    swap them (exact ties stay in: both sides sort stably)."""
    a = inputs["a"]
    if a.ndim == 0 or a.size == 0:
        return False
    gaps = np.diff(np.sort(a, axis=params.get("axis", -1)), axis=params.get("axis", -1))
    return near(gaps, a)


# sorted values in PyTorch: a stable sort, as ours
_TORCH_SORT = "torch.sort({a}, dim={axis}, descending={descending}, stable=True)"
_EINSUM_EXAMPLES = tuple(Example({"a": sa, "b": sb}, {"spec1": s1, "spec2": s2}, form=f)
                         for sa, sb, s1, s2, f in [
    ((3, 4), (4, 5), "ij->ji", "ij,jk->ik", 1),
    ((2, 3, 4), (2, 4, 5), "ijk->", "bij,bjk->bik", 1),
    ((3,), (4,), "i->", "i,j->ij", 1),
    ((3, 3), (3,), "ii->i", "ii,i->i", 0),
    ((3, 3), (3,), "ii", "ij,j", 0),
    ((3, 4), (3,), "ij->", "ij,i", 1),
    ((2, 2, 3), (3, 2), "iij->ij", "iij,jk->ik", 1),
])
_EINSUM_EXAMPLES = tuple(Example({k: v for k, v in e.shapes.items()
                                  if e.form == 1 or k == "a"}, e.params, e.form)
                         for e in _EINSUM_EXAMPLES)

_CONV1D_EXAMPLES = (
    Example({"a": (2, 4, 7), "b": (6, 2, 3), "c": (6,)},
            {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}),
    Example({"a": (3, 5), "b": (2, 3, 4), "c": (2,)},  # unbatched, a 1-tuple
            {"stride": (1,), "padding": (0,), "dilation": (1,), "groups": 1}),
)
_CONV2D_EXAMPLES = (
    Example({"a": (2, 4, 5, 6), "b": (4, 2, 3, 2), "c": (4,)},
            {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}),
    Example({"a": (3, 4, 4), "b": (3, 1, 2, 2), "c": (3,)},  # unbatched, depthwise
            {"stride": 1, "padding": 1, "dilation": 1, "groups": 3}),
)

# ------------------------------------------------------------------------------- pooling


def _pool(pick, shape):
    """Kernel (an int or a pair), stride (None: the kernel, an int or a pair) and padding
    (at most half the kernel, an int or a pair) that fit the last two axes."""
    h, w = shape[-2], shape[-1]
    kh, kw = pick.integer(1, min(h, 3)), pick.integer(1, min(w, 3))
    square = kh == kw and pick.boolean()
    kernel = kh if square else (kh, kw)
    stride = pick.choice((None, 1, 2, (pick.integer(1, 3), pick.integer(1, 3))))
    ph, pw = pick.integer(0, kh // 2), pick.integer(0, kw // 2)
    padding = ph if ph == pw and pick.boolean() else (ph, pw)
    return Sample(params={"kernel": kernel, "stride": stride, "padding": padding})


def _near_window_tie(inputs, params):
    """max_pool2d: two values of a window nearly equal, so that rounding could pick
    either (exact ties stay in: both sides pick the first)."""
    a = inputs["a"]
    k = params["kernel"]
    k = (k, k) if isinstance(k, int) else tuple(k)
    view = np.lib.stride_tricks.sliding_window_view(a, k, axis=(-2, -1))
    vals = np.sort(view.reshape(view.shape[:-2] + (-1,)), axis=-1)
    return near(np.diff(vals, axis=-1), a)


POOL = Family("NCHW / CHW windows: kernel, stride, padding", _pool, min_dims=3, max_dims=4,
              accepts=lambda s: 0 not in s)
_MAX_POOL = "torch.nn.functional.max_pool2d"
_AVG_POOL = "torch.nn.functional.avg_pool2d"


def _conv(name, op, family, examples):
    """conv1d / conv2d: every argument, and the functional form with defaults."""
    return OpInfo(name, op, family, (
        Form(f"ag.{name}({{a}}, {{b}}, {{c}}, stride={{stride}}, padding={{padding}}, "
             "dilation={dilation}, groups={groups})",
             f"{_TF}.{name}({{a}}, {{b}}, {{c}}, stride={{stride}}, "
             "padding={padding}, dilation={dilation}, groups={groups})"),
        Form(f"F.{name}({{a}}, {{b}}, padding={{padding}}, groups={{groups}})",
             f"{_TF}.{name}({{a}}, {{b}}, padding={{padding}}, groups={{groups}})"),
    ), examples=examples)

OPS = (
    _binary("add", ops.Add, "+"),
    _binary("sub", ops.Sub, "-"),
    _binary("mul", ops.Mul, "*"),
    _binary("div", ops.Div, "/", {"b": NONZERO}, scalars=(3.0, -0.5),
            rdomains={"a": NONZERO}),
    OpInfo("neg", ops.Neg, ELEMENTWISE, (Form("-{a}"),)),
    OpInfo("pow", ops.Pow, BROADCASTING, (
        Form("{a} ** {b}"),
        Form("{a} ** {k}", params={"k": (2, 3, 0, 1)}, domains={"a": REAL},
             label="integer power"),
        Form("{a} ** {k}", params={"k": (0.5, -1.5, 2.5, -0.5)}, label="fractional power"),
        Form("{a} ** {k}", params={"k": (-1, -2)}, domains={"a": NONZERO},
             label="negative power"),
        Form("{k} ** {a}", params={"k": (2.0, 0.5)}, domains={"a": SMALL}),
    ), domains={"a": POSITIVE, "b": SMALL}),
    OpInfo("matmul", ops.MatMul, MATMUL, (Form("{a} @ {b}"),), examples=MATMUL_EXAMPLES),
    _unary("exp", ops.Exp, "exp", "exp", SMALL),
    _unary("log", ops.Log, "log", "log", POSITIVE),
    _unary("sqrt", ops.Sqrt, "sqrt", "sqrt", POSITIVE),
    _unary("abs", ops.Abs, "abs", "abs", KINKED, _near_zero),
    _unary("tanh", ops.Tanh, "tanh", "tanh", rounding_sensitive=_saturating(4, 20)),
    _unary("sigmoid", ops.Sigmoid, "sigmoid", "sigmoid", LOGITS, _saturating(7, 40)),
    _unary("relu", ops.Relu, "relu", "relu", KINKED, _near_zero),
    OpInfo("clip", ops.Clip, ELEMENTWISE, (
        Form("{a}.clip({lo}, {hi})", "torch.clamp({a}, {lo}, {hi})", params=_BOUNDS),
        Form("{a}.clip(min={lo})", "torch.clamp({a}, min={lo})", params=_BOUNDS),
        Form("{a}.clip(max={hi})", "torch.clamp({a}, max={hi})", params=_BOUNDS),
    ), domains={"a": CLIPPED}, rounding_sensitive=_near_bounds),
    _pick("maximum", ops.Maximum),
    _pick("minimum", ops.Minimum),
    OpInfo("where", ops.Where, WHERE, (
        Form("ag.where({cond}, {a}, {b})", "torch.where(torch.as_tensor({cond}), {a}, {b})"),
        Form("ag.where({cond}, {a}, {k})", "torch.where(torch.as_tensor({cond}), {a}, {k})",
             params={"k": (1.5, 0.0)}),
        Form("ag.where({a} > {k}, {a}, {b})", "torch.where({a} > {k}, {a}, {b})",
             params={"k": (0.0, 0.5)}),
    ), rounding_sensitive=_near_threshold),
    _reduce("sum", ops.Sum, "sum", REAL),
    _reduce("mean", ops.Mean, "mean", REAL),
    _extremum("max", ops.Max, "amax"),
    _extremum("min", ops.Min, "amin"),
    _softmax("softmax", ops.Softmax),
    _softmax("log_softmax", ops.LogSoftmax),
    OpInfo("reshape", ops.Reshape, RESHAPE, (
        Form("{a}.reshape({shape})"),
        Form("{a}.reshape(*{shape})", "{a}.reshape({shape})"),
    )),
    OpInfo("transpose", ops.Transpose, TRANSPOSE, (
        Form("{a}.transpose({axes})", "{a}.permute({perm})"),
        Form("{a}.transpose(*{axes})", "{a}.permute({perm})"),
        Form("{a}.transpose()", "{a}.permute({rev})"),
        Form("{a}.T", "{a}.permute({rev})"),
    )),
    OpInfo("getitem", ops.GetItem, GETITEM, (Form("{a}[{idx}]", _TORCH_GETITEM),),
           examples=GETITEM_EXAMPLES),
    _joined("concat", ops.Concat, CONCAT, "cat"),
    _joined("stack", ops.Stack, STACK, "stack"),
    # nn's fused ops, through their public functions
    OpInfo("linear", F.LinearFunction, LINEAR, (
        Form("F.linear({a}, {b}, {c})", f"{_TF}.linear({{a}}, {{b}}, {{c}})"),
        Form("F.linear({a}, {b})", f"{_TF}.linear({{a}}, {{b}})"),
    )),
    OpInfo("binary_cross_entropy", F.BinaryCrossEntropyFunction, SAME_SHAPE, (
        Form("F.binary_cross_entropy({a}, {b}, reduction={reduction})",
             f"{_TF}.binary_cross_entropy({{a}}, {{b}}, reduction={{reduction}})",
             params={"reduction": ("mean", "sum", "none")}),
    ), domains={"a": PROBABILITY, "b": TARGET},
        # PyTorch's BCE double backward adds 1e-12 to p and 1 - p (an error near 1e-12/p,
        # larger where its two terms cancel); ours is checked against the closed form
        tol={"double_backward": {"rtol": 1e-8, "atol": 1e-8}}),
    OpInfo("nll_loss", F.NLLLossFunction, CLASSES, (
        Form("F.nll_loss({a}, {target}, reduction={reduction})",
             f"{_TF}.nll_loss({{a}}, torch.as_tensor({{target}}), reduction={{reduction}})",
             params={"reduction": ("mean", "sum", "none")}),
    )),
    # erf
    _unary("erf", ops.Erf, "erf", "erf"),
    # shapes, reductions and scans
    OpInfo("squeeze", ops.Squeeze, SQUEEZE, (
        Form("{a}.squeeze()"),
        Form("{a}.squeeze({axis})"),
        Form("ag.squeeze({a}, dim={axis})", "torch.squeeze({a}, dim={axis})"),
    )),
    OpInfo("unsqueeze", ops.Unsqueeze, UNSQUEEZE, (
        Form("{a}.unsqueeze({dim})"),
        Form("{a}.expand_dims({dim})", "{a}.unsqueeze({dim})"),
        Form("ag.expand_dims({a}, {dim})", "torch.unsqueeze({a}, {dim})"),
    )),
    # torch.flatten returns its input itself when it has nothing to merge (start_dim ==
    # end_dim, a 1-D tensor): .clone() gives the reference its own node, as ours has
    OpInfo("flatten", ops.Flatten, FLATTEN, (
        Form("{a}.flatten({start}, {end})", "{a}.flatten({start}, {end}).clone()"),
        Form("{a}.flatten()", "{a}.flatten().clone()"),
        Form("ag.flatten({a}, {start})", "torch.flatten({a}, {start}).clone()"),
    )),
    OpInfo("logsumexp", ops.LogSumExp, REDUCTION, (
        Form("{a}.logsumexp(axis={axis}, keepdims={keepdims})",
             "torch.logsumexp({a}, dim={dims}, keepdim={keepdims})"),
        Form("ag.logsumexp({a}, dim={axis}, keepdim={keepdims})",
             "torch.logsumexp({a}, dim={dims}, keepdim={keepdims})"),
        Form("{a}.logsumexp()", "torch.logsumexp({a}, dim=tuple(range({a}.ndim)))"),
    ), domains={"a": LOGITS}),
    _moment("var", ops.Var),
    _moment("std", ops.Std),
    OpInfo("norm", ops.Norm, REDUCTION, (
        Form("{a}.norm(axis={axis}, keepdims={keepdims})",
             f"{_VNORM}({{a}}, 2, dim={{dims}}, keepdim={{keepdims}})"),
        Form("ag.norm({a})", f"{_VNORM}({{a}})"),
        Form("{a}.norm({ord}, axis={axis}, keepdims={keepdims})",
             f"{_VNORM}({{a}}, {{ord}}, dim={{dims}}, keepdim={{keepdims}})",
             params={"ord": (1,)}, domains={"a": KINKED}, label="1-norm"),
        Form("{a}.norm(p={ord}, dim={axis}, keepdim={keepdims})",
             f"{_VNORM}({_INF_PICKED}, {{ord}}, dim={{dims}}, keepdim={{keepdims}})",
             params={"ord": (math.inf,)}, domains={"a": DISTINCT_MAGNITUDES},
             label="inf-norm"),
    ), rounding_sensitive=_near_abs_tie),
    OpInfo("cumsum", ops.CumSum, ALONG_AXIS, (
        Form("{a}.cumsum({axis})", "torch.cumsum({a}, dim={axis})"),
        Form("ag.cumsum({a}, dim={axis})", "torch.cumsum({a}, dim={axis})"),
        Form("{a}.cumsum()", "torch.cumsum({a}.reshape(-1), dim=0)"),
    )),
    # padding, gathering and scattering, sorting, einsum
    OpInfo("pad", ops.Pad, PAD, (
        Form("ag.pad({a}, {pad_width}, value={value})",
             f"{_TF}.pad({{a}}, {{torch_pad}}, value={{value}})",
             params={"value": (0.0, 1.5, -2.0)}),
        Form("ag.pad({a}, {pad_width})", f"{_TF}.pad({{a}}, {{torch_pad}})"),
    )),
    OpInfo("take_along_axis", ops.TakeAlongAxis, GATHER, (
        Form("ag.take_along_axis({a}, {index}, {axis})",
             "torch.gather({a}, {axis}, torch.as_tensor({full}))"),
        Form("{a}.gather({axis}, {gindex})",
             "torch.gather({a}, {axis}, torch.as_tensor({gindex}))"),
    )),
    OpInfo("index_add", ops.IndexAdd, INDEX_ADD, (
        Form("{a}.index_add({axis}, {index}, {b})",
             "{a}.index_add({axis}, torch.as_tensor({index}), {b})"),
        Form("ag.index_add({a}, {axis}, {index}, {b}, alpha={alpha})",
             "{a}.index_add({axis}, torch.as_tensor({index}), {b}, alpha={alpha})",
             params={"alpha": (2.0, -0.5)}),
    )),
    OpInfo("scatter_add", ops.ScatterAdd, SCATTER_ADD, (
        Form("{a}.scatter_add({axis}, {index}, {b})",
             "{a}.scatter_add({axis}, torch.as_tensor({index}), {b})"),
        Form("ag.scatter_add({a}, {axis}, {index}, {b})",
             "torch.scatter_add({a}, {axis}, torch.as_tensor({index}), {b})"),
    )),
    OpInfo("sort", ops.Sort, SORT, (
        Form("{a}.sort({axis}, descending={descending}).values", _TORCH_SORT + ".values"),
        Form("{a}.sort(dim={axis})[0]", "torch.sort({a}, dim={axis}, stable=True)[0]"),
    ), domains={"a": DISTINCT}, rounding_sensitive=_near_order_tie),
    OpInfo("topk", ops.TopK, SORT, (
        Form("{a}.topk({k}, {axis}, largest={descending}).values",
             _TORCH_SORT + ".values.narrow({axis}, 0, {k})"),
        Form("{a}.topk({k}, dim={axis})[0]",
             "torch.sort({a}, dim={axis}, descending=True, stable=True)[0]"
             ".narrow({axis}, 0, {k})"),
    ), domains={"a": DISTINCT}, rounding_sensitive=_near_order_tie),
    OpInfo("einsum", ops.Einsum, EINSUM, (
        Form("ag.einsum({spec1}, {a})", "torch.einsum({spec1}, {a})"),
        Form("ag.einsum({spec2}, {a}, {b})", "torch.einsum({spec2}, {a}, {b})"),
    ), examples=_EINSUM_EXAMPLES),
    # convolution
    _conv("conv1d", ops.Conv1d, CONV1D, _CONV1D_EXAMPLES),
    _conv("conv2d", ops.Conv2d, CONV2D, _CONV2D_EXAMPLES),
    # pooling
    OpInfo("max_pool2d", ops.MaxPool2d, POOL, (
        Form("ag.max_pool2d({a}, {kernel}, {stride}, {padding})",
             _MAX_POOL + "({a}, {kernel}, {stride}, {padding})"),
        Form("F.max_pool2d({a}, kernel_size={kernel}, padding={padding})",
             _MAX_POOL + "({a}, kernel_size={kernel}, padding={padding})"),
    ), domains={"a": DISTINCT}, rounding_sensitive=_near_window_tie, examples=(
        Example({"a": (2, 3, 5, 6)}, {"kernel": 2, "stride": None, "padding": 0}),
        Example({"a": (1, 2, 6, 5)}, {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 1)}),
    )),
    OpInfo("avg_pool2d", ops.AvgPool2d, POOL, (
        Form("ag.avg_pool2d({a}, {kernel}, {stride}, {padding})",
             _AVG_POOL + "({a}, {kernel}, {stride}, {padding})"),
        Form("F.avg_pool2d({a}, kernel_size={kernel}, padding={padding})",
             _AVG_POOL + "({a}, kernel_size={kernel}, padding={padding})"),
    ), examples=(
        Example({"a": (2, 3, 5, 6)}, {"kernel": 2, "stride": None, "padding": 0}),
        Example({"a": (1, 2, 6, 5)}, {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 1)}),
    )),
    # batch norm with the batch's statistics: one op
    OpInfo("batch_norm", F.BatchNormFunction, BATCH_NORM, (
        Form("F.batch_norm({a}, None, None, {b}, {c}, training=True, eps={eps})",
             f"{_TF}.batch_norm({{a}}, None, None, {{b}}, {{c}}, training=True, eps={{eps}})",
             params={"eps": (1e-5, 0.5)}),
        Form("F.batch_norm({a}, None, None, training=True)",
             f"{_TF}.batch_norm({{a}}, None, None, training=True)"),
    ), examples=(
        Example({"a": (4, 3), "b": (3,), "c": (3,)}, {"eps": 1e-5}),
        Example({"a": (2, 3, 4, 5), "b": (3,), "c": (3,)}, {"eps": 1e-5}),
    )),
)

# ------------------------------------------------------ derivatives of derivatives: the ops
# that backward formulas call on Tensors (a reduction's broadcast, indexing's scatter)


def _broadcast_target(pick, shape):
    """A shape ``shape`` broadcasts to: new leading axes, length-1 axes repeated."""
    lead = tuple(pick.choice((1, 2, 3)) for _ in range(pick.integer(0, 2)))
    return Sample(params={"target": lead + tuple(pick.choice((1, 2, 3)) if n == 1 else n
                                                 for n in shape)})


def _scatter_target(pick, shape):
    """Rows of ``a`` scattered into a longer first axis at indices with repeats."""
    rows = pick.integer(1, 4)
    index = pick.generator().integers(0, rows, shape[0])
    return Sample(params={"target": (rows,) + tuple(shape[1:]), "index": index})


BROADCAST_TO = Family("broadcast targets", _broadcast_target)
SCATTER = Family("rows scattered with repeats", _scatter_target, min_dims=1)

OPS = OPS + (
    OpInfo("broadcast_to", ops.BroadcastTo, BROADCAST_TO, (
        Form("ag.broadcast_to({a}, {target})", "{a}.expand({target})"),
        Form("np.broadcast_to({a}, {target})", "torch.broadcast_to({a}, {target})"),
    )),
    OpInfo("scatter", ops.Scatter, SCATTER, (
        Form("ag.ops.Scatter.apply({a}, shape={target}, index=({index},))",
             "{a}.new_zeros({target}).index_put((torch.as_tensor({index}),), {a}, "
             "accumulate=True)"),
    )),
)

# ------------------------------------------------------ nn's activations as single ops:
# leaky_relu, elu and softplus


def _near_switch(inputs, params):
    """softplus: beta·a nearly the threshold, where it switches to a itself."""
    z = inputs["a"] * params.get("beta", 1.0)
    return near(z - params.get("threshold", 20.0), z)


# every threshold/beta of the forms below is a multiple of 1/2, which these values keep
# 0.15 away from: central differences never straddle the switch
OFF_SWITCH = Domain("off the threshold switch", lambda r, s: off_grid(r, s, 0.25))

OPS = OPS + (
    OpInfo("leaky_relu", F.LeakyReluFunction, ELEMENTWISE, (
        Form("F.leaky_relu({a}, {slope})", f"{_TF}.leaky_relu({{a}}, {{slope}})",
             params={"slope": (0.2, 0.0, 1.5, -0.5)}),
        Form("F.leaky_relu({a})", f"{_TF}.leaky_relu({{a}})"),
    ), domains={"a": KINKED}, rounding_sensitive=_near_zero),
    OpInfo("elu", F.EluFunction, ELEMENTWISE, (
        Form("F.elu({a}, {alpha})", f"{_TF}.elu({{a}}, {{alpha}})",
             params={"alpha": (0.5, 2.0, 1.0)}),
        Form("F.elu({a})", f"{_TF}.elu({{a}})"),
    ), domains={"a": KINKED}, rounding_sensitive=_near_zero),
    OpInfo("softplus", F.SoftplusFunction, ELEMENTWISE, (
        Form("F.softplus({a}, {beta}, {threshold})",
             f"{_TF}.softplus({{a}}, {{beta}}, {{threshold}})",
             params={"beta": (2.0, 0.5, 1.0), "threshold": (1.0, 20.0)}),
        Form("F.softplus({a}, beta={beta})", f"{_TF}.softplus({{a}}, beta={{beta}})",
             params={"beta": (2.0, 1.0)}),
    ), domains={"a": OFF_SWITCH}, rounding_sensitive=_near_switch),
)

ROWS = {row.name: row for row in OPS}


def missing_rows() -> list:
    """Ops in ``autograd.ops.__all__`` that have no row."""
    covered = {row.op.__name__ for row in OPS}
    return [name for name in ops.__all__ if name not in covered]


# ============================================================================ cases


@dataclass
class Case:
    """One call of a form: its input arrays, which of them require grad, how the
    form's tensor fields map onto them (an index, or a list for ``xs``), and the
    parameters."""

    row: OpInfo
    form: Form
    arrays: list
    requires_grad: list
    fields: dict
    params: dict

    def bind(self, tensors) -> dict:
        """The form's keyword arguments, given one tensor per array."""
        out = {name: ([tensors[i] for i in ix] if isinstance(ix, list) else tensors[ix])
               for name, ix in self.fields.items()}
        return {**out, **self.params}

    def __repr__(self) -> str:
        shapes = [a.shape for a in self.arrays]
        return f"Case({self.row.name}: {self.form.id}, shapes={shapes}, params={self.params})"


def make_case(pick: Picker, row: OpInfo, form: int = 0, example: int | None = None) -> Case:
    """Draw one call of the row's form number ``form`` (or of its example number
    ``example``): shapes from the row's family (or the example), values from its
    domains, the form's own parameters, and which inputs are constants."""
    if example is not None:
        example = row.examples[example]
        form = example.form
    form = row.forms[form]
    if example is None:
        fam = row.family
        shape = pick.shape(fam.min_dims, min(fam.max_dims or 3, 3), fam.sides)
        while not fam.takes(shape):
            shape = pick.shape(fam.min_dims, min(fam.max_dims or 3, 3), fam.sides)
        sample = fam.sample(pick, shape)
        shapes = {"a": shape, **{k: ([p if p == SELF else p.shape for p in v]
                                     if isinstance(v, list) else v.shape)
                                 for k, v in sample.partners.items()}}
        params = dict(sample.params)
    else:
        shapes, params = dict(example.shapes), dict(example.params)
    for name, choices in form.params.items():
        params[name] = pick.choice(choices)
    rng = pick.generator()
    arrays, fields = [], {}
    for name in form.tensors:
        make = row.domain(form, name).make
        if name == "xs":  # the first input (SELF) is one array, however often it appears
            first = _add(arrays, make(rng, shapes["a"]))
            fields["xs"] = [first if p == SELF else _add(arrays, make(rng, p))
                            for p in shapes["xs"]]
        else:
            fields[name] = _add(arrays, make(rng, shapes[name]))
    constant = pick.choice((None,) + tuple(range(len(arrays)))) if len(arrays) > 1 else None
    requires_grad = [i != constant for i in range(len(arrays))]
    return Case(row, form, arrays, requires_grad, fields, params)


def fixed_case(row: OpInfo, inputs: dict, params: dict | None = None, form: int = 0) -> Case:
    """A case with given input arrays (by field) and parameters; every input requires grad."""
    arrays = []
    fields = {name: _add(arrays, a) for name, a in inputs.items()}
    return Case(row, row.forms[form], arrays, [True] * len(arrays), fields, dict(params or {}))


def _add(arrays, a) -> int:
    arrays.append(np.asarray(a, dtype=np.float64))
    return len(arrays) - 1


def forms() -> list:
    """``(row name, form index, label)`` of every form, for parametrising tests (by
    name, so that a failing test prints a short case)."""
    return [(row.name, i, f"{row.name}: {form.id}") for row in OPS
            for i, form in enumerate(row.forms)]


def examples() -> list:
    """``(row name, example index, label)`` of every fixed example."""
    return [(row.name, i, f"{row.name}: {ex!r}") for row in OPS
            for i, ex in enumerate(row.examples)]


def torch_params(params: dict) -> dict:
    """Parameters as PyTorch takes them: NumPy scalars become Python numbers."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}


# ============================================================================ literals


def literal(value, subscript: bool = False, dtype=None) -> str:
    """Python source that evaluates to ``value`` (with ``np`` imported); an index in
    ``subscript`` form (``1:3, ..., None``) when ``subscript``."""
    if isinstance(value, np.ndarray):
        return _array_literal(value if dtype is None else value.astype(dtype))
    if subscript and isinstance(value, tuple):
        parts = [literal(p, subscript=True) for p in value]
        return ", ".join(parts) + ("," if len(parts) == 1 else "") if parts else "()"
    if subscript and isinstance(value, slice):
        text = ":".join("" if v is None else str(v) for v in (value.start, value.stop))
        return text + (f":{value.step}" if value.step is not None else "")
    if subscript and value is Ellipsis:
        return "..."
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, np.floating) and not np.isfinite(value):  # np.float32(inf)
        return f"np.{value.dtype}({_float(float(value))})"
    if isinstance(value, (tuple, list)) and not subscript:
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    return repr(value)


def _float(x: float) -> str:
    if math.isnan(x):
        return "np.nan"
    if math.isinf(x):
        return "np.inf" if x > 0 else "-np.inf"
    return repr(x)


def _nested(x) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_nested(v) for v in x) + "]"
    return _float(x) if isinstance(x, float) else repr(x)


def _array_literal(a: np.ndarray) -> str:
    if a.size == 0:  # np.array([]) would lose the shape
        dtype = "" if a.dtype == np.float64 else f", dtype=np.{a.dtype}"
        return f"np.zeros({a.shape}{dtype})"
    inferred = a.dtype in (np.float64, np.int64, np.bool_)  # what np.array infers
    return f"np.array({_nested(a.tolist())}{'' if inferred else f', dtype=np.{a.dtype}'})"
