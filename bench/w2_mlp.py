"""W2: an MNIST-sized MLP step: 784-256-128-10, ReLU, softmax cross-entropy, Adam, float32.

One training step on a batch of 128 (forward, backward, Adam update), from the same
initial weights in every library. Each step takes the next of 64 random batches (inputs
standard normal, labels uniform): gradients keep a realistic size however many steps
the timer runs (one batch over and over would be memorised, and Adam's moments would
decay into slow subnormal floats).

- chainrule: ``nn.MLP`` + ``F.cross_entropy`` + ``nn.optim.Adam``;
- NumPy (hand-written): the forward pass, the backprop equations and Adam written out;
- PyTorch (CPU): ``torch.nn`` + ``cross_entropy`` + ``torch.optim.Adam`` (as many
  threads as NumPy's BLAS).

Also the peak memory one step allocates (``tracemalloc``, which sees NumPy's buffers),
chainrule against the hand-written NumPy step.

Targets: chainrule <= 1.05x the hand-written NumPy step and no slower than PyTorch;
peak memory <= 1.2x the NumPy step's.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np

from bench.common import Table, cycle_batches, training_step
from bench.w1_case_study import blas_threads, interleaved_times, torch_or_none

SIZES = [784, 256, 128, 10]
BATCH = 128
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8


N_BATCHES = 64


def problem(seed: int = 0):
    """Batches [(x float32 (128, 784), integer labels (128,)), ...] and the initial
    weights [(W (out, in), b), ...]."""
    import nn

    rng = np.random.default_rng(seed)
    batches = [(rng.standard_normal((BATCH, SIZES[0])).astype(np.float32),
                rng.integers(0, SIZES[-1], BATCH)) for _ in range(N_BATCHES)]
    nn.manual_seed(seed)
    model = nn.MLP(SIZES, activation="relu", dtype=np.float32)
    weights = [(m.weight.data.copy(), m.bias.data.copy())
               for m in model.layers if isinstance(m, nn.Linear)]
    return batches, weights



# ---------------------------------------------------------------------- chainrule


def chainrule_step(batches, weights):
    import autograd as ag
    import nn
    import nn.functional as F

    model = nn.MLP(SIZES, activation="relu", dtype=np.float32)
    for lin, (W, b) in zip([m for m in model.layers if isinstance(m, nn.Linear)], weights):
        lin.weight.data[...] = W
        lin.bias.data[...] = b
    opt = nn.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    batches = [(ag.Tensor(x), labels) for x, labels in batches]
    step = training_step(model, opt, batches, F.cross_entropy)
    return step, model


# ---------------------------------------------------------------------- NumPy by hand


def numpy_step(batches, weights):
    """Hand-written forward, backprop and Adam (in place, one scratch array)."""
    params = [p.copy() for W, b in weights for p in (W, b)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    next_batch = cycle_batches(batches)
    b1, b2 = BETAS
    t = [0]

    def step():
        x, labels = next_batch()
        n = len(x)
        rows = np.arange(n)
        W1, c1, W2, c2, W3, c3 = params
        # forward
        z1 = x @ W1.T + c1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ W2.T + c2
        a2 = np.maximum(z2, 0)
        z3 = a2 @ W3.T + c3
        shifted = z3 - z3.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -logp[rows, labels].mean()
        # backward: softmax - one-hot, then the layers in reverse
        d3 = np.exp(logp)
        d3[rows, labels] -= 1
        d3 /= n
        d2 = (d3 @ W3) * (z2 > 0)
        d1 = (d2 @ W2) * (z1 > 0)
        grads = [d1.T @ x, d1.sum(axis=0), d2.T @ a1, d2.sum(axis=0),
                 d3.T @ a2, d3.sum(axis=0)]
        # Adam
        t[0] += 1
        step_size = LR / (1 - b1 ** t[0])
        root_bc2 = math.sqrt(1 - b2 ** t[0])
        for p, g, mi, vi in zip(params, grads, m, v):
            tmp = g * (1 - b1)
            mi *= b1
            mi += tmp
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            vi *= b2
            vi += tmp
            np.sqrt(vi, out=tmp)
            tmp /= root_bc2
            tmp += EPS
            np.divide(mi, tmp, out=tmp)
            tmp *= step_size
            p -= tmp
        return loss

    return step, params


# ---------------------------------------------------------------------- PyTorch


def torch_step(batches, weights, torch):
    layers = []
    for i, (W, b) in enumerate(weights):
        lin = torch.nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(weights) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    batches = [(torch.from_numpy(x), torch.from_numpy(labels))
               for x, labels in batches]
    step = training_step(model, opt, batches, torch.nn.functional.cross_entropy)
    return step, model


def peak_bytes(step, warmup: int = 2) -> int:
    """Peak bytes allocated while one step runs (after warm-up, so the optimiser's
    state already exists and only what the step itself needs is counted)."""
    for _ in range(warmup):
        step()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run() -> list[Table]:
    batches, weights = problem()
    threads, blas_note = blas_threads()
    torch = torch_or_none()
    table = Table(f"W2: MLP 784-256-128-10 (ReLU, softmax CE, Adam), one step on a batch "
                  f"of {BATCH}, float32", baseline="NumPy (hand-written)", unit="per step")
    ours, _ = chainrule_step(batches, weights)
    hand, _ = numpy_step(batches, weights)
    losses = [float(ours().item()), float(hand())]
    times = interleaved_times({"NumPy (hand-written)": hand, "chainrule": ours})
    for name, seconds in times.items():
        table.add(name, seconds)
    if torch is not None:
        torch.set_num_threads(threads)
        tstep, _ = torch_step(batches, weights, torch)
        tstep()
        table.add("PyTorch (CPU)", interleaved_times({"torch": tstep}, rounds=3)["torch"])
    else:
        table.add("PyTorch (CPU)", None)

    ratio = table.ratio("chainrule")
    table.target(f"chainrule <= 1.05x hand-written NumPy (measured {ratio:.2f}x)",
                 ratio <= 1.05)
    if torch is not None:
        vs_torch = table.ratio("chainrule", "PyTorch (CPU)")
        table.target(f"chainrule no slower than PyTorch (measured {vs_torch:.2f}x PyTorch)",
                     vs_torch <= 1.0)

    mem = Table("W2: peak memory allocated during one step (tracemalloc)",
                baseline="NumPy (hand-written)", column="peak", unit="MB",
                fmt=lambda n: f"{n / 1e6:.2f}")
    mem.add("NumPy (hand-written)", peak_bytes(numpy_step(batches, weights)[0]))
    mem.add("chainrule", peak_bytes(chainrule_step(batches, weights)[0]))
    mem_ratio = mem.ratio("chainrule")
    mem.target(f"chainrule peak <= 1.2x hand-written NumPy (measured {mem_ratio:.2f}x)",
               mem_ratio <= 1.2)
    table.notes.append(blas_note + (f"; PyTorch set to {threads} thread(s)" if torch else ""))
    table.notes.append(f"same initial weights; first-step losses: chainrule {losses[0]:.6f}, "
                       f"NumPy {losses[1]:.6f}")
    table.notes.append("PyTorch is timed after the others: its OpenMP threads keep spinning "
                       "for a while after each call and would slow what runs next")
    return [table, mem]


if __name__ == "__main__":
    for t in run():
        print(t.markdown())
