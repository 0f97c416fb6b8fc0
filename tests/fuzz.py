"""A differential fuzzer: random programs of chainrule ops, checked against PyTorch.

A *program* is a few inputs (1 to 4 leaves that require grad, maybe constants) and a
list of *steps*; each step is one form of one row of the op table (``opinfo.py``)
applied to earlier values. ``generate(seed, index)`` draws one: its ops come from every
row, its shapes from the rows' families (0-d to 4-d, size-1 and size-0 axes,
broadcasting pairs, axes with keepdims, slices, repeated integer indices, masks, ...),
and it reuses values (``x * x``, diamonds). Generation evaluates each step in PyTorch:
a step PyTorch refuses, or that makes a NaN, is drawn again, and so is one whose input
lies where rounding decides the result (``OpInfo.rounding_sensitive``: a hair from a
kink or a tie, a nearly saturated tanh). Inputs outside an op's domain get a guard
(``log(abs(x) + 0.5)``), except now and then on the domain's edge (``sqrt`` of a
``relu`` output, ``log`` of ``clip(min=0)``, ``1 / relu(x)``, an infinity): PyTorch says
what those give, and so must we.

``check(program)`` runs it in five *modes* (plain float64; ``gradient=``; ``retain_grad``
on every intermediate; backward twice with ``retain_graph=True``; float32) and compares
every value and every gradient with PyTorch: float64 to rtol 1e-8; float32, against
PyTorch float32 (which overflows where we must), to rtol 1e-4, every value and gradient
staying float32. On a disagreement, ``explain`` reruns the program op by op (each step
alone, on PyTorch's inputs and upstream gradient) to name the first op that fails,
shrinks the program, and prints a standalone repro with literal arrays that ends in the
assertion that fails.

From the repository root: ``make fuzz N=3000 SEED=0``, or
``PYTHONPATH=tests python -m fuzz -n 3000 --seed 0``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np
from opinfo import (
    OPS,
    REAL,
    ROWS,
    SELF,
    Form,
    OpInfo,
    RandomPicker,
    broadcast_partner,
    literal,
    torch_params,
)

import autograd as ag

MAX_LEAVES = 4
MAX_SIZE = 4096  # elements in one value
P_EDGE = 0.25  # how often a value on a domain's edge goes in unguarded
P_INFINITE = 0.05  # how often an input holds an infinity (guards squash it, edges keep it)


# ============================================================================ programs


@dataclass
class Input:
    name: str
    data: np.ndarray  # float64; cast to the mode's dtype when run
    requires_grad: bool


@dataclass
class Step:
    """``out = form(args, params)``: ``args`` maps tensor fields to value names (a list
    for ``xs``)."""

    out: str
    row: OpInfo
    form: Form
    args: dict
    params: dict

    def uses(self) -> list:
        names = []
        for v in self.args.values():
            for n in v if isinstance(v, list) else [v]:
                if n not in names:
                    names.append(n)
        return names

    def bind(self, env: dict, side: str) -> dict:
        """The form's keyword arguments: values from ``env`` by name, and parameters
        (as PyTorch takes them on the "theirs" side)."""
        args = {k: ([env[n] for n in v] if isinstance(v, list) else env[v])
                for k, v in self.args.items()}
        params = torch_params(self.params) if side == "theirs" else self.params
        return {**args, **params}

    def code(self) -> str:
        """The step as a line of chainrule code, parameters as literals."""
        names = {k: (f"[{', '.join(v)}]" if isinstance(v, list) else v)
                 for k, v in self.args.items()}
        params = {k: literal(v, subscript=k == "idx") for k, v in self.params.items()}
        return f"{self.out} = {self.form.render('ours', **names, **params)}"


@dataclass
class Program:
    inputs: list
    steps: list
    gradient: np.ndarray  # dL/d(output) in the modes that pass gradient=
    label: str = ""

    @property
    def output(self) -> str:
        return self.steps[-1].out

    def grad_names(self) -> list:
        """The values a gradient reaches: inputs that require grad, then the outputs of
        steps with such an input."""
        names = [i.name for i in self.inputs if i.requires_grad]
        carried = set(names)
        for s in self.steps:
            if carried.intersection(s.uses()):
                carried.add(s.out)
                names.append(s.out)
        return names


@dataclass(frozen=True)
class Mode:
    """One way of running a program: dtype, seed gradient, retain_grad, backward twice."""

    name: str
    dtype: type = np.float64
    seeded: bool = True  # out.backward(gradient=G); else out.sum().backward()
    retain: bool = False
    twice: bool = False

    @property
    def rtol(self) -> float:
        return 1e-4 if self.dtype == np.float32 else 1e-8


MODES = (
    Mode("float64", seeded=False),
    Mode("gradient="),
    Mode("retain_grad", retain=True),
    Mode("backward twice", twice=True),
    Mode("float32", np.float32, retain=True),
)
SEEDED = MODES[1]

# ============================================================================ generation


class _Builder:
    """Draws one program, evaluating each step in PyTorch as it goes."""

    def __init__(self, rng: np.random.Generator, rows):
        import torch

        self.torch = torch
        self.rng, self.pick, self.rows = rng, RandomPicker(rng), rows
        self.inputs, self.steps = [], []
        self.values = {}  # name -> float64 ndarray
        self.operands = []  # names that carry gradient: leaves and step outputs

    # -- inputs -------------------------------------------------------------------
    def leaves(self) -> None:
        first = self._leaf_shape()
        self.new_input(first, True)
        for _ in range(self.pick.integer(0, MAX_LEAVES - 1)):
            related = self.rng.random() < 0.6
            self.new_input(broadcast_partner(self.pick, first) if related
                           else self._leaf_shape(), True)

    def _leaf_shape(self) -> tuple:
        shape = list(self.pick.shape(0, 4, sides=(1, 1, 2, 3, 4)))
        if shape and self.rng.random() < 0.08:
            shape[self.pick.integer(0, len(shape) - 1)] = 0  # an empty axis
        return tuple(shape)

    def new_input(self, shape, requires_grad: bool) -> str:
        n_kind = sum(i.requires_grad == requires_grad for i in self.inputs)
        name = f"{'x' if requires_grad else 'c'}{n_kind}"
        kind = self.rng.random()
        if kind < 0.6:
            data = self.rng.standard_normal(shape)
        elif kind < 0.75:
            data = 3 * self.rng.standard_normal(shape)
        else:  # multiples of 1/2: exact zeros and ties
            data = self.rng.integers(-4, 5, shape) / 2
        data = np.array(data, dtype=np.float64)
        if data.size and self.rng.random() < P_INFINITE:
            data.flat[self.pick.integer(0, data.size - 1)] = self.pick.choice((np.inf, -np.inf))
        self.inputs.append(Input(name, data, requires_grad))
        self.values[name] = self.inputs[-1].data
        if requires_grad:
            self.operands.append(name)
        return name

    @property
    def n_leaves(self) -> int:
        return sum(i.requires_grad for i in self.inputs)

    # -- steps --------------------------------------------------------------------
    def add_step(self, row: OpInfo, form: Form, args: dict, params: dict) -> str:
        """Evaluate a step in PyTorch and keep it; raise ValueError if PyTorch refuses it
        or it makes a NaN or an outsized value."""
        step = Step(f"y{len(self.steps)}", row, form, args, params)
        env = {k: self.torch.from_numpy(v) for k, v in self.values.items()}
        try:
            with self.torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = form.call("theirs", **step.bind(env, "theirs"))
        except Exception as err:  # noqa: BLE001  (PyTorch refuses: draw again)
            raise ValueError(f"PyTorch refuses {step.code()}: {err}") from None
        value = out.numpy()
        if np.isnan(value).any() or value.size > MAX_SIZE or value.ndim > 5:
            raise ValueError(f"{step.code()} makes a NaN or an outsized value")
        self.steps.append(step)
        self.values[step.out] = value
        if set(self.operands).intersection(step.uses()):  # a gradient reaches it
            self.operands.append(step.out)
        return step.out

    def guarded(self, name: str, domain) -> str:
        """``name``, or a guard of it, whose values lie in ``domain``."""
        x = self.values[name]
        if domain.holds(x) or (domain.edge(x) and self.rng.random() < P_EDGE):
            return name
        for guard_domain in (REAL, domain):
            if not guard_domain.holds(self.values[name]):
                for g in guard_domain.guard:
                    row = ROWS[g.row]
                    name = self.add_step(row, row.form(g.template), {"a": name}, g.params)
        return name

    def on_edge(self, names, domain) -> list:
        """The values among ``names`` on ``domain``'s edge (zeros under a log, ...)."""
        return [n for n in names
                if not domain.holds(self.values[n]) and domain.edge(self.values[n])]

    def choose(self, names, domain) -> str:
        """One of ``names``; now and then one on the domain's edge, where bugs live."""
        edge = self.on_edge(names, domain) if self.rng.random() < P_EDGE else []
        pool = edge or names
        return pool[self.pick.integer(0, len(pool) - 1)]

    def partner(self, p, domain) -> str:
        """A value of a shape that ``p`` accepts: one that exists, a reshape of one, a
        new leaf or a constant."""
        r = self.rng.random()
        fits = [n for n in self.values if p.accepts(self.values[n].shape)]
        if fits and r < 0.5:
            return self.choose(fits, domain)
        size = math.prod(p.shape)
        same_size = [n for n in self.operands if self.values[n].size == size]
        if same_size and r < 0.7:
            source = same_size[self.pick.integer(0, len(same_size) - 1)]
            row = ROWS["reshape"]
            return self.add_step(row, row.forms[0], {"a": source}, {"shape": p.shape})
        if self.n_leaves < MAX_LEAVES and self.rng.random() < 0.7:
            return self.new_input(p.shape, True)
        return self.new_input(p.shape, False)

    def scalar(self, value):
        """A scalar parameter, spelled as users spell it: a Python number mostly, a NumPy
        scalar sometimes (weak either way: the tensor's dtype wins)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        r = self.rng.random()
        if r < 0.6:
            return value
        if isinstance(value, int):
            return np.int64(value)
        return np.float64(value) if r < 0.85 else np.float32(value)

    def arrays(self, args: dict) -> dict:
        return {k: ([self.values[n] for n in v] if isinstance(v, list) else self.values[v])
                for k, v in args.items()}

    def apply(self, row: OpInfo) -> bool:
        """Append one call of ``row`` (with what guards and partners it needs)."""
        operands = [n for n in self.operands if row.family.takes(self.values[n].shape)]
        if not operands:
            return False
        form = row.forms[self.pick.integer(0, len(row.forms) - 1)]
        latest = self.operands[-1]
        a = latest if latest in operands and self.rng.random() < 0.5 else self.choose(
            operands, row.domain(form, form.tensors[0]))
        mark = (len(self.inputs), len(self.steps), len(self.operands))
        try:
            sample = row.family.sample(self.pick, self.values[a].shape)
            args = {}
            guarded_a = None
            for name in form.tensors:
                domain = row.domain(form, name)
                if name == "a":
                    args["a"] = guarded_a = guarded_a or self.guarded(a, domain)
                elif name == "xs":
                    guarded_a = guarded_a or self.guarded(a, domain)
                    args["xs"] = [guarded_a if p == SELF else
                                  self.guarded(self.partner(p, domain), domain)
                                  for p in sample.partners["xs"]]
                else:
                    partner = self.partner(sample.partners[name], domain)
                    args[name] = self.guarded(partner, domain)
            params = dict(sample.params)
            for name, choices in form.params.items():
                params[name] = self.scalar(self.pick.choice(choices))
            if row.rounding_sensitive:
                with np.errstate(all="ignore"):  # inf - inf: not near anything
                    if row.rounding_sensitive(self.arrays(args), torch_params(params)):
                        raise ValueError(f"{row.name}: an input within rounding of a kink")
            self.add_step(row, form, args, params)
        except ValueError:
            self._rollback(*mark)
            return False
        return True

    def _rollback(self, n_inputs, n_steps, n_operands) -> None:
        for gone in self.inputs[n_inputs:]:
            del self.values[gone.name]
        for gone in self.steps[n_steps:]:
            del self.values[gone.out]
        del self.inputs[n_inputs:], self.steps[n_steps:], self.operands[n_operands:]


def generate(seed: int, index: int, rows=OPS) -> Program:
    """Program number ``index`` of ``seed``: the same pair always gives the same program."""
    rng = np.random.default_rng([seed, index])
    b = _Builder(rng, rows)
    b.leaves()
    n_ops, drawn, tries = int(rng.integers(3, 26)), 0, 0
    while (drawn < n_ops and tries < 20 * n_ops) or not b.steps:
        tries += 1
        drawn += b.apply(rows[int(rng.integers(len(rows)))])
        if tries > 100 * n_ops:  # nothing fits (cannot happen with the sum row)
            raise RuntimeError(f"fuzz: no step fits the inputs of program {seed}/{index}")
    out = b.values[b.steps[-1].out]
    return Program(b.inputs, b.steps, rng.standard_normal(out.shape),
                   label=f"seed {seed}, program {index}")


# ============================================================================ running


@dataclass
class Reference:
    """PyTorch float64's values and gradients (by name); ``grads[seeded]`` for the seed
    ones (``out.sum()``) or the program's gradient."""

    values: dict
    grads: dict


def reference(program: Program, dtype=np.float64, gradients: bool = True) -> Reference:
    """Run ``program`` in PyTorch, in ``dtype``: a float32 run is compared with PyTorch
    float32, which overflows and underflows where it must too. ``gradients=False``: the
    forward only."""
    import torch

    env = {}
    with np.errstate(over="ignore"):  # a gradient seed beyond float32's range is inf
        for inp in program.inputs:
            env[inp.name] = torch.tensor(inp.data.astype(dtype), requires_grad=inp.requires_grad)
        gradient = torch.from_numpy(program.gradient.astype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in program.steps:
            env[step.out] = step.form.call("theirs", **step.bind(env, "theirs"))
    values = {k: v.detach().numpy() for k, v in env.items()}
    out = env[program.output]
    names = [n for n in program.grad_names() if env[n].requires_grad]
    grads = {False: {}, True: {}}
    for seeded in (False, True) if gradients else ():
        seed = gradient if seeded else torch.ones_like(out)
        got = ({} if not out.requires_grad else dict(zip(names, torch.autograd.grad(
            out, [env[n] for n in names], seed, retain_graph=True, allow_unused=True))))
        grads[seeded] = {n: (None if got.get(n) is None else got[n].numpy()) for n in names}
    return Reference(values, grads)


@dataclass
class Outcome:
    """What chainrule did: values (Tensors), the error it raised (``(step index or None,
    exception)``) and gradients by name."""

    values: dict
    error: tuple | None = None
    grads: dict = field(default_factory=dict)


def run_ours(program: Program, mode: Mode, backward: bool = True) -> Outcome:
    with np.errstate(over="ignore"):
        env = {i.name: ag.Tensor(i.data.astype(mode.dtype), requires_grad=i.requires_grad)
               for i in program.inputs}
    got = Outcome(env)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, step in enumerate(program.steps):
            try:
                env[step.out] = step.form.call("ours", **step.bind(env, "ours"))
            except Exception as err:  # noqa: BLE001  (reported as a disagreement)
                got.error = (k, err)
                return got
        out = env[program.output]
        carried = program.grad_names()
        if not backward or program.output not in carried:  # nothing to differentiate
            return got
        if mode.retain:
            for name in carried:
                env[name].retain_grad()
        try:
            if mode.seeded:
                g = program.gradient.astype(mode.dtype)
                for _ in range(2 if mode.twice else 1):
                    out.backward(gradient=g, retain_graph=mode.twice)
            else:
                (out if out.size == 1 else out.sum()).backward()
        except Exception as err:  # noqa: BLE001
            got.error = (None, err)
            return got
    names = carried if mode.retain else [i.name for i in program.inputs if i.requires_grad]
    got.grads = {n: env[n].grad for n in names}
    return got


# ============================================================================ checking


@dataclass
class Disagreement:
    """The first place chainrule and PyTorch part: ``kind`` is one of ``FORWARD`` ("error",
    "value", "signed zero", "dtype"), "backward error", "gradient" or "gradient dtype";
    ``name`` the value (or input) concerned."""

    mode: Mode
    kind: str
    name: str | None
    detail: str
    expected: object = None  # PyTorch's array (or, for "error", a description)
    scale: float = 1.0  # of the tolerance (see compare)

    def __str__(self) -> str:
        where = f" of {self.name}" if self.name else ""
        return f"{self.kind}{where} ({self.mode.name}): {self.detail}"


def largest(*arrays) -> float:
    """The largest finite magnitude in ``arrays`` (at least 1)."""
    out = 1.0
    for a in arrays:
        a = np.abs(np.asarray(a, dtype=np.float64))
        m = float(np.max(a, initial=1.0))
        out = max(out, m if math.isfinite(m) else float(np.max(a[np.isfinite(a)], initial=1.0)))
    return out


def tolerance(ref: np.ndarray, rtol: float, scale: float = 1.0) -> float:
    """The absolute tolerance for an array: rtol times its largest finite magnitude, or
    ``scale`` if that is larger."""
    return rtol * max(scale, largest(ref))


def close(x: np.ndarray, ref: np.ndarray, rtol: float, scale: float = 1.0) -> bool:
    """``|x - ref| <= tolerance + rtol·|ref|`` everywhere, infinities and NaNs where
    PyTorch has the same."""
    if x.shape != ref.shape:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.abs(x - ref) <= tolerance(ref, rtol, scale) + rtol * np.abs(ref)
        if ok.all() and np.isfinite(ref).all():
            return True
        exact = (x == ref) | (np.isnan(x) & np.isnan(ref))
        return bool(np.where(np.isfinite(ref), ok, exact).all())


def _describe(x, ref) -> str:
    x, ref = np.asarray(x, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if x.shape != ref.shape:
        return f"shape {x.shape}, PyTorch {ref.shape}"
    with np.errstate(all="ignore"):
        bad = ~np.isclose(x, ref, rtol=0, atol=0, equal_nan=True) | (
            np.signbit(x) != np.signbit(ref))
    i = tuple(int(v) for v in np.argwhere(bad)[0]) if bad.any() else ()
    return f"at index {i}: {x[i]!r}, PyTorch {ref[i]!r} ({int(bad.sum())} of {x.size} differ)"


FORWARD = ("error", "value", "signed zero", "dtype")  # kinds found before backward


def compare(program: Program, mode: Mode, ref: Reference, got: Outcome, *,
            forward_only: bool = False, signed_zeros: bool = False) -> Disagreement | None:
    """The first disagreement between ``got`` and ``ref``, or None.

    Zeros of different signs are equal values (their sign is left to the implementation
    in sums and in max(-0, +0)); ``signed_zeros=True`` tells them apart, to trace a
    difference that they make later (``1/relu(x)``: -inf) back to where it starts.

    float64 arrays are compared each on its own scale. In float32 a sum whose terms
    cancel (a bias gradient of ±1e4 terms that is nearly 0) is off by their rounding,
    so there the scale is the program's largest value (or gradient): a norm-wise test.
    """
    rtol, dtype = mode.rtol, np.dtype(mode.dtype)
    expected_grads = ref.grads[mode.seeded]
    norm_wise = dtype == np.float32
    value_scale = largest(*ref.values.values()) if norm_wise else 1.0
    grad_scale = largest(program.gradient, *filter(
        lambda g: g is not None, expected_grads.values())) if norm_wise else 1.0
    failed_at = got.error[0] if got.error else None
    for k, step in enumerate(program.steps):
        if k == failed_at:
            err = got.error[1]
            shape = ref.values[step.out].shape
            return Disagreement(mode, "error", step.out, f"{type(err).__name__}: {err}",
                                f"PyTorch computes it, shape {shape}")
        x, r = got.values[step.out], ref.values[step.out]
        if x.dtype != dtype:
            return Disagreement(mode, "dtype", step.out, f"{x.dtype}, expected {dtype}")
        if not close(x.data, r, rtol, value_scale):
            return Disagreement(mode, "value", step.out, _describe(x.data, r), r,
                                value_scale)
        if signed_zeros:
            zeros = (x.data == 0) & (r == 0)
            if (np.signbit(x.data[zeros]) != np.signbit(r[zeros])).any():
                return Disagreement(mode, "signed zero", step.out, _describe(x.data, r),
                                    np.signbit(r))
    if forward_only:
        return None
    if got.error:
        err = got.error[1]
        return Disagreement(mode, "backward error", None, f"{type(err).__name__}: {err}",
                            "PyTorch's backward runs")
    for name, g in got.grads.items():
        r = expected_grads.get(name)
        r = np.zeros(ref.values[name].shape) if r is None else (2 * r if mode.twice else r)
        if g is not None and np.asarray(g).dtype != dtype:
            return Disagreement(mode, "gradient dtype", name,
                                f"{np.asarray(g).dtype}, expected {dtype}")
        g = np.zeros(r.shape) if g is None else np.asarray(g)
        if not close(g, r, rtol, grad_scale):
            return Disagreement(mode, "gradient", name, _describe(g, r), r, grad_scale)
    return None


def check(program: Program, modes=MODES, **how) -> Disagreement | None:
    """Run ``program`` in each mode; the first disagreement with PyTorch, or None.
    ``how``: ``compare``'s keyword arguments."""
    refs = {}
    for mode in modes:
        if mode.dtype not in refs:
            refs[mode.dtype] = reference(program, mode.dtype, not how.get("forward_only"))
        got = run_ours(program, mode, backward=not how.get("forward_only"))
        found = compare(program, mode, refs[mode.dtype], got, **how)
        if found:
            return found
    return None


# ============================================================================ explaining


@dataclass
class Finding:
    """A program that disagrees, and what that comes down to.

    ``op``: the row of the first step that fails on its own (PyTorch's inputs and
    upstream gradient), or "engine" when every op passes alone. ``isolated``: that step
    alone; ``reduced``: the smallest part of the program that still fails.
    """

    program: Program
    disagreement: Disagreement
    op: str
    isolated: tuple | None  # (Program, Disagreement)
    reduced: tuple  # (Program, Disagreement)

    @property
    def kind(self) -> str:
        """What differs (in the failing op alone), and in which mode of the program."""
        d = self.isolated[1] if self.isolated else self.disagreement
        return f"{d.kind} ({self.disagreement.mode.name})"

    def repro(self) -> str:
        """The minimal standalone repro: the failing op alone if there is one, else the
        reduced program."""
        return source(*(self.isolated or self.reduced))

    def report(self) -> str:
        lines = [f"{self.program.label}: {self.disagreement}",
                 f"first failing op: {self.op}", "", "minimal repro:", _indent(self.repro())]
        if self.isolated:
            lines += ["", f"in context ({len(self.reduced[0].steps)} of "
                      f"{len(self.program.steps)} steps):", _indent(source(*self.reduced))]
        return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else "" for line in text.splitlines())


def isolate(program: Program, k: int, ref: Reference, mode: Mode) -> Program:
    """Step ``k`` alone: its inputs are PyTorch's values, its seed PyTorch's gradient."""
    step = program.steps[k]
    carries = set(program.grad_names())
    inputs = [Input(n, ref.values[n].astype(np.float64), n in carries) for n in step.uses()]
    upstream = ref.grads[mode.seeded].get(step.out)
    shape = ref.values[step.out].shape
    gradient = np.zeros(shape) if upstream is None else upstream
    return Program(inputs, [step], gradient, label=f"{program.label}, step {k} alone")


def _alone(mode: Mode) -> Mode:
    """The mode for one step alone: its seed is always an explicit gradient."""
    return mode if mode.seeded else SEEDED


def subprogram(program: Program, k: int, shapes: dict) -> Program:
    """The steps that step ``k`` depends on, with ``k`` as the output (``shapes``: of
    every value, by name)."""
    needed, steps = {program.steps[k].out}, []
    for step in reversed(program.steps[: k + 1]):
        if step.out in needed:
            steps.append(step)
            needed.update(step.uses())
    inputs = [i for i in program.inputs if i.name in needed]
    gradient = np.random.default_rng(k).standard_normal(shapes[steps[0].out])
    return Program(inputs, steps[::-1], gradient, label=program.label)


def bypass(program: Program, k: int, shapes: dict) -> Program | None:
    """The program without step ``k`` (a one-input step that keeps the shape): its
    users read its input instead. None if that does not apply."""
    step = program.steps[k]
    if k == len(program.steps) - 1 or len(step.uses()) != 1:
        return None
    (source_name,) = step.uses()
    if shapes[source_name] != shapes[step.out]:
        return None

    def swap(v):
        if isinstance(v, list):
            return [source_name if n == step.out else n for n in v]
        return source_name if v == step.out else v

    steps = [replace(s, args={f: swap(v) for f, v in s.args.items()})
             for s in program.steps if s is not step]
    used = {n for s in steps for n in s.uses()}
    inputs = [i for i in program.inputs if i.name in used]
    return Program(inputs, steps, program.gradient, label=program.label)


def _still_fails(program: Program, found: Disagreement) -> Disagreement | None:
    """The disagreement ``program`` shows in ``found``'s mode if it is of the same kind;
    None when it agrees, fails otherwise or is not a valid program (PyTorch refuses it
    or makes a NaN value)."""
    try:
        ref = reference(program)
    except Exception:  # noqa: BLE001
        return None
    if any(np.isnan(v).any() for v in ref.values.values()):
        return None
    d = check(program, [found.mode])
    return d if d and d.kind == found.kind else None


def reduce(program: Program, found: Disagreement) -> tuple:
    """The smallest part of ``program`` that still disagrees in the same mode."""
    best = (program, found)
    shapes = {k: v.shape for k, v in reference(program).values.items()}
    subs = sorted((subprogram(program, k, shapes) for k in range(len(program.steps))),
                  key=lambda p: len(p.steps))
    for sub in subs:
        if len(sub.steps) >= len(best[0].steps):
            break
        d = _still_fails(sub, found)
        if d:
            best = (sub, d)
            break
    shrunk = True
    while shrunk:
        shrunk = False
        for k in range(len(best[0].steps)):
            candidate = bypass(best[0], k, shapes)
            d = candidate and _still_fails(candidate, found)
            if d:
                best, shrunk = (candidate, d), True
                break
    return best


def explain(program: Program, found: Disagreement) -> Finding:
    """Name the first op that disagrees on its own, and shrink the program.

    Each step runs alone on PyTorch's inputs (and upstream gradient); for a forward
    disagreement only the forward of the steps up to it counts. If no step fails alone,
    a second pass looks for the first zero of the wrong sign, which a later op can turn
    into a visible difference."""
    mode, forward = found.mode, found.kind in FORWARD
    ref = reference(program, mode.dtype)
    steps = program.steps
    if forward:
        steps = steps[: 1 + [s.out for s in steps].index(found.name)]
    for signed_zeros in (False, True):
        for k, step in enumerate(steps):
            alone = isolate(program, k, ref, mode)
            d = check(alone, [_alone(mode)], forward_only=forward, signed_zeros=signed_zeros)
            if d:
                return Finding(program, found, step.row.name, (alone, d),
                               reduce(program, found))
    if _rounding_only(program, found) if forward else _gradient_rounding_only(program, found):
        return Finding(program, found, ROUNDING_ONLY, None, (program, found))
    return Finding(program, found, "engine", None, reduce(program, found))


ROUNDING_ONLY = "rounding"  # the verdict for a difference that is not a disagreement


def _rounding_only(program: Program, found: Disagreement) -> bool:
    """Whether the step that differs does what PyTorch does on our own inputs.

    Every earlier value agreed to the tolerance, so the inputs differ by rounding only;
    if the step then agrees on identical inputs, a rounding error met a boundary (a
    mean that is -1e-17 here and 0 there, passed to a function defined on [0, 1]): the
    two implementations compute the same function.
    """
    mode = found.mode
    ours = run_ours(program, mode, backward=False).values
    k = [s.out for s in program.steps].index(found.name)
    step, carries = program.steps[k], set(program.grad_names())
    inputs = [Input(n, np.asarray(ours[n].data, dtype=np.float64), n in carries)
              for n in step.uses()]
    same_inputs = Program(inputs, [step], np.zeros(()), label=program.label)
    return check(same_inputs, [_alone(mode)], forward_only=True) is None


def _gradient_rounding_only(program: Program, found: Disagreement) -> bool:
    """The backward counterpart of ``_rounding_only``: whether every step's backward
    does what PyTorch's does on our own inputs and our own upstream gradient.

    Every value agreed, and no step disagrees on PyTorch's inputs and gradients; if each
    step also agrees on ours, a rounding error met a boundary on the way back (a
    gradient that cancels to exactly 0 there and to 3e-8 here, reaching a local
    derivative that is infinite at a domain's edge: inf · 0 = NaN against ±inf)."""
    if found.kind != "gradient":
        return False
    mode = replace(found.mode, retain=True, twice=False)
    got = run_ours(program, mode)
    if got.error:
        return False
    carries = set(program.grad_names())
    for step in program.steps:
        if step.out not in carries:
            continue
        inputs = [Input(n, np.asarray(got.values[n].data, dtype=np.float64), n in carries)
                  for n in step.uses()]
        upstream = got.grads.get(step.out)
        seed = np.zeros(got.values[step.out].shape) if upstream is None else upstream
        alone = Program(inputs, [step], np.asarray(seed, dtype=np.float64),
                        label=program.label)
        if check(alone, [_alone(mode)]) is not None:
            return False
    return True


# ============================================================================ repros


def source(program: Program, found: Disagreement | None = None) -> str:
    """Standalone Python that runs ``program`` as ``found.mode`` does and ends with
    the check that fails (PyTorch's value as a literal)."""
    mode = found.mode if found else MODES[0]
    dtype = mode.dtype
    lines = ["import numpy as np", "", "import autograd as ag"]
    if any(s.form.ours.startswith("F.") for s in program.steps):
        lines.append("import nn.functional as F")
    lines.append("")
    for i in program.inputs:
        grad = ", requires_grad=True" if i.requires_grad else ""
        lines.append(f"{i.name} = ag.Tensor({literal(i.data, dtype=dtype)}{grad})")
    forward = found and found.kind in FORWARD
    for step in program.steps:
        lines.append(step.code())
        if forward and step.out == found.name:  # the rest does not matter
            if found.kind == "error":
                lines.append(f"# raises {found.detail.splitlines()[0]}; {found.expected}")
            else:
                lines.append(_assertion(found))
            return "\n".join(lines)
    out = program.output
    if out not in program.grad_names():
        return "\n".join(lines)
    if mode.retain:
        names = ", ".join(program.grad_names())
        lines.append(f"for t in ({names},):\n    t.retain_grad()")
    if mode.seeded:
        lines.append(f"g = {literal(program.gradient, dtype=dtype)}")
        if mode.twice:
            lines.append(f"{out}.backward(gradient=g, retain_graph=True)")
        lines.append(f"{out}.backward(gradient=g)")
    else:
        lines.append(f"{out}.backward()" if program.gradient.size == 1 else
                     f"{out}.sum().backward()")
    if found:
        lines.append(_assertion(found))
    return "\n".join(lines)


def _assertion(found: Disagreement) -> str:
    name, rtol = found.name, found.mode.rtol
    if found.kind == "backward error":
        return f"# backward raises {found.detail.splitlines()[0]}; PyTorch's runs"
    if found.kind in ("dtype", "gradient dtype"):
        attr = ".grad" if found.kind == "gradient dtype" else ""
        return (f"assert {name}{attr}.dtype == np.{np.dtype(found.mode.dtype)}, "
                f"{name}{attr}.dtype")
    if found.kind == "signed zero":
        return (f"np.testing.assert_array_equal(np.signbit({name}.data), "
                f"{literal(found.expected)})  # PyTorch's signs")
    attr = ".data" if found.kind == "value" else ".grad"
    expected = found.expected
    atol = tolerance(expected, rtol, found.scale)
    return (f"np.testing.assert_allclose({name}{attr}, {literal(expected)}, rtol={rtol}, "
            f"atol={atol:.3g})  # PyTorch")


# ============================================================================ runs


@dataclass
class Report:
    seed: int
    n: int
    findings: list
    seconds: float

    @property
    def failures(self) -> list:
        """The findings that are disagreements (not rounding at a boundary)."""
        return [f for f in self.findings if f.op != ROUNDING_ONLY]

    @property
    def ok(self) -> bool:
        return not self.failures

    def groups(self) -> dict:
        """Failures by (first failing op, what differs)."""
        out = defaultdict(list)
        for f in self.failures:
            out[(f.op, f.kind)].append(f)
        return dict(sorted(out.items(), key=lambda kv: -len(kv[1])))

    def summary(self, repros: int = 1) -> str:
        agreed = self.n - len(self.failures)
        lines = [f"fuzz: {agreed} agreed / {self.n} run with PyTorch (seed {self.seed}, "
                 f"{self.seconds:.1f} s)"]
        rounding = [f.program.label for f in self.findings if f.op == ROUNDING_ONLY]
        if rounding:
            lines.append(f"  ({len(rounding)} of them differ only where a rounding error "
                         f"meets a boundary, the same function on the same inputs: "
                         f"{', '.join(rounding)})")
        if not self.failures:
            return "\n".join(lines)
        lines.append("disagreements by first failing op:")
        groups = self.groups()
        for (op, kind), fs in groups.items():
            lines.append(f"  {op:<22} {kind:<34} {len(fs):>5}  "
                         f"e.g. {fs[0].program.label}")
        for (op, kind), fs in groups.items():
            smallest = sorted(fs, key=lambda f: len(f.repro()))[:repros]
            for f in smallest:
                lines += ["", f"--- {op}: {kind}", f.report()]
        return "\n".join(lines)


def run(n: int, seed: int = 0, start: int = 0, rows=OPS) -> Report:
    """Generate and check programs ``start`` .. ``start + n - 1`` of ``seed``."""
    import torch

    t0, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(1)  # tiny arrays: a thread pool only costs time
    try:
        findings = []
        for index in range(start, start + n):
            program = generate(seed, index, rows)
            found = check(program)
            if found:
                findings.append(explain(program, found))
    finally:
        torch.set_num_threads(threads)
    return Report(seed, n, findings, time.perf_counter() - t0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="programs to run (default 3000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first program index")
    parser.add_argument("--repros", type=int, default=1, help="repros shown per group")
    args = parser.parse_args(argv)
    report = run(args.n, args.seed, args.start)
    print(report.summary(args.repros))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
