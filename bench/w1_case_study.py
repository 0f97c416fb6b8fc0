"""W1: one full-batch gradient-descent step on the case study, float64.

The model is the classic MLP 10-5-5-1 with sigmoid units and a sigmoid output, the loss
binary cross-entropy on N=1000 samples, the update plain gradient descent. One step is
forward, backward and update. Every library starts from the same weights.

- chainrule: ``nn.MLP`` + ``F.binary_cross_entropy`` + ``nn.optim.SGD``;
- NumPy (hand-written): the forward pass and the backprop equations written out by hand;
- PyTorch (CPU): ``torch.nn`` + ``BCELoss`` + ``torch.optim.SGD``, as many threads as
  NumPy's BLAS;
- mygrad: the same graph with mygrad tensors, updated by hand.

Target: chainrule <= 1.3x the hand-written NumPy step.
"""

from __future__ import annotations

import numpy as np

from bench.common import Table, best_time

SIZES = [10, 5, 5, 1]
N = 1000
LR = 0.5


def blas_threads() -> tuple[int, str]:
    """(threads, description) of NumPy's BLAS, via threadpoolctl when it is there."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return 1, "BLAS unknown (threadpoolctl not installed); torch runs 1 thread"
    for info in threadpool_info():
        if info.get("user_api") == "blas" and "numpy" in info.get("filepath", ""):
            return (int(info["num_threads"]),
                    f"NumPy BLAS: {info['internal_api']} {info.get('version')} "
                    f"({info.get('architecture')}), {info['num_threads']} thread(s)")
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if blas:
        i = blas[0]
        return int(i["num_threads"]), (f"BLAS: {i['internal_api']} {i.get('version')}, "
                                       f"{i['num_threads']} thread(s)")
    return 1, "no BLAS found by threadpoolctl"


def interleaved_times(steps: dict, rounds: int = 5) -> dict:
    """Best seconds per call of each step, measured in turns (round-robin) so that a
    change in machine load between libraries does not skew their ratios."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, fn in steps.items():
            best[name] = min(best[name], best_time(fn, repeat=3))
    return best


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def problem(seed: int = 0):
    """Data and initial weights: X (N, 10), y (N, 1), [(W, b), ...] in (out, in) layout."""
    import nn

    X, y = nn.data.make_case_study(n=N, d=SIZES[0], seed=seed)
    nn.manual_seed(seed)
    model = nn.MLP(SIZES, activation="sigmoid", output_activation="sigmoid")
    weights = [(lin.weight.data.copy(), lin.bias.data.copy())
               for lin in model.layers if isinstance(lin, nn.Linear)]
    return X, y, weights


# ---------------------------------------------------------------------- chainrule


def chainrule_step(X, y, weights):
    import autograd as ag
    import nn
    import nn.functional as F

    model = nn.MLP(SIZES, activation="sigmoid", output_activation="sigmoid")
    linears = [m for m in model.layers if isinstance(m, nn.Linear)]
    for lin, (W, b) in zip(linears, weights):
        lin.weight.data[...] = W
        lin.bias.data[...] = b
    opt = nn.optim.SGD(model.parameters(), lr=LR)
    xt = ag.Tensor(X)

    def step():
        opt.zero_grad()
        loss = F.binary_cross_entropy(model(xt), y)
        loss.backward()
        opt.step()
        return loss

    return step, model


# ---------------------------------------------------------------------- NumPy by hand


def numpy_step(X, y, weights):
    """Hand-written backprop for sigmoid layers and BCE on a sigmoid output."""
    params = [(W.copy(), b.copy()) for W, b in weights]
    n = len(X)

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    def step():
        acts = [X]
        a = X
        for W, b in params:
            a = sigmoid(a @ W.T + b)
            acts.append(a)
        p = a
        loss = -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))
        delta = (p - y) / n  # dL/dz of the output layer (sigmoid + BCE)
        for i in range(len(params) - 1, -1, -1):
            W, b = params[i]
            a_in = acts[i]
            gW = delta.T @ a_in
            gb = delta.sum(axis=0)
            if i:
                delta = (delta @ W) * a_in * (1.0 - a_in)
            W -= LR * gW
            b -= LR * gb
        return loss

    return step, params


# ---------------------------------------------------------------------- PyTorch


def torch_step(X, y, weights, torch):
    layers = []
    for W, b in weights:
        lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.BCELoss()
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss

    return step, model


# ---------------------------------------------------------------------- mygrad


def mygrad_step(X, y, weights):
    import mygrad as mg

    params = [(mg.tensor(W.copy()), mg.tensor(b.copy())) for W, b in weights]

    def step():
        a = X
        for W, b in params:
            a = 1 / (1 + mg.exp(-(mg.matmul(a, W.T) + b)))
        loss = -mg.mean(y * mg.log(a) + (1 - y) * mg.log(1 - a))
        loss.backward()
        for W, b in params:
            W.data -= LR * W.grad
            b.data -= LR * b.grad
        return loss

    return step, params


def _check_same_loss(steps) -> float:
    """Run two steps of each and return the largest loss difference to NumPy's."""
    losses = {}
    for name, (make, args) in steps.items():
        step, _ = make(*args)
        first = step()
        second = step()
        losses[name] = (float(first.item()), float(second.item()))
    ref = losses["NumPy (hand-written)"]
    return max(abs(a - ref[0]) + abs(b - ref[1]) for a, b in losses.values())


def run() -> list[Table]:
    X, y, weights = problem()
    threads, blas_note = blas_threads()
    torch = torch_or_none()
    table = Table("W1: case study MLP 10-5-5-1 (sigmoid, BCE), one full-batch GD step, "
                  "N=1000, float64", baseline="NumPy (hand-written)", unit="per step")
    makers = {"NumPy (hand-written)": (numpy_step, (X, y, weights)),
              "chainrule": (chainrule_step, (X, y, weights))}
    if torch is not None:
        torch.set_num_threads(threads)
        makers["PyTorch (CPU)"] = (torch_step, (X, y, weights, torch))
    try:
        import mygrad  # noqa: F401

        makers["mygrad"] = (mygrad_step, (X, y, weights))
    except ImportError:
        pass
    steps = {name: make(*args)[0] for name, (make, args) in makers.items()}
    torch_fn = steps.pop("PyTorch (CPU)", None)
    times = interleaved_times(steps)
    # PyTorch last: its OpenMP threads keep spinning for a while after each call and
    # would slow whatever ran next on a machine with few cores
    times["PyTorch (CPU)"] = None if torch_fn is None else interleaved_times(
        {"torch": torch_fn}, rounds=3)["torch"]
    for name in ("NumPy (hand-written)", "chainrule", "PyTorch (CPU)", "mygrad"):
        if name in times:
            table.add(name, times[name])
    diff = _check_same_loss(makers)
    ratio = table.ratio("chainrule")
    table.target(f"chainrule <= 1.3x hand-written NumPy (measured {ratio:.2f}x)",
                 ratio <= 1.3)
    table.notes.append(blas_note + (f"; PyTorch set to {threads} thread(s), timed after the "
                                    "others" if torch else ""))
    table.notes.append(f"all libraries start from the same weights; their losses over two "
                       f"steps agree to {diff:.1e}")
    table.notes.append("the hand-written step is idiomatic NumPy (a @ W.T + b, "
                       "delta.sum(axis=0)); chainrule's Linear op multiplies by a contiguous "
                       "copy of a small Wᵀ and sums the bias gradient with a BLAS "
                       "matrix-vector product, which NumPy does faster for tall, narrow "
                       "arrays; its BCE is one op")
    return [table]


if __name__ == "__main__":
    for t in run():
        print(t.markdown())
