"""Optimisers (``SGD``, ``Adam``, ``AdamW``) and learning-rate schedules.

The training step is always the same four lines::

    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    opt.zero_grad()                # forget the previous step's gradients
    loss = loss_fn(model(x), y)
    loss.backward()                # fill every parameter's .grad
    opt.step()                     # update the parameters from their .grad

``step()`` changes each parameter's values in place under ``ag.no_grad()`` (with the
in-place methods ``p.sub_``, ``p.mul_``), so no graph is recorded, arrays held elsewhere
stay valid, and a graph that saved the old values refuses a later backward; parameters
whose ``.grad`` is None (unused in this step) are skipped. The update rules are
PyTorch's (``torch.optim``), step for step. As in PyTorch, ``params`` may also be a
list of dicts ("parameter groups"), each with its own hyperparameters:
``[{"params": a, "lr": 0.1}, {"params": b}]``.
"""

from __future__ import annotations

import math

import numpy as np

import autograd as ag

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR"]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``, state dicts.

    Subclasses define ``_step_group(group, params)``, which updates each parameter in
    place (``p.sub_(...)``; ``p.numpy()`` reads its values) from ``p.grad``, with state
    from ``self._state(p)``; ``step`` runs it under ``ag.no_grad()``.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}  # id(param) -> {name: value}
        if isinstance(params, ag.Tensor):
            params = [params]
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list; pass "
                             "model.parameters() of a model that has weights")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add ``{"params": [...], **hyperparameters}`` (missing ones from the defaults)."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{type(self).__name__}: a parameter group is a dict with a "
                            "'params' list")
        ps = group["params"]
        ps = [ps] if isinstance(ps, ag.Tensor) else list(ps)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        clean = []
        for i, p in enumerate(ps):
            if not isinstance(p, ag.Tensor):
                raise TypeError(f"{type(self).__name__}: params[{i}] is a "
                                f"{type(p).__name__}, not a Tensor/Parameter")
            if not p.is_leaf or p.dtype.kind != "f":
                raise ValueError(f"{type(self).__name__}: params[{i}] ({p.name or 'unnamed'})"
                                 " must be a floating leaf tensor (a Parameter)")
            if any(p is q for q in clean):
                continue  # listed twice in one group: keep it once
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: parameter {p.name or i} appears in "
                                 "more than one parameter group")
            clean.append(p)
        full = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._check_hyper(full)
        full["params"] = clean
        self.param_groups.append(full)

    def _check_hyper(self, group: dict) -> None:
        lr = group.get("lr")
        if lr is None or not lr >= 0:
            raise ValueError(f"{type(self).__name__}: lr must be a number >= 0, got {lr!r}")
        wd = group.get("weight_decay", 0.0)
        if not wd >= 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {wd!r}")

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``; the next backward
        starts from zero instead of adding to this step's)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        with ag.no_grad():
            for group in self.param_groups:
                self._step_group(group, [p for p in group["params"] if p.grad is not None])

    def _state(self, p) -> dict:
        """The state dict of parameter ``p`` (made empty on first use)."""
        state = self.state.get(id(p))
        if state is None:
            state = self.state[id(p)] = {}
        return state

    def _step_group(self, group: dict, params: list) -> None:
        """Update ``params`` (those of ``group`` that have a gradient) in place."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``
        with parameters numbered in group order, as PyTorch does (arrays copied)."""
        index, groups, state = 0, [], {}
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                if id(p) in self.state:
                    state[index] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                    for k, v in self.state[id(p)].items()}
                ids.append(index)
                index += 1
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": ids})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state saved by ``state_dict()`` (same parameters,
        same order)."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if groups is None or "state" not in state_dict:
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected a dict with "
                             "'state' and 'param_groups', as state_dict() returns")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state has "
                             f"{len(groups)} parameter group(s), this optimiser "
                             f"{len(self.param_groups)}")
        params = {}
        for saved, group in zip(groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: a group has "
                                 f"{len(saved['params'])} parameter(s) in the state, "
                                 f"{len(group['params'])} here")
            params.update(zip(saved["params"], group["params"]))
        new_state = {}
        for idx, st in state_dict["state"].items():
            p = params.get(int(idx))
            if p is None:
                raise ValueError(f"{type(self).__name__}.load_state_dict: state for "
                                 f"parameter index {idx}, which does not exist")
            for k, v in st.items():
                if isinstance(v, np.ndarray) and v.shape != p.shape:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: {k!r} of "
                                     f"parameter {p.name or idx} has shape {v.shape}, the "
                                     f"parameter {p.shape}")
            new_state[id(p)] = {k: (np.array(v, dtype=p.dtype) if isinstance(v, np.ndarray)
                                    else v) for k, v in st.items()}
        for saved, group in zip(groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in g.items() if k != "params"]
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (PyTorch's rule).

    With g = grad + weight_decay·θ (L2 regularisation):
    b ← momentum·b + (1 - dampening)·g (b = g at the first step);
    g ← g + momentum·b if nesterov else b;  θ ← θ - lr·g.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _step_group(self, group, params):
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        damp, nesterov = 1.0 - group["dampening"], group["nesterov"]
        for p in params:
            grad = p.grad
            if wd:
                grad = grad + wd * p.numpy()
            if momentum:
                state = self._state(p)
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(grad, dtype=p.dtype)
                else:
                    buf *= momentum
                    buf += grad if damp == 1.0 else damp * grad
                grad = grad + momentum * buf if nesterov else buf
            p.sub_(lr * grad)


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's rule; ``weight_decay`` is L2 added to the gradient.

    m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)g²;
    θ ← θ - lr/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + eps).
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        if not eps >= 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {eps}")
        super().__init__(params, dict(lr=lr, betas=(float(b1), float(b2)), eps=eps,
                                      weight_decay=weight_decay))

    def _step_group(self, group, params):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        decoupled = self.decoupled
        for p in params:
            grad = p.grad
            state = self._state(p)
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros(p.shape, p.dtype)
                state["exp_avg_sq"] = np.zeros(p.shape, p.dtype)
            state["step"] = t = state["step"] + 1
            m, v = state["exp_avg"], state["exp_avg_sq"]
            if wd:
                if decoupled:
                    p.mul_(1.0 - lr * wd)  # AdamW: shrink the weights directly
                else:
                    grad = grad + wd * p.numpy()  # Adam: L2 through the gradient
            # m ← β₁m + (1-β₁)g and v ← β₂v + (1-β₂)g², with one scratch array
            tmp = np.multiply(grad, 1.0 - b1)
            m *= b1
            m += tmp
            np.multiply(grad, grad, out=tmp)
            tmp *= 1.0 - b2
            v *= b2
            v += tmp
            # θ ← θ - lr/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + eps), computed with the constants
            # folded: c·m / (√v + eps·√(1-β₂ᵗ)) with c = lr·√(1-β₂ᵗ)/(1-β₁ᵗ)
            root_bc2 = math.sqrt(1.0 - b2**t)
            np.sqrt(v, out=tmp)
            tmp += eps * root_bc2
            np.divide(m, tmp, out=tmp)
            tmp *= lr * root_bc2 / (1.0 - b1**t)
            p.sub_(tmp)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's rule:
    θ ← θ·(1 - lr·weight_decay) first, then the Adam step on the plain gradient."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


# ---------------------------------------------------------------------- schedules


class LRScheduler:
    """Sets each group's ``lr`` from its initial value and the epoch count.

    Call ``scheduler.step()`` once per epoch, after ``optimizer.step()``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self.lr_at(base, self.last_epoch)

    def get_last_lr(self) -> list:
        return [g["lr"] for g in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """lr = initial lr · gamma^(epoch // step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial lr - eta_min)·(1 + cos(π·epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (
            1 + math.cos(math.pi * epoch / self.T_max)) / 2
