"""Optimisers (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``) and learning-rate
schedules.

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

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "LRScheduler", "StepLR",
           "CosineAnnealingLR", "ReduceLROnPlateau", "OneCycleLR"]


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


class RMSprop(Optimizer):
    """RMSprop (Hinton), PyTorch's rule. With g = grad + weight_decay·θ:
    v ← αv + (1-α)g²;  centered: ḡ ← αḡ + (1-α)g and the denominator √(v - ḡ²) + eps,
    else √v + eps;  with momentum: b ← momentum·b + g/denominator, θ ← θ - lr·b;
    without: θ ← θ - lr·g/denominator.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        if not 0.0 <= alpha:
            raise ValueError(f"RMSprop: alpha must be >= 0, got {alpha}")
        if not eps >= 0:
            raise ValueError(f"RMSprop: eps must be >= 0, got {eps}")
        if not momentum >= 0:
            raise ValueError(f"RMSprop: momentum must be >= 0, got {momentum}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _step_group(self, group, params):
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        wd, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
        for p in params:
            grad = p.grad
            state = self._state(p)
            if not state:
                state["step"] = 0
                state["square_avg"] = np.zeros(p.shape, p.dtype)
                if momentum > 0:
                    state["momentum_buffer"] = np.zeros(p.shape, p.dtype)
                if centered:
                    state["grad_avg"] = np.zeros(p.shape, p.dtype)
            state["step"] += 1
            if wd:
                grad = grad + wd * p.numpy()
            v = state["square_avg"]
            v *= alpha
            v += (1.0 - alpha) * (grad * grad)
            if centered:
                gavg = state["grad_avg"]
                gavg *= alpha
                gavg += (1.0 - alpha) * grad
                avg = np.sqrt(v - gavg * gavg)
            else:
                avg = np.sqrt(v)
            avg += eps
            if momentum > 0:
                buf = state.setdefault("momentum_buffer", np.zeros(p.shape, p.dtype))
                buf *= momentum
                buf += grad / avg
                p.sub_(lr * buf)
            else:
                p.sub_(lr * (grad / avg))


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), PyTorch's rule. With g = grad + weight_decay·θ and step t:
    s ← s + g²;  θ ← θ - lr/(1 + (t-1)·lr_decay) · g/(√s + eps)
    (s starts at ``initial_accumulator_value``).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10):
        if not lr_decay >= 0:
            raise ValueError(f"Adagrad: lr_decay must be >= 0, got {lr_decay}")
        if not initial_accumulator_value >= 0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be >= 0, got "
                             f"{initial_accumulator_value}")
        if not eps >= 0:
            raise ValueError(f"Adagrad: eps must be >= 0, got {eps}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _step_group(self, group, params):
        lr, lr_decay, wd, eps = group["lr"], group["lr_decay"], group["weight_decay"], group[
            "eps"]
        for p in params:
            grad = p.grad
            state = self._state(p)
            if not state:
                state["step"] = 0
                state["sum"] = np.full(p.shape, group["initial_accumulator_value"], p.dtype)
            state["step"] = t = state["step"] + 1
            if wd:
                grad = grad + wd * p.numpy()
            clr = lr / (1.0 + (t - 1) * lr_decay)
            s_ = state["sum"]
            s_ += grad * grad
            std = np.sqrt(s_)
            std += eps
            p.sub_(clr * (grad / std))


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


class ReduceLROnPlateau:
    """Multiply each group's lr by ``factor`` once the metric has not improved for
    ``patience`` epochs (PyTorch's rule): call ``scheduler.step(val_loss)`` per epoch.

    "Improved" is ``mode="min"``: below best·(1 - threshold) (``threshold_mode="rel"``)
    or best - threshold ("abs"); ``mode="max"`` mirrored. After a cut, ``cooldown``
    epochs pass before bad epochs count again; lr never goes below ``min_lr``, and a cut
    smaller than ``eps`` is skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr=0.0, eps: float = 1e-8):
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', "
                             f"got {threshold_mode!r}")
        self.optimizer = optimizer
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"ReduceLROnPlateau: expected {n} min_lr values, got "
                                 f"{len(min_lr)}")
            self.min_lrs = [float(v) for v in min_lr]
        else:
            self.min_lrs = [float(min_lr)] * n
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.eps = int(cooldown), float(eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def is_better(self, a: float, best: float) -> bool:
        t = self.threshold
        if self.mode == "min":
            return a < (best * (1.0 - t) if self.threshold_mode == "rel" else best - t)
        return a > (best * (1.0 + t) if self.threshold_mode == "rel" else best + t)

    def step(self, metrics) -> None:
        current = float(metrics.item() if hasattr(metrics, "item") else metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for g, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old = g["lr"]
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    g["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list:
        return list(self._last_lr)


class OneCycleLR:
    """The 1cycle policy (Smith), PyTorch's rule: call ``step()`` after every batch.

    lr rises from max_lr/div_factor to ``max_lr`` over the first ``pct_start`` of
    ``total_steps`` (or ``epochs·steps_per_epoch``), then falls to
    initial_lr/final_div_factor (``three_phase``: back to the initial lr first, then to
    the minimum), by cosine (``anneal_strategy="cos"``) or linearly ("linear"). With
    ``cycle_momentum`` the momentum (Adam's β₁) moves the opposite way between
    ``max_momentum`` and ``base_momentum``.
    """

    def __init__(self, optimizer: Optimizer, max_lr, total_steps=None, epochs=None,
                 steps_per_epoch=None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        self.optimizer = optimizer
        groups = optimizer.param_groups
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and "
                                 "steps_per_epoch")
            if epochs <= 0 or steps_per_epoch <= 0:
                raise ValueError(f"OneCycleLR: epochs and steps_per_epoch must be positive, "
                                 f"got {epochs} and {steps_per_epoch}")
            total_steps = epochs * steps_per_epoch
        elif total_steps <= 0:
            raise ValueError(f"OneCycleLR: total_steps must be positive, got {total_steps}")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.total_steps = int(total_steps)
        self.anneal_strategy = anneal_strategy
        T = float(self.total_steps)
        if three_phase:
            self._phases = [
                (float(pct_start * T) - 1, "initial_lr", "max_lr", "max_momentum",
                 "base_momentum"),
                (float(2 * pct_start * T) - 2, "max_lr", "initial_lr", "base_momentum",
                 "max_momentum"),
                (T - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (float(pct_start * T) - 1, "initial_lr", "max_lr", "max_momentum",
                 "base_momentum"),
                (T - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        max_lrs = self._per_group(max_lr, "max_lr")
        if last_epoch == -1:
            for g, m in zip(groups, max_lrs):
                g["initial_lr"] = m / div_factor
                g["max_lr"] = m
                g["min_lr"] = g["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            defaults = optimizer.defaults
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError("OneCycleLR: the optimizer has no momentum to cycle; pass "
                                 "cycle_momentum=False")
            self.use_beta1 = "betas" in defaults
            bases = self._per_group(base_momentum, "base_momentum")
            maxes = self._per_group(max_momentum, "max_momentum")
            if last_epoch == -1:
                for g, lo, hi in zip(groups, bases, maxes):
                    self._set_momentum(g, hi)
                    g["max_momentum"], g["base_momentum"] = hi, lo
        self.base_lrs = [g["initial_lr"] for g in groups]
        self.last_epoch = last_epoch
        self.step()

    def _per_group(self, value, name) -> list:
        n = len(self.optimizer.param_groups)
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"OneCycleLR: expected {n} values for {name}, got "
                                 f"{len(value)}")
            return [float(v) for v in value]
        return [float(value)] * n

    def _set_momentum(self, group, m) -> None:
        if self.use_beta1:
            group["betas"] = (m, *group["betas"][1:])
        else:
            group["momentum"] = m

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def step(self) -> None:
        self.last_epoch += 1
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {t} times with total_steps="
                             f"{self.total_steps}; make total_steps (or epochs · "
                             "steps_per_epoch) cover every step")
        for g in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
                if t <= end or i == len(self._phases) - 1:
                    pct = (t - start) / (end - start)
                    g["lr"] = self._anneal(g[lr0], g[lr1], pct)
                    if self.cycle_momentum:
                        self._set_momentum(g, self._anneal(g[m0], g[m1], pct))
                    break
                start = end

    def get_last_lr(self) -> list:
        return [g["lr"] for g in self.optimizer.param_groups]
