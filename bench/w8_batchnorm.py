"""W8: a BatchNorm1d + Linear step: batch 256, 512 features, float32.

Linear 512→512 (no bias, as before a batch norm) → BatchNorm1d(512) (training mode:
the batch's statistics, running statistics moved) → tanh → Linear 512→10 → softmax
cross-entropy → plain SGD: the hidden block of a makemore-style language model. Every
library starts from the same weights and takes the next of 16 random batches (inputs
standard normal, labels uniform) at each step.

- chainrule: ``nn.Linear``, ``nn.BatchNorm1d`` (in training one op,
  ``F.BatchNormFunction``), ``nn.Tanh`` in an ``nn.Sequential``, ``F.cross_entropy``,
  ``nn.optim.SGD``;
- NumPy (hand-written): the forward pass, batch norm's backward in one expression
  (dx = inv_std / N · (N·dx̂ - Σdx̂ - x̂·Σ dx̂·x̂)), in place where NumPy allows;
- PyTorch (CPU): ``torch.nn`` with its fused batch-norm kernel, as many threads as
  NumPy's BLAS.

Target: chainrule at most 1.3× the hand-written NumPy step.
"""

from __future__ import annotations

import numpy as np

from bench.common import Table, cycle_batches, training_step
from bench.w6_lenet import chainrule_step as w6_chainrule_step
from bench.w6_lenet import compare_steps

BATCH, FEATURES, CLASSES = 256, 512, 10
LR, MOMENTUM, EPS = 0.1, 0.1, 1e-5
N_BATCHES = 16


def _chainrule_model():
    import nn

    return nn.Sequential(nn.Linear(FEATURES, FEATURES, bias=False, dtype=np.float32),
                         nn.BatchNorm1d(FEATURES, eps=EPS, momentum=MOMENTUM,
                                        dtype=np.float32),
                         nn.Tanh(),
                         nn.Linear(FEATURES, CLASSES, dtype=np.float32))


def problem(seed: int = 0):
    """Batches [(x float32 (256, 512), labels (256,)), ...] and the initial parameters
    [W1, gamma, beta, W2, b2] in PyTorch's layout."""
    import nn

    rng = np.random.default_rng(seed)
    batches = [(rng.standard_normal((BATCH, FEATURES)).astype(np.float32),
                rng.integers(0, CLASSES, BATCH)) for _ in range(N_BATCHES)]
    nn.manual_seed(seed)
    weights = [p.data.copy() for p in _chainrule_model().parameters()]
    return batches, weights


# ---------------------------------------------------------------------- chainrule


def chainrule_step(batches, weights):
    return w6_chainrule_step(batches, weights, make_model=_chainrule_model, lr=LR)


# ---------------------------------------------------------------------- NumPy by hand


def numpy_step(batches, weights):
    """Forward, backprop (batch norm's in one expression) and SGD written out."""
    W1, gamma, beta, W2, b2 = (w.copy() for w in weights)
    params = [W1, gamma, beta, W2, b2]
    running = np.array([np.zeros(FEATURES), np.ones(FEATURES)], dtype=np.float32)  # mean, var
    next_batch = cycle_batches(batches)

    def step():
        x, labels = next_batch()
        n = len(x)
        rows = np.arange(n)
        # forward
        h = x @ W1.T
        mean = h.mean(axis=0)
        h -= mean                                   # h is now x - mean
        var = np.einsum("ij,ij->j", h, h) / n       # biased variance
        inv_std = 1 / np.sqrt(var + EPS)
        xhat = h
        xhat *= inv_std
        y = xhat * gamma
        y += beta
        a = np.tanh(y, out=y)
        z = a @ W2.T
        z += b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = -(z[rows, labels] - np.log(s[:, 0])).mean()
        running[...] *= 1 - MOMENTUM
        running[0] += MOMENTUM * mean
        running[1] += (MOMENTUM * n / (n - 1)) * var  # the unbiased variance
        # backward
        dz = e
        dz /= s
        dz[rows, labels] -= 1
        dz /= n
        dW2, db2 = dz.T @ a, dz.sum(axis=0)
        dy = dz @ W2
        a *= a
        np.subtract(1, a, out=a)
        dy *= a                                     # through tanh: (1 - a²)
        dgamma = np.einsum("ij,ij->j", dy, xhat)
        dbeta = dy.sum(axis=0)
        # batch norm: dh = inv_std / N · (N·dx̂ - Σ dx̂ - x̂ · Σ dx̂·x̂), dx̂ = dy·γ
        xhat *= dgamma * gamma                      # x̂ · Σ dx̂·x̂ (γ is per feature)
        dy *= n * gamma
        dy -= dbeta * gamma
        dy -= xhat
        dy *= inv_std / n
        dW1 = dy.T @ x
        # SGD, in place
        for p, g in zip(params, (dW1, dgamma, dbeta, dW2, db2)):
            g *= LR
            p -= g
        return loss

    return step, params


# ---------------------------------------------------------------------- PyTorch


def torch_step(batches, weights, torch):
    tnn = torch.nn
    model = tnn.Sequential(tnn.Linear(FEATURES, FEATURES, bias=False),
                           tnn.BatchNorm1d(FEATURES, eps=EPS, momentum=MOMENTUM), tnn.Tanh(),
                           tnn.Linear(FEATURES, CLASSES))
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(w))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    batches = [(torch.from_numpy(x), torch.from_numpy(labels))
               for x, labels in batches]
    step = training_step(model, opt, batches, torch.nn.functional.cross_entropy)
    return step, model


def run() -> list[Table]:
    batches, weights = problem()
    table, torch = compare_steps(
        f"W8: Linear {FEATURES}-{FEATURES} + BatchNorm1d + tanh + Linear "
        f"{FEATURES}-{CLASSES}, one SGD step on a batch of {BATCH}, float32",
        "NumPy (hand-written)", ("NumPy (hand-written)", "chainrule", "PyTorch (CPU)"),
        (chainrule_step, numpy_step, torch_step), batches, weights)
    ratio = table.ratio("chainrule")
    table.target(f"chainrule at most 1.3x hand-written NumPy (measured {ratio:.2f}x)",
                 ratio <= 1.3)
    if torch is not None:
        table.notes.insert(0, f"chainrule {table.ratio('chainrule', 'PyTorch (CPU)'):.2f}x "
                              "PyTorch")
    return [table]


if __name__ == "__main__":
    for t in run():
        print(t.markdown())
