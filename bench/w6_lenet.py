"""W6: a LeNet-size conv net, one SGD step on a batch of 64 images 1×28×28, float32.

conv 6@5×5 (padding 2) → ReLU → max-pool 2 → conv 16@5×5 → ReLU → max-pool 2 →
flatten (400) → linear 120 → ReLU → linear 84 → ReLU → linear 10 → softmax
cross-entropy → plain SGD. Every library starts from the same weights and takes the
next of 16 random batches (inputs standard normal, labels uniform) at each step.

- chainrule: ``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.Flatten``, ``nn.Linear`` in an
  ``nn.Sequential``, ``F.cross_entropy``, ``nn.optim.SGD``;
- NumPy (hand-written): the strongest step we could write: each convolution one
  im2col copy of a sliding-window view and one batched matmul; the input gradient one
  matmul and 25 contiguous block additions (positions on the input's grid, the batch
  innermost); pooling a running maximum of four strided views, its backward fused with
  the ReLU's; the input padded once up front; every update in place;
- PyTorch (CPU): ``torch.nn`` with its own convolution kernels, as many threads as
  NumPy's BLAS.

Target: chainrule at most 2× PyTorch.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from bench.common import Table, cycle_batches, training_step
from bench.w1_case_study import blas_threads, torch_or_none

BATCH = 64
LR = 0.05
N_BATCHES = 16


def _chainrule_model():
    import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, dtype=np.float32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, dtype=np.float32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120, dtype=np.float32), nn.ReLU(),
        nn.Linear(120, 84, dtype=np.float32), nn.ReLU(),
        nn.Linear(84, 10, dtype=np.float32))


def problem(seed: int = 0):
    """Batches [(x float32 (64, 1, 28, 28), labels (64,)), ...] and the initial weights
    [W1, b1, ..., W5, b5] in PyTorch's layout."""
    import nn

    rng = np.random.default_rng(seed)
    batches = [(rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32),
                rng.integers(0, 10, BATCH)) for _ in range(N_BATCHES)]
    nn.manual_seed(seed)
    weights = [p.data.copy() for p in _chainrule_model().parameters()]
    return batches, weights



# ---------------------------------------------------------------------- chainrule


def chainrule_step(batches, weights, make_model=None, lr=LR):
    """One SGD step (learning rate ``lr``) of ``make_model()`` (this workload's network
    by default) per call, on the next batch, from ``weights``; returns ``(step, model)``."""
    import autograd as ag
    import nn
    import nn.functional as F

    model = (make_model or _chainrule_model)()
    for p, w in zip(model.parameters(), weights):
        p.data[...] = w
    opt = nn.optim.SGD(model.parameters(), lr=lr)
    batches = [(ag.Tensor(x), labels) for x, labels in batches]
    step = training_step(model, opt, batches, F.cross_entropy)
    return step, model


# ---------------------------------------------------------------------- NumPy by hand


def _im2col(x, k):
    """(N, C, H, W) → its k×k windows as columns, (N, C·k·k, OH·OW): one copy of a
    sliding-window view, positions innermost (read along the input's rows)."""
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))  # N,C,OH,OW,k,k
    n, c, oh, ow = win.shape[:4]
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, oh * ow)


def _col2im(dz, K, shape, k):
    """dL/dx of a stride-1 convolution: dz (N, O, OH, OW), kernels K (O, C·k·k), input
    (N, C, H, W). The output positions are laid out on the input's grid (dz widened with
    zeros to width W), the batch innermost, so that Kᵀ·dz is one matmul and each tap's
    share one contiguous block of the flattened input, shifted by the tap's offset."""
    n, o, oh, ow = dz.shape
    _, c, h, w = shape
    wide = np.zeros((o, oh, w, n), dtype=dz.dtype)
    wide[:, :, :ow] = dz.transpose(1, 2, 3, 0)
    taps = (K.T @ wide.reshape(o, -1)).reshape(c, k * k, -1)
    run = taps.shape[-1]
    flat = np.zeros((c, (h * w + w) * n), dtype=dz.dtype)
    for i in range(k):
        for j in range(k):
            off = (i * w + j) * n
            flat[:, off:off + run] += taps[:, i * k + j]
    return flat[:, :h * w * n].reshape(c, h, w, n).transpose(3, 0, 1, 2)


def _pool(a):
    """2×2 max-pool of (N, C, H, W): the running maximum of the four strided taps."""
    out = np.maximum(a[:, :, ::2, ::2], a[:, :, ::2, 1::2])
    np.maximum(out, a[:, :, 1::2, ::2], out=out)
    np.maximum(out, a[:, :, 1::2, 1::2], out=out)
    return out


def _unpool_relu(dout, a, out):
    """dL/dz of relu then pool: dout to every tap equal to its window's max and
    positive (a tie is only ever at 0, where the ReLU passes no gradient)."""
    dz = np.empty(a.shape, dtype=dout.dtype)
    for i in (0, 1):
        for j in (0, 1):
            tap = a[:, :, i::2, j::2]
            np.multiply(dout, (tap == out) & (tap > 0), out=dz[:, :, i::2, j::2])
    return dz


def numpy_step(batches, weights):
    """Forward, backprop and SGD written out (NCHW, as PyTorch)."""
    W1, b1, W2, b2, W3, b3, W4, b4, W5, b5 = (w.copy() for w in weights)
    K1, K2 = W1.reshape(6, 25), W2.reshape(16, 150)  # views: updated in place with W1, W2
    params = [W1, b1, W2, b2, W3, b3, W4, b4, W5, b5]
    next_batch = cycle_batches([(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), labels)
                                for x, labels in batches])

    def step():
        x, labels = next_batch()  # (N, 1, 32, 32), padded once up front
        n = len(x)
        rows = np.arange(n)
        # forward
        c1 = _im2col(x, 5)                                   # (N, 25, 784)
        z1 = K1 @ c1
        z1 += b1[:, None]
        a1 = np.maximum(z1, 0).reshape(n, 6, 28, 28)
        p1 = _pool(a1)                                       # (N, 6, 14, 14)
        c2 = _im2col(p1, 5)                                  # (N, 150, 100)
        z2 = K2 @ c2
        z2 += b2[:, None]
        a2 = np.maximum(z2, 0).reshape(n, 16, 10, 10)
        p2 = _pool(a2)                                       # (N, 16, 5, 5)
        f = p2.reshape(n, 400)
        z3 = f @ W3.T
        z3 += b3
        a3 = np.maximum(z3, 0)
        z4 = a3 @ W4.T
        z4 += b4
        a4 = np.maximum(z4, 0)
        z5 = a4 @ W5.T
        z5 += b5
        z5 -= z5.max(axis=1, keepdims=True)
        e = np.exp(z5)
        s = e.sum(axis=1, keepdims=True)
        loss = -(z5[rows, labels] - np.log(s[:, 0])).mean()
        # backward
        d5 = e
        d5 /= s
        d5[rows, labels] -= 1
        d5 /= n
        d4 = d5 @ W5
        d4 *= z4 > 0
        d3 = d4 @ W4
        d3 *= z3 > 0
        df = d3 @ W3
        dz2 = _unpool_relu(df.reshape(n, 16, 5, 5), a2, p2).reshape(n, 16, 100)
        dp1 = _col2im(dz2.reshape(n, 16, 10, 10), K2, p1.shape, 5)
        dz1 = _unpool_relu(dp1, a1, p1).reshape(n, 6, 784)
        grads = [(dz1 @ c1.transpose(0, 2, 1)).sum(axis=0).reshape(W1.shape),
                 dz1.sum(axis=2).sum(axis=0),
                 (dz2 @ c2.transpose(0, 2, 1)).sum(axis=0).reshape(W2.shape),
                 dz2.sum(axis=2).sum(axis=0),
                 d3.T @ f, d3.sum(axis=0), d4.T @ a3, d4.sum(axis=0),
                 d5.T @ a4, d5.sum(axis=0)]
        # SGD, in place
        for p, g in zip(params, grads):
            g *= LR
            p -= g
        return loss

    return step, params


# ---------------------------------------------------------------------- PyTorch


def torch_step(batches, weights, torch):
    tnn = torch.nn
    model = tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
        tnn.Linear(84, 10))
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(w))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    batches = [(torch.from_numpy(x), torch.from_numpy(labels))
               for x, labels in batches]
    step = training_step(model, opt, batches, torch.nn.functional.cross_entropy)
    return step, model


def in_turns(steps: dict, calls: int = 40) -> dict:
    """The best seconds of one call of each step, over ``calls`` calls made in turns:
    on a shared machine the fastest of many single steps is the one least disturbed,
    and taking turns exposes every library to the same changes of load."""
    best = dict.fromkeys(steps, float("inf"))
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(calls):
            for name, fn in steps.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
    finally:
        if gc_was:
            gc.enable()
    return best


def side_by_side(steps: dict, tstep, threads: int) -> dict:
    """Best seconds per step of each library (``tstep``: PyTorch's, or None). With one
    thread PyTorch takes turns with the others; with more it goes after them: its OpenMP
    threads keep spinning for a while after each call and would slow what runs next."""
    for fn in steps.values():
        fn()  # warm up
    if tstep is not None and threads == 1:
        return in_turns({**steps, "PyTorch (CPU)": tstep})
    times = in_turns(steps)
    if tstep is not None:
        times["PyTorch (CPU)"] = in_turns({"torch": tstep})["torch"]
    return times


def torch_note(blas_note: str, torch, threads: int) -> str:
    if torch is None:
        return blas_note + "; PyTorch not installed"
    order = "in turns with the others" if threads == 1 else "after the others"
    return f"{blas_note}; PyTorch set to {threads} thread(s), timed {order}"


def compare_steps(title: str, baseline: str, order, steps, batches, weights):
    """Time the training steps ``steps = (chainrule_step, numpy_step, torch_step)`` of one
    workload, all from ``weights`` on ``batches``, in turns: a ``Table`` with rows in
    ``order``, noting the threads and how far the first three losses agree. Returns the
    table and torch (None when it is not installed), for the workload's targets."""
    chainrule_step, numpy_step, torch_step = steps
    threads, blas_note = blas_threads()
    torch = torch_or_none()
    table = Table(title, baseline=baseline, unit="per step")
    ours, _ = chainrule_step(batches, weights)
    hand, _ = numpy_step(batches, weights)
    losses = {"chainrule": [float(ours().item()) for _ in range(3)],
              "NumPy": [float(hand()) for _ in range(3)]}
    tstep = None
    if torch is not None:
        torch.set_num_threads(threads)
        tstep, _ = torch_step(batches, weights, torch)
        losses["PyTorch"] = [float(tstep().item()) for _ in range(3)]
    times = side_by_side({"NumPy (hand-written)": hand, "chainrule": ours}, tstep, threads)
    for name in order:
        table.add(name, times.get(name))
    table.notes.append(torch_note(blas_note, torch, threads))
    ref = losses["chainrule"]
    gap = max(abs(a - b) for other in losses.values() for a, b in zip(ref, other))
    table.notes.append(f"same initial weights; the losses of the first three steps agree to "
                       f"{gap:.1e} (float32)")
    return table, torch


def run() -> list[Table]:
    batches, weights = problem()
    table, torch = compare_steps(
        f"W6: LeNet-size conv net (conv 6@5×5, pool, conv 16@5×5, pool, linear "
        f"120-84-10), one SGD step on a batch of {BATCH} 1×28×28, float32",
        "PyTorch (CPU)", ("PyTorch (CPU)", "NumPy (hand-written)", "chainrule"),
        (chainrule_step, numpy_step, torch_step), batches, weights)
    if torch is not None:
        ratio = table.ratio("chainrule")
        table.target(f"chainrule at most 2x PyTorch (measured {ratio:.2f}x)", ratio <= 2.0)
    return [table]


if __name__ == "__main__":
    for t in run():
        print(t.markdown())
