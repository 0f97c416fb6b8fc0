"""The differential fuzzer (``tests/fuzz.py``) in the test suite.

A fixed-seed budget of random programs must agree with PyTorch float64 (run more with
``make fuzz N=3000 SEED=0``). The other tests hold the fuzzer to what it claims: its
programs draw every row of the op table and the shapes that matter, a planted bug is
found, named and reproduced by a standalone script that fails while the bug is there
and passes once it is gone.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from opinfo import ROWS, literal

import autograd as ag
from autograd import ops

torch = pytest.importorskip("torch")
import fuzz  # noqa: E402  (needs torch)

# the op table pairs (n,) with (n, 1) on purpose, to check broadcasting itself
pytestmark = pytest.mark.filterwarnings("ignore::autograd.BroadcastWarning")

BUDGET = 300  # programs of seed 0 that `make test` runs, in CHUNKS parts (pytest -n 2)
CHUNKS = 4


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_fixed_seed_budget_agrees_with_torch(chunk):
    n = BUDGET // CHUNKS
    report = fuzz.run(n, seed=0, start=chunk * n)
    assert report.ok, report.summary()


# ----------------------------------------------------------------- what it generates


@pytest.fixture(scope="module")
def programs():
    return [fuzz.generate(0, i) for i in range(BUDGET)]


def test_budget_draws_every_row(programs):
    used = Counter(s.row.name for p in programs for s in p.steps)
    assert set(used) == set(ROWS), f"rows never drawn: {set(ROWS) - set(used)}"


def _features(program) -> set:
    """What a program exercises, as names (see test_budget_covers_...)."""
    found = set()
    shapes = {i.name: i.data.shape for i in program.inputs}
    for i in program.inputs:
        s = i.data.shape
        found |= {f"{len(s)}-d leaf"} if i.requires_grad else {"constant input"}
        found |= {"size-1 axis"} if 1 in s else set()
        found |= {"empty axis"} if 0 in s else set()
    uses = Counter(n for s in program.steps for n in s.uses())
    found |= {"diamond"} if any(c > 1 for c in uses.values()) else set()
    for s in program.steps:
        names = [n for v in s.args.values() for n in (v if isinstance(v, list) else [v])]
        found |= {"same value twice (x * x)"} if len(names) > len(set(names)) else set()
        if s.params.get("keepdims"):
            found.add("keepdims")
        if isinstance(s.params.get("axis"), (tuple, list)):
            found.add("several axes")
        if any(isinstance(v, np.generic) for v in s.params.values()):
            found.add("NumPy scalar")
        idx = s.params.get("idx")
        parts = idx if isinstance(idx, tuple) else (idx,)
        for p in parts if "idx" in s.params else ():
            if isinstance(p, slice):
                found.add("slice")
            if isinstance(p, (np.ndarray, list)) and np.asarray(p).dtype == bool:
                found.add("boolean mask")
            if isinstance(p, (np.ndarray, list)) and np.asarray(p).dtype.kind == "i" and len(
                    np.unique(p)) < np.size(p):
                found.add("repeated integer index")
        a, b = s.args.get("a"), s.args.get("b")
        if s.row.family.name == "broadcasting pair" and b and a in shapes and b in shapes:
            found |= {"broadcasting pair"} if shapes[a] != shapes[b] else set()
        shapes[s.out] = None  # shapes of step outputs are not tracked here
    return found


def test_budget_covers_the_shapes_that_matter(programs):
    seen = Counter(f for p in programs for f in _features(p))
    wanted = {"0-d leaf", "1-d leaf", "2-d leaf", "3-d leaf", "4-d leaf", "constant input",
              "size-1 axis", "empty axis", "diamond", "same value twice (x * x)", "keepdims",
              "several axes", "NumPy scalar", "slice", "boolean mask",
              "repeated integer index", "broadcasting pair"}
    assert wanted <= set(seen), f"never generated: {wanted - set(seen)}"
    lengths = [len(p.steps) for p in programs]
    assert min(lengths) >= 3 and max(lengths) >= 25


def test_same_seed_same_program():
    a, b = fuzz.generate(3, 17), fuzz.generate(3, 17)
    assert fuzz.source(a) == fuzz.source(b)
    assert fuzz.source(a) != fuzz.source(fuzz.generate(3, 18))


def test_program_source_runs_standalone(programs):
    """The source of a program that agrees runs as it is, as a script."""
    ran = 0
    for p in programs[:40]:
        if fuzz.check(p) is None:
            exec(fuzz.source(p), {})  # noqa: S102
            ran += 1
    assert ran >= 5


@pytest.mark.parametrize("x,ref,agree", [
    ([1.0, 2.0], [1.0 + 1e-12, 2.0], True),
    ([1.0, 2.0], [1.0 + 1e-6, 2.0], False),
    ([1e-20, 5.0], [0.0, 5.0], True),  # tiny next to large: the array's scale counts
    ([-100.0], [-np.inf], False),  # an infinity only equals itself
    ([np.inf, 1.0], [np.inf, 1.0], True),
    ([np.inf], [1e300], False),
    ([np.nan], [np.nan], True),
    ([np.nan], [1.0], False),
    ([1.0], [np.nan], False),
    ([[1.0]], [1.0], False),  # shapes must match
])
def test_close(x, ref, agree):
    assert fuzz.close(np.array(x), np.array(ref), 1e-8) is agree


@pytest.mark.parametrize("value", [
    np.array([1.5, -0.0, np.inf, -np.inf, np.nan], dtype=np.float32),
    np.zeros((2, 0, 3)), np.zeros((0,), dtype=np.int64), np.array([[True], [False]]),
    np.array(2.5), np.float64(0.5), np.float32(-1.5), np.int64(3), (2, 3), (), [0, 0, 2],
])
def test_literal_evaluates_back(value):
    back = eval(literal(value), {"np": np})  # noqa: S307
    assert type(back) is type(value)
    np.testing.assert_array_equal(back, value)
    assert np.asarray(back).dtype == np.asarray(value).dtype
    assert np.shape(back) == np.shape(value)


@pytest.mark.parametrize("idx", [np.s_[1:3, ..., None], np.s_[::-2], np.s_[0,], np.s_[()],
                                 np.s_[:, np.array([0, 0])], np.s_[[1, 1], 2:]])
def test_index_literal_indexes_the_same(idx):
    x = np.arange(60).reshape(3, 4, 5)
    np.testing.assert_array_equal(eval(f"x[{literal(idx, subscript=True)}]",  # noqa: S307
                                       {"np": np, "x": x}), x[idx])


# ----------------------------------------------------------------- a planted bug


ROWS_WITHOUT_SCALARS = (ROWS["tanh"], ROWS["exp"], ROWS["sum"], ROWS["reshape"])


def _wrong_tanh_backward(ctx, grad):
    (y,) = ctx.saved
    return grad * (1 - y)  # d tanh = 1 - y², not 1 - y


def _exp_in_float64(ctx, a):
    out = np.exp(a).astype(np.float64)
    ctx.saved = (out,)
    return out


@pytest.mark.parametrize("op,attr,planted,kind", [
    ("tanh", "backward", _wrong_tanh_backward, "gradient"),
    ("exp", "forward", _exp_in_float64, "dtype"),
])
def test_planted_bug_is_named_and_reproduced(monkeypatch, op, attr, planted, kind):
    monkeypatch.setattr(getattr(ops, op.capitalize()), attr, staticmethod(planted))
    report = fuzz.run(25, seed=1, rows=ROWS_WITHOUT_SCALARS)
    assert not report.ok
    assert {f.op for f in report.findings} == {op}, report.summary()
    finding = min(report.findings, key=lambda f: len(f.repro()))
    assert finding.isolated[1].kind == kind
    assert len(finding.isolated[0].steps) == 1
    assert len(finding.reduced[0].steps) <= len(finding.program.steps)
    assert f"{op} " in report.summary() and "agreed" in report.summary()
    repro, context = finding.repro(), fuzz.source(*finding.reduced)
    for script in (repro, context):
        with pytest.raises(AssertionError):
            exec(script, {})  # noqa: S102  (fails while the bug is there...)
    monkeypatch.undo()
    for script in (repro, context):
        exec(script, {})  # noqa: S102  (...and passes once it is fixed)


def test_planted_bug_program_shrinks():
    """The reduced program keeps only what the failure needs."""
    x = ag.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    program = fuzz.Program(
        [fuzz.Input("x0", x.data, True)],
        [fuzz.Step("y0", ROWS["exp"], ROWS["exp"].forms[0], {"a": "x0"}, {}),
         fuzz.Step("y1", ROWS["tanh"], ROWS["tanh"].forms[0], {"a": "y0"}, {}),
         fuzz.Step("y2", ROWS["add"], ROWS["add"].forms[0], {"a": "y1", "b": "x0"}, {})],
        np.ones(2), label="hand-made")
    assert fuzz.check(program) is None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ops.Tanh, "backward", staticmethod(_wrong_tanh_backward))
        found = fuzz.check(program)
        assert found and found.kind == "gradient"
        finding = fuzz.explain(program, found)
    assert finding.op == "tanh"
    assert [s.row.name for s in finding.reduced[0].steps] == ["tanh"]  # exp, add bypassed


def test_make_fuzz_prints_a_summary(capsys):
    status = fuzz.main(["-n", "3", "--seed", "5"])
    out = capsys.readouterr().out
    assert "/ 3 run" in out
    assert status == (0 if out.startswith("fuzz: 3 agreed") else 1)
