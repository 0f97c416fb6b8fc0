"""Derivatives of derivatives: ``backward(create_graph=True)``, ``grad`` composed with
itself, ``vjp``/``jvp``/``jacobian``/``jacfwd``/``hessian``/``hvp`` against
``torch.func`` and ``torch.autograd.functional``, ``gradgradcheck``'s report, custom
Functions under ``create_graph``, and the drawing and step-through of a gradient's
graph. (Every op's double backward is checked from the op table in
``test_double_backward.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F

torch = pytest.importorskip("torch")

TOL = dict(rtol=1e-10, atol=1e-10)


def leaf(values):
    return ag.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# ----------------------------------------------------------------- the engine


def test_backward_create_graph_gives_a_grad_with_a_graph():
    x = leaf([0.5, -1.5, 2.0])
    (x**3).sum().backward(create_graph=True)
    g = x.grad
    assert isinstance(g, ag.Tensor) and g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.data, 3 * x.data**2)
    x.grad = None
    g.sum().backward()  # d/dx Σ 3x² = 6x
    assert type(x.grad) is np.ndarray
    np.testing.assert_allclose(x.grad, 6 * x.data)


def test_default_backward_still_gives_an_ndarray():
    x = leaf([0.5, -1.5])
    (x * x).sum().backward()
    assert type(x.grad) is np.ndarray


def test_grad_composes_to_third_order():
    x = 0.3
    t = np.tanh(x)
    d3 = ag.grad(ag.grad(ag.grad(lambda s: s.tanh())))(x)
    assert float(d3) == pytest.approx(-2 * (1 - t * t) * (1 - 3 * t * t), rel=1e-12)
    # and value_and_grad composes as well
    value, d2 = ag.value_and_grad(ag.grad(lambda s: s.exp() * s))(1.5)
    assert float(value) == pytest.approx(np.exp(1.5) * 2.5)
    assert float(d2) == pytest.approx(np.exp(1.5) * 3.5)


def test_gradient_penalty_matches_torch():
    """A gradient penalty: the norm of a gradient, differentiated again."""
    rng = np.random.default_rng(0)
    w_np, x_np = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    w = leaf(w_np)
    x = leaf(x_np)
    out = (x @ w.T).tanh().sum()
    (gx,) = ag.engine.graph_backward(out, inputs=[x])
    (gx * gx).sum().backward()
    tw = torch.tensor(w_np, requires_grad=True)
    tx = torch.tensor(x_np, requires_grad=True)
    (tgx,) = torch.autograd.grad(torch.tanh(tx @ tw.T).sum(), tx, create_graph=True)
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), **TOL)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), **TOL)


# ----------------------------------------------------------------- functional forms


def f_ours(x):
    return (x.tanh() * x.sum() + (x * x).exp().log_softmax()) @ np.arange(1.0, 4.0)


def vec_ours(x):
    return x.sigmoid() * x.sum() + x.exp()[::-1]


def vec_torch(x):
    return torch.sigmoid(x) * x.sum() + torch.exp(x).flip(0)


def f_torch(x):
    return (torch.tanh(x) * x.sum() + torch.log_softmax(torch.exp(x * x), -1)) @ \
        torch.arange(1.0, 4.0, dtype=torch.float64)


X = np.array([0.3, -0.8, 0.5])


def test_jvp_matches_torch_func():
    t = np.array([1.0, -2.0, 0.5])
    out, tangent = ag.jvp(vec_ours, (X,), (t,))
    ref_out, ref_tangent = torch.func.jvp(vec_torch, (torch.tensor(X),), (torch.tensor(t),))
    np.testing.assert_allclose(out, ref_out.numpy(), **TOL)
    np.testing.assert_allclose(tangent, ref_tangent.numpy(), **TOL)


def test_vjp_matches_torch_func():
    u = np.array([0.5, 1.0, -1.0])
    out, vjp_fn = ag.vjp(vec_ours, X)
    ref_out, ref_fn = torch.func.vjp(vec_torch, torch.tensor(X))
    np.testing.assert_allclose(out.data, ref_out.numpy(), **TOL)
    np.testing.assert_allclose(vjp_fn(u)[0], ref_fn(torch.tensor(u))[0].numpy(), **TOL)


@pytest.mark.parametrize("ours,theirs", [(ag.jacobian, torch.func.jacrev),
                                         (ag.jacfwd, torch.func.jacfwd)])
def test_jacobians_match_torch_func(ours, theirs):
    np.testing.assert_allclose(ours(vec_ours)(X), theirs(vec_torch)(torch.tensor(X)).numpy(),
                               **TOL)


def test_jacobian_argnums_tuple():
    a, b = np.array([1.0, 2.0]), np.array([0.5, -1.0, 3.0])
    ja, jb = ag.jacobian(lambda p, q: p.sum() * q, argnums=(0, 1))(a, b)
    ta, tb = torch.func.jacrev(lambda p, q: p.sum() * q, argnums=(0, 1))(
        torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(ja, ta.numpy(), **TOL)
    np.testing.assert_allclose(jb, tb.numpy(), **TOL)
    assert ag.jacfwd(lambda p, q: p.sum() * q, argnums=1)(a, b).shape == (3, 3)


def test_hessian_and_hvp_match_torch_func():
    v = np.array([1.0, 0.5, -2.0])
    np.testing.assert_allclose(ag.hessian(f_ours)(X),
                               torch.func.hessian(f_torch)(torch.tensor(X)).numpy(), **TOL)
    value, hv = ag.hvp(f_ours, X, v)
    ref_value, ref_hv = torch.autograd.functional.hvp(f_torch, torch.tensor(X),
                                                      torch.tensor(v))
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    np.testing.assert_allclose(hv, ref_hv.numpy(), **TOL)


def test_hessian_of_the_case_study_loss_matches_torch():
    """MLP 10-5-5-1 (sigmoid, BCE): 91 parameters, its full Hessian to 1e-9."""
    rng = np.random.default_rng(0)
    X_np, y_np = rng.standard_normal((40, 10)), (rng.random((40, 1)) > 0.5).astype(float)
    model = nn.MLP([10, 5, 5, 1], activation="sigmoid", rng=np.random.default_rng(1))
    shapes = [p.shape for p in model.parameters()]
    assert sum(int(np.prod(s)) for s in shapes) == 91
    flat0 = np.concatenate([p.data.reshape(-1) for p in model.parameters()])

    def unflatten(flat, slicer):
        parts, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            parts.append(slicer(flat, k, n).reshape(s))
            k += n
        return parts

    def loss_ours(flat):
        (w1, b1, w2, b2, w3, b3) = unflatten(flat, lambda f, k, n: f[k:k + n])
        h = F.linear(ag.Tensor(X_np), w1, b1).sigmoid()
        h = F.linear(h, w2, b2).sigmoid()
        p = F.linear(h, w3, b3).sigmoid()
        return F.binary_cross_entropy(p, ag.Tensor(y_np))

    def loss_torch(flat):
        (w1, b1, w2, b2, w3, b3) = unflatten(flat, lambda f, k, n: f[k:k + n])
        h = torch.sigmoid(torch.tensor(X_np) @ w1.T + b1)
        h = torch.sigmoid(h @ w2.T + b2)
        p = torch.sigmoid(h @ w3.T + b3)
        return torch.nn.functional.binary_cross_entropy(p, torch.tensor(y_np))

    ours = ag.hessian(loss_ours)(flat0)
    theirs = torch.autograd.functional.hessian(loss_torch, torch.tensor(flat0)).numpy()
    assert ours.shape == (91, 91)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------- gradgradcheck


class CubeForgetsItsCurve(ag.Function):
    """x³ whose backward uses x as a constant: first derivative right, second wrong."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        values = x.data if isinstance(x, ag.Tensor) else x  # the values: x's graph dropped
        return grad * 3 * values**2


def test_gradgradcheck_passes_and_reports_a_wrong_second_derivative():
    x = leaf([0.5, -1.2, 2.0])
    assert ag.gradcheck(CubeForgetsItsCurve.apply, [x])
    assert ag.gradgradcheck(lambda t: (t * t).tanh(), [x])
    with pytest.raises(ag.GradcheckError) as err:
        ag.gradgradcheck(CubeForgetsItsCurve.apply, [x])
    report = str(err.value)
    assert report.startswith("gradgradcheck FAILED")
    assert "input 0" in report and "index (0,)" in report


# ----------------------------------------------------------------- custom Functions


class Square(ag.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return 2 * x * grad  # operators: works on arrays and Tensors


class OnceSquare(Square):
    @staticmethod
    @ag.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved
        return 2 * x * grad


class InPlaceSquare(Square):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        out = np.zeros(np.shape(x))
        out[...] = 2 * x * grad  # an in-place write: arrays only
        return out


def test_custom_function_gets_double_backward_for_free():
    assert ag.grad(ag.grad(lambda t: Square.apply(t.exp())))(0.7) == pytest.approx(
        4 * np.exp(1.4))
    assert ag.gradgradcheck(Square.apply, [leaf([0.3, -2.0])])


@pytest.mark.parametrize("fn", [OnceSquare, InPlaceSquare])
def test_custom_function_without_double_backward_names_itself(fn):
    x = leaf([0.3, -2.0])
    fn.apply(x).sum().backward(retain_graph=True)  # first order works
    np.testing.assert_allclose(x.grad, 2 * x.data)
    with pytest.raises(RuntimeError, match=fn.__name__):
        fn.apply(x).sum().backward(create_graph=True)


def test_saved_intermediate_is_refused_under_create_graph():
    class SavesExp(ag.Function):
        @staticmethod
        def forward(ctx, x):
            e = np.exp(x)
            ctx.save_for_backward(e * 1.0)  # neither input nor output
            return e

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.saved[0]

    with pytest.raises(RuntimeError, match="SavesExp: it has no double backward yet"):
        SavesExp.apply(leaf([1.0])).sum().backward(create_graph=True)


# ----------------------------------------------------------------- pictures


def test_draw_and_step_through_a_gradients_graph():
    w = ag.Tensor([0.5, -1.0], requires_grad=True, name="w")
    ((w * w).sum() * w.sum()).backward(create_graph=True)
    g = w.grad
    w.grad = None
    dot = ag.draw_graph(g.sum())
    assert "w" in dot.source and "×" in dot.source
    trace = ag.trace_backward(g.sum())
    assert len(trace) > 3
    hessian_row_sums = 2 * (w.data.sum() + 2 * w.data) + 2 * w.data.sum()  # H @ 1
    np.testing.assert_allclose(w.grad, hessian_row_sums)


def test_create_graph_keeps_float32_and_runs_hooks_on_tensors():
    x = ag.Tensor(np.array([0.5, -1.0], dtype=np.float32), requires_grad=True)
    (x.tanh() * x.sigmoid()).sum().backward(create_graph=True)
    assert x.grad.dtype == np.float32
    g = x.grad
    x.grad = None
    g.sum().backward()
    assert x.grad.dtype == np.float32

    seen = []
    w = leaf([0.5, 2.0])
    z = w * w
    z.register_hook(lambda grad: seen.append(type(grad)) or grad * 2)
    z.sum().backward(create_graph=True)
    assert seen == [ag.Tensor]
    np.testing.assert_allclose(w.grad.data, 4 * w.data)  # the hook's doubling is kept


# ----------------------------------------------------------------- hessian over several arguments


def test_hessian_argnums_tuple_gives_the_blocks_of_torch_func_hessian():
    def f(p, q, c):  # np.tanh: p is an array where it is not differentiated
        return ((np.tanh(p) @ q) ** 2).sum() + (p**3).sum() * c

    def f_torch(p, q, c):
        return ((p.tanh() @ q) ** 2).sum() + (p**3).sum() * c

    rng = np.random.default_rng(3)
    p, q, c = rng.standard_normal((2, 3)), rng.standard_normal(3), 0.7
    ours = ag.hessian(f, argnums=(0, 1))(p, q, c)
    theirs = torch.func.hessian(f_torch, argnums=(0, 1))(
        torch.tensor(p), torch.tensor(q), c)
    assert len(ours) == 2 and all(len(row) == 2 for row in ours)
    for i in range(2):
        for j in range(2):
            assert ours[i][j].shape == tuple(theirs[i][j].shape)
            np.testing.assert_allclose(ours[i][j], theirs[i][j].numpy(), **TOL)
    (only,) = ag.hessian(f, argnums=(1,))(p, q, c)
    np.testing.assert_allclose(only[0], ours[1][1], **TOL)
    np.testing.assert_allclose(ag.hessian(f, argnums=0)(p, q, c), ours[0][0], **TOL)


def test_hessian_where_the_gradient_does_not_depend_on_an_argument():
    # f is linear in q: the q-q block is zeros; nested in grad, blocks carry a graph
    def f(p, q):
        return (p**2).sum() * 3.0 + q.sum()

    p, q = np.array([1.0, -2.0]), np.array([0.5, 0.25, 4.0])
    (hpp, hpq), (hqp, hqq) = ag.hessian(f, argnums=(0, 1))(p, q)
    np.testing.assert_allclose(hpp, 6 * np.eye(2), **TOL)
    assert hpq.shape == (2, 3) and hqp.shape == (3, 2) and hqq.shape == (3, 3)
    assert not hpq.any() and not hqp.any() and not hqq.any()
    third = ag.grad(lambda x: ag.hessian(lambda y: (y**4).sum())(x).sum())(p)
    np.testing.assert_allclose(third, 24 * p, **TOL)
