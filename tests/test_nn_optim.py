"""Optimisers against torch.optim, step for step, and their bookkeeping."""

import math

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F

torch = pytest.importorskip("torch")

STEPS = 20


def make_problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((32, 4))
    y = rng.standard_normal((32, 2))
    nn.manual_seed(seed)
    ours = nn.MLP([4, 6, 2], activation="tanh")
    ref = torch.nn.Sequential(torch.nn.Linear(4, 6, dtype=torch.float64), torch.nn.Tanh(),
                              torch.nn.Linear(6, 2, dtype=torch.float64))
    with torch.no_grad():
        for p, q in zip(ours.parameters(), ref.parameters()):
            q.copy_(torch.from_numpy(p.data))
    return X, y, ours, ref


def run_both(make_ours, make_ref, steps=STEPS, seed=0):
    X, y, ours, ref = make_problem(seed)
    opt, ropt = make_ours(ours.parameters()), make_ref(ref.parameters())
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(ours(ag.Tensor(X)), y).backward()
        opt.step()
        ropt.zero_grad()
        torch.nn.functional.mse_loss(ref(Xt), yt).backward()
        ropt.step()
    return ours, ref


def assert_same(ours, ref, tol=1e-10):
    moved = False
    for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=0, atol=tol, err_msg=name)
        moved = True
    assert moved


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.8, weight_decay=0.01),
    dict(lr=0.1, momentum=0.5, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: ",".join(kw))
def test_sgd_matches_torch(kw):
    assert_same(*run_both(lambda ps: nn.optim.SGD(ps, **kw),
                          lambda ps: torch.optim.SGD(ps, **kw)))


ADAM_CASES = [
    dict(lr=1e-2),
    dict(lr=3e-2, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=1e-2, weight_decay=0.1),
]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=lambda kw: ",".join(kw))
def test_adam_matches_torch(kw):
    assert_same(*run_both(lambda ps: nn.optim.Adam(ps, **kw),
                          lambda ps: torch.optim.Adam(ps, **kw)))


@pytest.mark.parametrize("kw", [dict(lr=1e-2), dict(lr=2e-2, weight_decay=0.3),
                                dict(lr=1e-2, betas=(0.5, 0.9), weight_decay=0.0)],
                         ids=lambda kw: ",".join(kw))
def test_adamw_matches_torch(kw):
    assert_same(*run_both(lambda ps: nn.optim.AdamW(ps, **kw),
                          lambda ps: torch.optim.AdamW(ps, **kw)))


def test_param_groups_match_torch():
    def ours(ps):
        ps = list(ps)
        return nn.optim.SGD([{"params": ps[:2], "lr": 0.3}, {"params": ps[2:]}], lr=0.05,
                            momentum=0.9)

    def ref(ps):
        ps = list(ps)
        return torch.optim.SGD([{"params": ps[:2], "lr": 0.3}, {"params": ps[2:]}], lr=0.05,
                               momentum=0.9)

    assert_same(*run_both(ours, ref))


@pytest.mark.parametrize("sched", ["step", "cosine"])
def test_lr_schedules_match_torch(sched):
    X, y, ours, ref = make_problem()
    opt = nn.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    ropt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    if sched == "step":
        s, rs = nn.optim.StepLR(opt, 3, gamma=0.5), torch.optim.lr_scheduler.StepLR(ropt, 3, 0.5)
    else:
        s = nn.optim.CosineAnnealingLR(opt, T_max=10, eta_min=0.01)
        rs = torch.optim.lr_scheduler.CosineAnnealingLR(ropt, T_max=10, eta_min=0.01)
    for _ in range(12):
        opt.zero_grad()
        F.mse_loss(ours(ag.Tensor(X)), y).backward()
        opt.step()
        s.step()
        ropt.zero_grad()
        torch.nn.functional.mse_loss(ref(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        ropt.step()
        rs.step()
        assert s.get_last_lr()[0] == pytest.approx(rs.get_last_lr()[0], rel=1e-12)
    assert_same(ours, ref)


def test_step_updates_in_place_without_graph_and_skips_missing_grads():
    a = nn.Parameter(np.ones(3))
    b = nn.Parameter(np.ones(3))
    data_a = a.data
    opt = nn.optim.Adam([a, b], lr=0.1)
    (a * a).sum().backward()
    opt.step()
    assert np.shares_memory(a.data, data_a)  # the same array, changed in place
    assert a.is_leaf and a.grad_fn is None
    assert not np.allclose(a.data, 1.0)
    np.testing.assert_array_equal(b.data, 1.0)  # no gradient: untouched
    assert id(b) not in opt.state  # and no state made for it
    opt.zero_grad()
    assert a.grad is None


def test_sgd_float32_stays_float32():
    p = nn.Parameter(np.ones(4, dtype=np.float32))
    opt = nn.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert p.dtype == np.float32


def test_optimizer_state_dict_round_trip():
    X, y, ours, _ = make_problem()
    opt = nn.optim.Adam(ours.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        F.mse_loss(ours(ag.Tensor(X)), y).backward()
        opt.step()
    state = opt.state_dict()
    assert state["state"][0]["step"] == 3
    assert state["param_groups"][0]["params"] == [0, 1, 2, 3]
    # continue in a copy from the saved state: the same trajectory
    X2, y2, other, _ = make_problem()
    other.load_state_dict(ours.state_dict())
    opt2 = nn.optim.Adam(other.parameters(), lr=0.5)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == 1e-2
    for o, model in ((opt, ours), (opt2, other)):
        o.zero_grad()
        F.mse_loss(model(ag.Tensor(X)), y).backward()
        o.step()
    for p, q in zip(ours.parameters(), other.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    bad = opt.state_dict()
    bad["param_groups"][0]["params"] = [0, 1]
    with pytest.raises(ValueError, match="parameter"):
        opt2.load_state_dict(bad)


def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        nn.optim.SGD([], lr=0.1)
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="lr"):
        nn.optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        nn.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        nn.optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="not a Tensor"):
        nn.optim.SGD([np.ones(2)], lr=0.1)
    q = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="more than one parameter group"):
        nn.optim.SGD([{"params": [p, q]}, {"params": [q]}], lr=0.1)
    assert len(nn.optim.SGD([p, p], lr=0.1).param_groups[0]["params"]) == 1
    assert "lr: 0.1" in repr(nn.optim.SGD([p], lr=0.1))


def test_cosine_schedule_formula():
    p = nn.Parameter(np.ones(1))
    opt = nn.optim.SGD([p], lr=1.0)
    s = nn.optim.CosineAnnealingLR(opt, T_max=4)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(4):
        s.step()
        lrs.append(s.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [(1 + math.cos(math.pi * k / 4)) / 2 for k in range(5)],
                               atol=1e-15)
