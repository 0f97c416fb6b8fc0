"""Check analytic gradients against finite differences.

``numerical_grad`` nudges each element of each input by ±eps and measures the change
of the output (central differences, error O(eps²)). ``gradcheck`` compares that with
what backward computes and, when they disagree, says where: which input, which
elements, both values, the errors and the tolerance. Inputs are perturbed *in place*
and restored, so ``fn`` may close over a model's parameters instead of taking them:
a ``fn`` that takes no arguments is called as ``fn()``, any other as ``fn(*inputs)``.

``compare_grads`` puts gradients derived by hand beside the engine's: exact, close, and
the largest difference.
"""

from __future__ import annotations

import html
import inspect
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import ops
from .function import ShapeError, no_grad
from .tensor import Tensor

__all__ = ["numerical_grad", "gradcheck", "gradgradcheck", "GradcheckError",
           "GradcheckResult"]


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; ``.result`` has the details."""

    def __init__(self, result: GradcheckResult):
        super().__init__(result.report())
        self.result = result


@dataclass
class Mismatch:
    index: tuple
    analytic: float
    numeric: float
    abs_err: float
    rel_err: float
    kink: tuple | None = None  # (left, right) one-sided derivatives where they differ


@dataclass
class InputCheck:
    position: int
    name: str | None
    shape: tuple
    dtype: str
    max_abs_err: float
    max_rel_err: float
    passed: bool
    mismatches: list = field(default_factory=list)  # the worst ones, worst first
    n_bad: int = 0
    direction: bool = False  # fast mode: one directional derivative, no elements

    @property
    def label(self) -> str:
        return f"input {self.position}" + (f" ({self.name!r})" if self.name else "")


@dataclass
class GradcheckResult:
    """What ``gradcheck`` found; true when every input passed. Shows as a table."""

    inputs: list
    eps: float
    atol: float
    rtol: float
    fast_mode: bool
    check: str = "gradcheck"  # or "gradgradcheck": what was checked, for the report

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.inputs)

    def __bool__(self) -> bool:
        return self.passed

    def report(self) -> str:
        tol = (f"|analytic - numeric| <= atol + rtol*|numeric| "
               f"(atol={self.atol:g}, rtol={self.rtol:g})")
        lines = [f"{self.check} {'passed' if self.passed else 'FAILED'}: {tol}, eps={self.eps:g}"
                 + (", fast mode (random directions)" if self.fast_mode else "")]
        for c in self.inputs:
            status = "ok" if c.passed else "MISMATCH"
            lines.append(f"  {c.label}: shape {c.shape}, {c.dtype}: {status}, "
                         f"max abs err {c.max_abs_err:.3g}, max rel err {_rel_text(c.max_rel_err)}")
            if not c.passed and c.direction:
                m = c.mismatches[0]
                lines.append(f"    directional derivative vᵀJu: analytic {m.analytic:.10g}, "
                             f"numeric {m.numeric:.10g}, abs err {m.abs_err:.3g}; rerun with "
                             "fast_mode=False to find the elements")
            elif not c.passed:
                lines.append(f"    {c.n_bad} element(s) out of tolerance; worst:")
                for m in c.mismatches:
                    line = (f"    index {m.index}: analytic {m.analytic:.10g}, numeric "
                            f"{m.numeric:.10g}, abs err {m.abs_err:.3g}, rel err {m.rel_err:.3g}")
                    if m.kink is not None:
                        line += (f"  [on a kink: one-sided derivatives {m.kink[0]:.6g} "
                                 f"(left) and {m.kink[1]:.6g} (right) differ, so no "
                                 "single derivative exists here]")
                    lines.append(line)
        return "\n".join(lines)

    __str__ = report

    def _repr_html_(self) -> str:
        head = ("<tr><th>input</th><th>shape</th><th>dtype</th><th>max abs err</th>"
                "<th>max rel err</th><th>result</th></tr>")
        rows = []
        for c in self.inputs:
            colour = "#1a7f37" if c.passed else "#cf222e"
            rows.append(
                f"<tr><td>{html.escape(c.label)}</td><td>{c.shape}</td><td>{c.dtype}</td>"
                f"<td>{c.max_abs_err:.3g}</td><td>{_rel_text(c.max_rel_err)}</td>"
                f"<td style='color:{colour}'>{'ok' if c.passed else 'mismatch'}</td></tr>")
            for m in ([] if c.passed else c.mismatches):
                kink = " (kink)" if m.kink is not None else ""
                rows.append(f"<tr><td></td><td colspan=5>index {m.index}{kink}: analytic "
                            f"{m.analytic:.6g}, numeric {m.numeric:.6g}</td></tr>")
        title = f"{self.check} {'passed' if self.passed else 'failed'}"
        return (f"<b>{title}</b> (atol={self.atol:g}, rtol={self.rtol:g}, eps={self.eps:g})"
                f"<table>{head}{''.join(rows)}</table>")


# --------------------------------------------------------------------------- helpers


def _as_list(inputs) -> list:
    return [inputs] if isinstance(inputs, Tensor) else list(inputs)


def _bind(fn, inputs):
    """``fn(*inputs)``, or ``fn()`` when fn takes no arguments (it closes over them)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return lambda: fn(*inputs)
    takes_args = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                     for p in params)
    return (lambda: fn(*inputs)) if takes_args else fn


def _checked(inputs) -> list:
    return [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]


def _scalar_fn(call, grad_output):
    """L = sum(call() * grad_output), evaluated without a graph."""

    def value() -> float:
        with no_grad():
            out = call()
        data = out.numpy() if isinstance(out, Tensor) else np.asarray(out)
        if grad_output is None:
            return float(data.sum())
        return float(np.sum(data * grad_output))

    return value


def _check_scalar_output(out, what: str):
    if out.size != 1:
        raise ValueError(
            f"{what}: fn returned shape {out.shape}; pass grad_output= (dL/d output) to "
            "differentiate sum(output * grad_output), or reduce the output to one value")


def _values(x: Tensor) -> np.ndarray:
    """The input's own array, perturbed in place and restored exactly (a plain view:
    these writes undo themselves, so the graph need not hear of them)."""
    return x.data.view(np.ndarray)


def _central(value, x: np.ndarray, idx, eps: float):
    """f(x+eps), f(x-eps) at one element, restoring it exactly."""
    orig = x[idx].copy()
    x[idx] = orig + eps
    plus = value()
    x[idx] = orig - eps
    minus = value()
    x[idx] = orig
    return plus, minus


# --------------------------------------------------------------------------- API


def numerical_grad(fn, inputs, eps: float = 1e-6, grad_output=None) -> list:
    """Central-difference gradient of ``fn(*inputs)`` w.r.t. each Tensor input.

    ``fn`` returns a single value, or pass ``grad_output`` (an array of the output's
    shape) to differentiate ``sum(fn(*inputs) * grad_output)``. Returns one ndarray per
    input (zeros for inputs that are not float Tensors).
    """
    inputs = _as_list(inputs)
    call = _bind(fn, inputs)
    if grad_output is None:
        with no_grad():
            _check_scalar_output(call(), "numerical_grad")
    value = _scalar_fn(call, grad_output)
    grads = []
    for x in inputs:
        if not isinstance(x, Tensor) or x.dtype.kind != "f":
            grads.append(np.zeros(np.shape(x)))
            continue
        data = _values(x)
        g = np.zeros(data.shape, dtype=np.float64)
        for idx in np.ndindex(data.shape):
            plus, minus = _central(value, data, idx, eps)
            g[idx] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def gradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, fast_mode: bool = False, seed: int = 0,
              max_report: int = 5) -> GradcheckResult:
    """Compare backward's gradients of ``fn(*inputs)`` with central differences.

    Every Tensor input with ``requires_grad=True`` is checked. A non-scalar output is
    checked through a random projection ``sum(output * v)``. ``fast_mode=True`` compares
    one random directional derivative ``vᵀJu`` per input instead of every element.

    Returns a ``GradcheckResult`` (true when all inputs pass; a table in Jupyter). On a
    mismatch raises ``GradcheckError`` with a report, or returns the failing (false)
    result when ``raise_exception=False``.
    """
    inputs = _as_list(inputs)
    call = _bind(fn, inputs)
    checked = _checked(inputs)
    if not checked:
        raise ValueError("gradcheck: no input is a Tensor with requires_grad=True; "
                         "nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            warnings.warn(
                f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need "
                "float64 to be accurate (eps=1e-6 is below float32's resolution). "
                "Cast the inputs to float64 to check gradients.", stacklevel=2)
    rng = np.random.default_rng(seed)

    # analytic: backward of sum(out * v), leaving the inputs' .grad as they were
    saved_grads = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    try:
        out = call()
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        v = None if out.size == 1 else rng.standard_normal(out.shape)
        if out.requires_grad:
            out.backward(None if v is None else v.astype(out.dtype))
        analytic = [np.zeros(inputs[i].shape) if inputs[i].grad is None
                    else np.asarray(inputs[i].grad, dtype=np.float64) for i in checked]
    finally:
        for i, g in zip(checked, saved_grads):
            inputs[i].grad = g
    value = _scalar_fn(call, v)

    reports = []
    for i, a in zip(checked, analytic):
        x = inputs[i]
        if fast_mode:
            reports.append(_check_direction(value, x, i, a, eps, atol, rtol, rng))
        else:
            reports.append(_check_elements(value, x, i, a, eps, atol, rtol, max_report))
    result = GradcheckResult(reports, eps, atol, rtol, fast_mode)
    if not result.passed and raise_exception:
        raise GradcheckError(result)
    return result


def _check_elements(value, x, position, analytic, eps, atol, rtol, max_report):
    data = _values(x)
    numeric = np.zeros(data.shape, dtype=np.float64)
    for idx in np.ndindex(data.shape):
        plus, minus = _central(value, data, idx, eps)
        numeric[idx] = (plus - minus) / (2 * eps)
    abs_err = np.abs(analytic - numeric)
    rel_err = abs_err / np.maximum(np.abs(numeric), np.finfo(np.float64).tiny)
    bad = ~(abs_err <= atol + rtol * np.abs(numeric))  # NaN counts as bad
    check = InputCheck(position, x.name, tuple(data.shape), str(data.dtype),
                       float(np.nanmax(abs_err, initial=0.0)) if abs_err.size else 0.0,
                       _max_rel_err(rel_err, bad | (numeric != 0)),
                       not bad.any(), n_bad=int(bad.sum()))
    if bad.any():
        flat_bad = np.flatnonzero(bad)
        order = flat_bad[np.argsort(-np.nan_to_num(abs_err.ravel()[flat_bad], nan=np.inf),
                                    kind="stable")]
        centre = value()
        for flat in order[:max_report]:
            idx = tuple(int(k) for k in np.unravel_index(flat, data.shape))
            plus, minus = _central(value, data, idx, eps)
            left, right = (centre - minus) / eps, (plus - centre) / eps
            gap = abs(right - left)
            kink = (left, right) if gap > 10 * (atol + rtol * abs(numeric[idx])) else None
            check.mismatches.append(Mismatch(idx, float(analytic[idx]), float(numeric[idx]),
                                             float(abs_err[idx]), float(rel_err[idx]), kink))
    return check


def _check_direction(value, x, position, analytic, eps, atol, rtol, rng):
    data = _values(x)
    u = rng.standard_normal(data.shape)
    u /= max(np.linalg.norm(u), 1e-12)
    orig = data.copy()
    data += eps * u
    plus = value()
    data[...] = orig - eps * u
    minus = value()
    data[...] = orig
    numeric = (plus - minus) / (2 * eps)
    a = float(np.sum(analytic * u))
    abs_err = abs(a - numeric)
    rel_err = abs_err / max(abs(numeric), np.finfo(np.float64).tiny)
    ok = abs_err <= atol + rtol * abs(numeric)
    check = InputCheck(position, x.name, tuple(data.shape), str(data.dtype), abs_err,
                       rel_err if numeric != 0 or not ok else math.nan, bool(ok),
                       n_bad=0 if ok else 1,
                       direction=True)
    if not ok:
        check.mismatches.append(Mismatch((), a, numeric, abs_err, rel_err))
    return check


# ------------------------------------------------------------- the relative error shown


def _max_rel_err(rel_err, where) -> float:
    """The largest relative error over the elements where it means something (a nonzero
    numeric derivative, or out of tolerance): NaN where there is none, never a 0 that
    would sit beside a nonzero absolute error."""
    values = rel_err[where]
    values = values[~np.isnan(values)]
    return float(values.max()) if values.size else math.nan


def _rel_text(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3g}"

# ------------------------------------------------------- gradients derived by hand

__all__ += ["compare_grads", "GradComparison", "GradMismatchError"]


@dataclass
class GradRow:
    """One entry of ``compare_grads``: a gradient derived by hand against the engine's."""

    name: str
    shape: tuple
    exact: bool  # every element equal
    close: bool  # np.allclose(hand, engine, rtol, atol)
    max_abs_diff: float


@dataclass
class GradComparison:
    """What ``compare_grads`` found, one ``GradRow`` per name; true when every gradient
    is close. Shows as a table (exact / close / max abs diff), like ``cmp`` in the
    makemore lectures."""

    rows: list
    rtol: float
    atol: float

    @property
    def passed(self) -> bool:
        return all(r.close for r in self.rows)

    def __bool__(self) -> bool:
        return self.passed

    def __getitem__(self, name: str) -> GradRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"compare_grads: no entry named {name!r}; the entries are "
                       f"{[r.name for r in self.rows]}")

    def report(self) -> str:
        width = max(len("gradient"), *(len(r.name) for r in self.rows))
        shapes = [str(r.shape) for r in self.rows]
        sw = max(len("shape"), *(len(s) for s in shapes))
        lines = [f"{'gradient':<{width}}  {'shape':<{sw}}  exact  close  max abs diff"]
        for r, s in zip(self.rows, shapes):
            mark = "" if r.close else "   <-- not close"
            lines.append(f"{r.name:<{width}}  {s:<{sw}}  {str(r.exact):<5}  "
                         f"{str(r.close):<5}  {r.max_abs_diff:.3g}{mark}")
        bad = [r.name for r in self.rows if not r.close]
        verdict = "all close" if not bad else f"NOT close: {', '.join(bad)}"
        lines.append(f"{verdict} (np.allclose, rtol={self.rtol:g}, atol={self.atol:g})")
        return "\n".join(lines)

    __str__ = report

    def __repr__(self) -> str:
        return self.report()

    def _repr_html_(self) -> str:
        head = ("<tr><th style='text-align:left'>gradient</th><th>shape</th><th>exact</th>"
                "<th>close</th><th>max abs diff</th></tr>")
        rows = []
        for r in self.rows:
            colour = "#1a7f37" if r.close else "#cf222e"
            rows.append(f"<tr><td style='text-align:left'>{html.escape(r.name)}</td>"
                        f"<td>{r.shape}</td><td>{r.exact}</td>"
                        f"<td style='color:{colour}'>{r.close}</td>"
                        f"<td>{r.max_abs_diff:.3g}</td></tr>")
        title = "all close" if self.passed else "not all close"
        return (f"<b>{title}</b> (np.allclose, rtol={self.rtol:g}, atol={self.atol:g})"
                f"<table>{head}{''.join(rows)}</table>")


class GradMismatchError(AssertionError):
    """A gradient derived by hand is not close to the engine's; ``.comparison`` has the
    table."""

    def __init__(self, comparison: GradComparison):
        super().__init__("compare_grads: gradients differ\n" + comparison.report())
        self.comparison = comparison


def _engine_grad(name, engine) -> np.ndarray:
    if isinstance(engine, Tensor):
        if engine.grad is None:
            hint = ("call .retain_grad() on it before backward (an intermediate keeps no "
                    "gradient otherwise)" if engine.requires_grad else
                    "it does not require grad, so backward never reaches it")
            raise ValueError(f"compare_grads: {name!r}: the engine's tensor has no .grad; "
                             f"{hint}")
        return np.asarray(engine.grad)
    return np.asarray(engine)


def compare_grads(grads, *, rtol: float = 1e-5, atol: float = 1e-8,
                  check: bool = False) -> GradComparison:
    """Compare gradients derived by hand with the engine's, one row per name.

    ``grads``: a mapping ``name -> (hand, engine)``: ``hand`` an array you computed,
    ``engine`` a Tensor (its ``.grad`` is compared: call ``retain_grad()`` on an
    intermediate before ``backward``) or the array the engine gave. Each row says
    whether the two are *exact* (every element equal), *close* (``np.allclose`` with
    ``rtol`` and ``atol``) and their largest absolute difference. Shapes must match
    exactly (no broadcasting: a gradient has its tensor's shape).

    Returns a ``GradComparison`` (true when all are close; shows as a table).
    ``check=True`` raises ``GradMismatchError`` with the table when any is not close.

        ag.compare_grads({"logits": (dlogits, logits), "W2": (dW2, W2)}, check=True)
    """
    if not hasattr(grads, "items"):
        raise TypeError(f"compare_grads: expected a mapping name -> (hand, engine), got "
                        f"{type(grads).__name__}")
    if not grads:
        raise ValueError("compare_grads: nothing to compare (the mapping is empty)")
    rows = []
    for name, pair in grads.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"compare_grads: {name!r}: expected a pair (hand, engine), got "
                            f"{type(pair).__name__}")
        hand, engine = pair
        hand = np.asarray(hand.numpy() if isinstance(hand, Tensor) else hand)
        got = _engine_grad(name, engine)
        if hand.shape != got.shape:
            hint = " (transposed?)" if hand.ndim > 1 and hand.shape == got.shape[::-1] else ""
            raise ShapeError(f"compare_grads: {name!r}: the hand-derived gradient has shape "
                             f"{hand.shape} but the engine's has shape {got.shape}{hint}")
        diff = np.abs(hand.astype(np.float64) - got.astype(np.float64))
        rows.append(GradRow(str(name), hand.shape, bool(np.array_equal(hand, got)),
                            bool(np.allclose(hand, got, rtol=rtol, atol=atol)),
                            float(diff.max()) if diff.size else 0.0))
    result = GradComparison(rows, rtol, atol)
    if check and not result.passed:
        raise GradMismatchError(result)
    return result


def gradgradcheck(fn, inputs, *, grad_output=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, fast_mode: bool = False,
                  seed: int = 0, max_report: int = 5) -> GradcheckResult:
    """Compare second derivatives of ``fn(*inputs)`` with central differences of the first.

    The first derivative is the vector-Jacobian product ``g(inputs) = vᵀ ∂fn/∂inputs``
    with a fixed upstream gradient ``v`` (``grad_output``, or random for a non-scalar
    output), computed with ``create_graph=True``. ``gradcheck`` then checks ``g``
    itself: its backward (the double backward of every op in ``fn``, against a random
    projection of ``g``) against central differences of ``g``. The report is
    ``gradcheck``'s: which input, which elements, both values, the errors.
    """
    from . import engine  # (engine imports nothing from here; kept local as gradcheck's)
    from .function import enable_grad

    inputs = _as_list(inputs)
    call = _bind(fn, inputs)
    checked = _checked(inputs)
    if not checked:
        raise ValueError("gradgradcheck: no input is a Tensor with requires_grad=True; "
                         "nothing to check")
    with no_grad():
        out = call()
    if not isinstance(out, Tensor):
        raise TypeError(f"gradgradcheck: fn must return a Tensor, got {type(out).__name__}")
    rng = np.random.default_rng(seed)
    if grad_output is None:
        grad_output = rng.standard_normal(out.shape).astype(out.dtype)
    v = Tensor(np.asarray(grad_output, dtype=out.dtype))
    if v.shape != out.shape:
        raise ValueError(f"gradgradcheck: grad_output of shape {v.shape} for an output of "
                         f"shape {out.shape}")
    leaves = [inputs[i] for i in checked]

    def first_derivative(*_):
        with enable_grad():
            y = call()
            grads = (engine.graph_backward(y, v, inputs=leaves) if y.requires_grad
                     else [None] * len(leaves))
        parts = [(g if g is not None else Tensor(np.zeros(x.shape, x.dtype))).reshape(-1)
                 for g, x in zip(grads, leaves)]
        return ops.Concat.apply(*parts, axis=0) if len(parts) > 1 else parts[0]

    result = gradcheck(first_derivative, inputs, eps=eps, atol=atol, rtol=rtol,
                       raise_exception=False, fast_mode=fast_mode, seed=seed + 1,
                       max_report=max_report)
    result.check = "gradgradcheck"
    if not result.passed and raise_exception:
        raise GradcheckError(result)
    return result
