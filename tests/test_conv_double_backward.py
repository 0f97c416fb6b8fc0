"""Second and third derivatives through convolutions and pooling.

The op table (``tests/test_double_backward.py``) checks each op's double backward on its
own; here a small conv net's Hessian and Hessian-vector products are compared with
PyTorch's, and the ops that a convolution's and an average pooling's backward record
(the input and weight gradients of a convolution, the spreading of a pooled gradient)
are themselves differentiated once more (third derivatives of the layers).
"""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
from autograd import ops
from autograd.engine import graph_backward

torch = pytest.importorskip("torch")
tF = torch.nn.functional

TOL = dict(rtol=1e-10, atol=1e-10)

# a 1×6×6 image: conv 2@3×3 (padding 1) → tanh → avg pool 2 → conv 3@2×2 → tanh →
# max pool 2 → squared sum; the parameters as one vector (18 + 2 + 24 + 3 = 47)
SIZES = [(2, 1, 3, 3), (2,), (3, 2, 2, 2), (3,)]


def _unpack(theta):
    parts, at = [], 0
    for shape in SIZES:
        n = int(np.prod(shape))
        parts.append(theta[at:at + n].reshape(shape))
        at += n
    return parts


def loss_ours(theta, x):
    w1, b1, w2, b2 = _unpack(theta)
    h = ag.avg_pool2d(ag.conv2d(x, w1, b1, padding=1).tanh(), 2)
    h = ag.max_pool2d(ag.conv2d(h, w2, b2).tanh(), 2)
    return (h * h).sum()


def loss_torch(theta, x):
    w1, b1, w2, b2 = _unpack(theta)
    h = tF.avg_pool2d(torch.tanh(tF.conv2d(x, w1, b1, padding=1)), 2)
    h = tF.max_pool2d(torch.tanh(tF.conv2d(h, w2, b2)), 2)
    return (h * h).sum()


@pytest.fixture
def net():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(sum(int(np.prod(s)) for s in SIZES))
    x = rng.standard_normal((2, 1, 6, 6))
    return theta, x


def test_hessian_of_a_conv_net_matches_torch(net):
    theta, x = net
    ours = ag.hessian(loss_ours)(theta, x)
    theirs = torch.autograd.functional.hessian(
        lambda t: loss_torch(t, torch.from_numpy(x)), torch.from_numpy(theta))
    assert ours.shape == (theta.size, theta.size)
    assert np.abs(theirs.numpy()).max() > 1e-2  # curvature to compare, not zeros
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), **TOL)


def test_hvp_of_a_conv_net_matches_torch_for_parameters_and_image(net):
    theta, x = net
    rng = np.random.default_rng(1)
    v = (rng.standard_normal(theta.shape), rng.standard_normal(x.shape))
    value, (hv_theta, hv_x) = ag.hvp(loss_ours, (theta, x), v)
    tvalue, (thv_theta, thv_x) = torch.autograd.functional.hvp(
        loss_torch, (torch.from_numpy(theta), torch.from_numpy(x)),
        tuple(torch.from_numpy(a) for a in v))
    np.testing.assert_allclose(np.asarray(value), tvalue.numpy(), **TOL)
    np.testing.assert_allclose(np.asarray(hv_theta), thv_theta.numpy(), **TOL)
    np.testing.assert_allclose(np.asarray(hv_x), thv_x.numpy(), **TOL)


# ------------------------------------------------------------------ third derivatives
# fn(x, w, v) = Σ c_x · dL/dx + Σ c_w · dL/dw for L = Σ v · op(x, w): gradgradcheck
# differentiates its gradient, so the backward of every op the first backward recorded
# runs on Tensors.

def _ops_in(*tensors) -> set:
    """The names of the ops in the graphs of ``tensors``."""
    names, todo = set(), [t.grad_fn for t in tensors if t.grad_fn is not None]
    while todo:
        ctx = todo.pop()
        names.add(type(ctx).__name__)
        todo += [p.grad_fn for p in ctx.parents
                 if isinstance(p, ag.Tensor) and p.grad_fn is not None]
    return names


CONVS = [
    pytest.param(ag.conv2d, (2, 4, 7, 6), (6, 2, 3, 2),
                 dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2), id="conv2d"),
    pytest.param(ag.conv1d, (4, 9), (2, 4, 3), dict(stride=2, dilation=2), id="conv1d-unbatched"),
]


@pytest.mark.parametrize("conv,x_shape,w_shape,options", CONVS)
def test_third_derivatives_of_a_convolution(conv, x_shape, w_shape, options):
    rng = np.random.default_rng(2)
    x = ag.Tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = ag.Tensor(rng.standard_normal(w_shape), requires_grad=True)
    v = ag.Tensor(rng.standard_normal(conv(x, w, **options).shape), requires_grad=True)
    c_x, c_w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)

    def fn(x, w, v):
        with ag.enable_grad():  # gradgradcheck calls it once without grad mode
            gx, gw = graph_backward(conv(x, w, **options), v, inputs=[x, w])
            assert {"ConvInputGrad", "ConvWeightGrad"} <= _ops_in(gx, gw)
            return (gx * c_x).sum() + (gw * c_w).sum()

    assert ag.gradgradcheck(fn, [x, w, v])


def test_third_derivatives_of_average_pooling():
    rng = np.random.default_rng(3)
    x = ag.Tensor(rng.standard_normal((2, 3, 7, 6)), requires_grad=True)
    options = dict(kernel_size=3, stride=2, padding=1)
    v = ag.Tensor(rng.standard_normal(ag.avg_pool2d(x, **options).shape), requires_grad=True)
    c = rng.standard_normal(x.shape)

    def fn(x, v):
        with ag.enable_grad():
            (gx,) = graph_backward(ag.avg_pool2d(x * x, **options), v, inputs=[x])
            assert "AvgUnpool2d" in _ops_in(gx)
            return (gx * gx * c).sum()

    assert ag.gradgradcheck(fn, [x, v])


def test_the_gradient_ops_of_a_convolution_are_adjoint_to_it():
    """<conv(x, W), G> = <x, conv_input_grad(G, W)> = <W, conv_weight_grad(x, G)>: the
    identity that makes each one's backward the others."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 4, 8, 7)), rng.standard_normal((6, 2, 3, 3))
    conf = dict(stride=(2, 2), padding=(1, 0), dilation=(1, 2), groups=2)
    y = ag.conv2d(ag.Tensor(x), ag.Tensor(w), **conf).numpy()
    g = rng.standard_normal(y.shape)
    gx = ops.ConvInputGrad.apply(g, w, input_shape=x.shape, **conf).numpy()
    gw = ops.ConvWeightGrad.apply(x, g, weight_shape=w.shape, **conf).numpy()
    assert np.isclose((y * g).sum(), (x * gx).sum(), rtol=1e-12)
    assert np.isclose((y * g).sum(), (w * gw).sum(), rtol=1e-12)
