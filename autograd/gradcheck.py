"""Check analytic gradients against finite differences.

``numerical_grad`` nudges each element of each input by ±eps and measures the change
of the output (central differences, error O(eps²)). ``gradcheck`` compares that with
what backward computes and, when they disagree, says where: which input, which
elements, both values, the errors and the tolerance. Inputs are perturbed *in place*
and restored, so ``fn`` may close over a model's parameters instead of taking them:
a ``fn`` that takes no arguments is called as ``fn()``, any other as ``fn(*inputs)``.
"""

from __future__ import annotations

import html
import inspect
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import ops
from .function import no_grad
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
                         f"max abs err {c.max_abs_err:.3g}, max rel err {c.max_rel_err:.3g}")
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
                f"<td>{c.max_abs_err:.3g}</td><td>{c.max_rel_err:.3g}</td>"
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
                       float(np.nanmax(np.where(bad, rel_err, 0), initial=0.0)),
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
                       rel_err if not ok else 0.0, bool(ok), n_bad=0 if ok else 1,
                       direction=True)
    if not ok:
        check.mismatches.append(Mismatch((), a, numeric, abs_err, rel_err))
    return check


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
