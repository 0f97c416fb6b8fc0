"""RMSprop, Adagrad, gradient clipping, ReduceLROnPlateau and OneCycleLR against torch,
step for step (parameters to 1e-10 over 20 steps, learning rates and momenta exactly)."""

import math

import numpy as np
import pytest
from test_nn_optim import STEPS, assert_same, make_problem, run_both

import autograd as ag
import nn
import nn.functional as F

torch = pytest.importorskip("torch")

RMSPROP_CASES = [
    dict(lr=1e-2),
    dict(lr=1e-2, alpha=0.9, eps=1e-6),
    dict(lr=5e-3, momentum=0.9),
    dict(lr=5e-3, centered=True),
    dict(lr=5e-3, centered=True, momentum=0.5, weight_decay=0.1),
]


@pytest.mark.parametrize("kw", RMSPROP_CASES, ids=lambda kw: ",".join(kw))
def test_rmsprop_matches_torch(kw):
    assert_same(*run_both(lambda ps: nn.optim.RMSprop(ps, **kw),
                          lambda ps: torch.optim.RMSprop(ps, **kw)))


ADAGRAD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, lr_decay=0.05),
    dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5),
    dict(lr=0.05, eps=1e-6, lr_decay=0.01, weight_decay=0.01),
]


@pytest.mark.parametrize("kw", ADAGRAD_CASES, ids=lambda kw: ",".join(kw))
def test_adagrad_matches_torch(kw):
    assert_same(*run_both(lambda ps: nn.optim.Adagrad(ps, **kw),
                          lambda ps: torch.optim.Adagrad(ps, **kw)))


def test_new_optimisers_defaults_and_state_dict():
    X, y, ours, _ = make_problem()
    for cls, ref in ((nn.optim.RMSprop, torch.optim.RMSprop),
                     (nn.optim.Adagrad, torch.optim.Adagrad)):
        opt = cls(ours.parameters())
        tdef = ref([torch.zeros(1, requires_grad=True)]).defaults
        for k, v in opt.defaults.items():
            assert tdef[k] == v, (cls.__name__, k)
        F.mse_loss(ours(ag.Tensor(X)), y).backward()
        opt.step()
        again = cls(ours.parameters())
        again.load_state_dict(opt.state_dict())
        assert again.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    with pytest.raises(ValueError, match="momentum"):
        nn.optim.RMSprop(ours.parameters(), momentum=-1)
    with pytest.raises(ValueError, match="lr_decay"):
        nn.optim.Adagrad(ours.parameters(), lr_decay=-1)


# ----------------------------------------------------------------------- clipping


def grads_of_both(seed=0):
    X, y, ours, ref = make_problem(seed)
    (F.mse_loss(ours(ag.Tensor(X)), y) * 50).backward()
    (torch.nn.functional.mse_loss(ref(torch.from_numpy(X)), torch.from_numpy(y)) * 50
     ).backward()
    return ours, ref


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm(norm_type, max_norm):
    ours, ref = grads_of_both()
    total = nn.utils.clip_grad_norm_(ours.parameters(), max_norm, norm_type=norm_type)
    rtotal = torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm,
                                            norm_type=float(norm_type))
    assert isinstance(total, ag.Tensor)
    np.testing.assert_allclose(total.item(), rtotal.item(), rtol=1e-12)
    for p, q in zip(ours.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-12)
    if max_norm < 1:  # it did clip
        assert total.item() > max_norm


def test_clip_grad_value_and_single_tensor():
    ours, ref = grads_of_both()
    assert nn.utils.clip_grad_value_(ours.parameters(), 0.05) is None
    torch.nn.utils.clip_grad_value_(ref.parameters(), 0.05)
    for p, q in zip(ours.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-14)
        assert np.abs(p.grad).max() == 0.05
    w = ag.Tensor(np.ones(3), requires_grad=True)
    (w * np.array([3.0, 4.0, 0.0])).sum().backward()
    assert nn.utils.clip_grad_norm_(w, 1.0).item() == 5.0
    np.testing.assert_allclose(w.grad, [0.6, 0.8, 0.0], rtol=1e-6)
    assert nn.utils.clip_grad_norm_([], 1.0).item() == 0.0


# ----------------------------------------------------------------------- schedules


def sgd_pair(lrs=(0.1,), momentum=0.9):
    ours = [ag.Tensor(np.ones(2), requires_grad=True) for _ in lrs]
    theirs = [torch.ones(2, requires_grad=True) for _ in lrs]
    o = nn.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ours, lrs)],
                     lr=lrs[0], momentum=momentum)
    t = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(theirs, lrs)],
                        lr=lrs[0], momentum=momentum)
    return o, t


PLATEAU_CASES = [
    dict(),
    dict(patience=2, factor=0.5),
    dict(mode="max", patience=1, threshold=0.05),
    dict(patience=0, cooldown=2, threshold_mode="abs", threshold=0.1, min_lr=0.02),
    dict(patience=1, min_lr=[0.05, 0.0], eps=1e-3),
]


@pytest.mark.parametrize("kw", PLATEAU_CASES, ids=lambda kw: ",".join(kw) or "default")
def test_reduce_lr_on_plateau(kw):
    o, t = sgd_pair(lrs=(0.1, 0.3))
    ours = nn.optim.ReduceLROnPlateau(o, **kw)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(t, **kw)
    metrics = np.concatenate([np.linspace(1, 0.5, 5), np.full(15, 0.5),
                              np.linspace(0.5, 0.8, 10), 0.3 + 0.01 * np.sin(np.arange(20))])
    for m in metrics:
        ours.step(m)
        ref.step(m)
        assert ours.get_last_lr() == ref.get_last_lr()
        assert ours.num_bad_epochs == ref.num_bad_epochs
    assert ours.get_last_lr() != [0.1, 0.3]  # it did reduce


ONECYCLE_CASES = [
    dict(max_lr=0.1, total_steps=30),
    dict(max_lr=[0.1, 0.2], epochs=3, steps_per_epoch=7, pct_start=0.25),
    dict(max_lr=0.5, total_steps=40, anneal_strategy="linear", three_phase=True),
    dict(max_lr=0.1, total_steps=25, cycle_momentum=False, div_factor=10.0,
         final_div_factor=100.0),
    dict(max_lr=0.1, total_steps=30, base_momentum=0.8, max_momentum=0.9),
]


@pytest.mark.parametrize("kw", ONECYCLE_CASES, ids=lambda kw: ",".join(kw))
def test_one_cycle_lr(kw):
    o, t = sgd_pair(lrs=(0.1, 0.3))
    ours = nn.optim.OneCycleLR(o, **kw)
    ref = torch.optim.lr_scheduler.OneCycleLR(t, **kw)
    total = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    for _ in range(total):
        for g, h in zip(o.param_groups, t.param_groups):
            assert g["lr"] == pytest.approx(h["lr"], rel=1e-13, abs=1e-16)
            assert g["momentum"] == pytest.approx(h["momentum"], rel=1e-13)
        o.step()
        ours.step()
        t.step()
        ref.step()
    with pytest.raises(ValueError, match="total_steps"):
        ours.step()
        ours.step()


def test_one_cycle_cycles_adams_beta1_and_trains_like_torch():
    X, y, ours, ref = make_problem()
    opt, ropt = nn.optim.Adam(ours.parameters(), lr=1e-2), torch.optim.Adam(ref.parameters(),
                                                                           lr=1e-2)
    sch = nn.optim.OneCycleLR(opt, max_lr=0.05, total_steps=STEPS)
    rsch = torch.optim.lr_scheduler.OneCycleLR(ropt, max_lr=0.05, total_steps=STEPS)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(STEPS):
        opt.zero_grad()
        F.mse_loss(ours(ag.Tensor(X)), y).backward()
        opt.step()
        sch.step() if sch.last_epoch < STEPS - 1 else None
        ropt.zero_grad()
        torch.nn.functional.mse_loss(ref(Xt), yt).backward()
        ropt.step()
        rsch.step() if rsch.last_epoch < STEPS - 1 else None
        assert opt.param_groups[0]["betas"][0] == pytest.approx(
            ropt.param_groups[0]["betas"][0], rel=1e-13)
    assert_same(ours, ref)


def test_one_cycle_needs_momentum_to_cycle():
    p = ag.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="cycle_momentum"):
        nn.optim.OneCycleLR(nn.optim.Adagrad([p]), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        nn.optim.OneCycleLR(nn.optim.SGD([p], momentum=0.9), max_lr=0.1)
