"""Convolutions: ``ag.conv1d`` / ``ag.conv2d`` and the ``nn.Conv1d`` / ``nn.Conv2d``
layers against torch in float64 (values and gradients to 1e-10), with torch's
state_dict loaded into ours; the init's bounds; the errors for shapes that do not fit.
(The ops' gradcheck, torch and fuzzer coverage come from their rows in opinfo.py.)"""

import math

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F
from autograd import ops

torch = pytest.importorskip("torch")

rng = np.random.default_rng(23)
TOL = dict(rtol=1e-10, atol=1e-10)

LAYERS = [
    (nn.Conv2d, torch.nn.Conv2d, (2, 4, 7, 6), dict(in_channels=4, out_channels=6,
                                                   kernel_size=3)),
    (nn.Conv2d, torch.nn.Conv2d, (2, 4, 7, 6), dict(in_channels=4, out_channels=6,
                                                   kernel_size=(3, 2), stride=(2, 1),
                                                   padding=(1, 2), dilation=(2, 1),
                                                   groups=2)),
    (nn.Conv2d, torch.nn.Conv2d, (3, 5, 5), dict(in_channels=3, out_channels=3,
                                                kernel_size=2, groups=3, bias=False)),
    (nn.Conv1d, torch.nn.Conv1d, (2, 4, 9), dict(in_channels=4, out_channels=2,
                                                kernel_size=3, stride=2, padding=1,
                                                dilation=2, groups=2)),
    (nn.Conv1d, torch.nn.Conv1d, (3, 8), dict(in_channels=3, out_channels=5,
                                             kernel_size=4, bias=False)),
]


@pytest.mark.parametrize("ours_cls,torch_cls,shape,kw", LAYERS)
def test_layer_matches_torch(ours_cls, torch_cls, shape, kw):
    ref = torch_cls(**kw).double()
    ours = ours_cls(**kw)
    a = {k: tuple(np.shape(v)) for k, v in ours.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert a == b
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = rng.standard_normal(shape)
    xo, xt = ag.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, want = ours(xo), ref(xt)
    assert out.shape == tuple(want.shape)
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), **TOL)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    want.backward(torch.tensor(g))
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), **TOL)
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, theirs[name].grad.numpy(), **TOL)


def test_init_bounds_and_repr():
    m = nn.Conv2d(4, 6, (3, 2), groups=2, rng=0)
    bound = 1 / math.sqrt(2 * 3 * 2)  # fan_in = in_channels / groups * kh * kw
    for p in (m.weight, m.bias):
        assert np.abs(p.numpy()).max() <= bound
        assert np.abs(p.numpy()).max() > 0.7 * bound  # spread over the whole range
    assert m.weight.shape == (6, 2, 3, 2) and m.bias.shape == (6,)
    assert m.weight.dtype == np.float64
    assert "kernel_size=(3, 2)" in repr(m) and "groups=2" in repr(m)
    m1 = nn.Conv1d(3, 2, 5, bias=False)
    assert m1.weight.shape == (2, 3, 5) and m1.bias is None
    assert "bias=False" in repr(m1)
    assert nn.Conv2d(2, 2, 3, dtype=np.float32).weight.dtype == np.float32


def test_float32_stays_float32():
    x = ag.Tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32), requires_grad=True)
    m = nn.Conv2d(3, 4, 3, padding=1, dtype=np.float32)
    y = m(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and m.weight.grad.dtype == np.float32
    x1 = ag.Tensor(rng.standard_normal((2, 3, 6)).astype(np.float32))
    assert nn.Conv1d(3, 2, 2, dtype=np.float32)(x1).dtype == np.float32


@pytest.mark.parametrize("fn,op,shape,wshape", [
    (F.conv1d, ops.Conv1d, (2, 3, 6), (4, 3, 2)),
    (F.conv2d, ops.Conv2d, (2, 3, 5, 5), (4, 3, 2, 2)),
])
def test_one_graph_node(fn, op, shape, wshape):
    x = ag.Tensor(rng.standard_normal(shape), requires_grad=True)
    w = ag.Tensor(rng.standard_normal(wshape), requires_grad=True)
    y = fn(x, w)
    assert type(y.grad_fn) is op
    nodes = [type(t.grad_fn) for t in ag.topological_order(y) if t.grad_fn is not None]
    assert nodes == [op]


def test_errors_name_the_op_and_shapes():
    x = ag.Tensor(rng.standard_normal((2, 3, 5, 5)))
    with pytest.raises(ag.ShapeError, match=r"conv2d.*\(2, 3, 5, 5\).*3 channels.*"
                                            r"\(4, 2, 3, 3\)"):
        F.conv2d(x, ag.Tensor(np.zeros((4, 2, 3, 3))))
    with pytest.raises(ag.ShapeError, match=r"conv2d: kernel \(6, 1\).*larger than the "
                                            r"padded input.*\(2, 3, 5, 5\)"):
        F.conv2d(x, ag.Tensor(np.zeros((4, 3, 6, 1))))
    # with padding it fits, as in torch
    assert F.conv2d(x, ag.Tensor(np.zeros((4, 3, 6, 1))), padding=1).shape == (2, 4, 2, 7)
    with pytest.raises(ag.ShapeError, match=r"conv2d: kernel.*dilation"):
        F.conv2d(x, ag.Tensor(np.zeros((4, 3, 3, 3))), dilation=3)
    with pytest.raises(ag.ShapeError, match=r"conv2d: groups=2 does not divide the "
                                            r"input's 3 channels"):
        F.conv2d(x, ag.Tensor(np.zeros((4, 1, 3, 3))), groups=2)
    with pytest.raises(ag.ShapeError, match=r"conv1d: groups=2 does not divide "
                                            r"out_channels=3"):
        F.conv1d(ag.Tensor(np.zeros((1, 4, 5))), ag.Tensor(np.zeros((3, 2, 3))), groups=2)
    with pytest.raises(ag.ShapeError, match=r"conv1d: input of shape \(5,\)"):
        F.conv1d(ag.Tensor(np.zeros(5)), ag.Tensor(np.zeros((3, 1, 3))))
    with pytest.raises(ag.ShapeError, match=r"conv2d: bias of shape \(3,\)"):
        F.conv2d(x, ag.Tensor(np.zeros((4, 3, 2, 2))), ag.Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match=r"conv2d: stride must be at least 1"):
        F.conv2d(x, ag.Tensor(np.zeros((4, 3, 2, 2))), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: padding must be an int or 2 ints"):
        F.conv2d(x, ag.Tensor(np.zeros((4, 3, 2, 2))), padding=(1, 1, 1))
    with pytest.raises(ValueError, match=r"Conv2d: groups=2 must divide in_channels=3"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ag.ShapeError, match=r"conv2d.*3 channels"):
        nn.Conv2d(4, 2, 3)(x)


@pytest.mark.parametrize("kw", [dict(weight=(4, 2, 3, 3)), dict(weight=(4, 3, 6, 1)),
                                dict(weight=(4, 1, 3, 3), groups=2)])
def test_torch_raises_too(kw):
    """The shapes rejected above are rejected by torch as well."""
    x = torch.zeros((2, 3, 5, 5), dtype=torch.float64)
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv2d(x, torch.zeros(kw["weight"], dtype=torch.float64),
                                   groups=kw.get("groups", 1))


# --------------------------------------------------------- fast paths agree with torch


@pytest.mark.parametrize("conv,tconv,xshape,wshape,kw", [
    (ag.conv2d, "conv2d", (2, 3, 6, 7), (4, 3, 3, 2), dict(padding=1)),
    (ag.conv2d, "conv2d", (2, 4, 6, 6), (4, 2, 2, 3), dict(dilation=(2, 1), groups=2)),
    (ag.conv1d, "conv1d", (2, 3, 8), (2, 3, 3), dict(padding=2, dilation=2)),
])
@pytest.mark.parametrize("where", ["input", "weight"])
def test_an_infinite_value_gives_the_gradients_torch_gives(conv, tconv, xshape, wshape, kw,
                                                           where):
    # stride 1 adds each kernel tap's share of dL/dx as one block over the input's
    # grid, with zeros where no window sits: those zeros must never meet an inf
    x, w = rng.standard_normal(xshape), rng.standard_normal(wshape)
    (x if where == "input" else w).flat[[1, 7]] = np.inf, -np.inf
    g = rng.standard_normal(getattr(torch.nn.functional, tconv)(
        torch.tensor(x), torch.tensor(w), **kw).shape)
    xt, wt = ag.Tensor(x, requires_grad=True), ag.Tensor(w, requires_grad=True)
    with np.errstate(invalid="ignore"):
        conv(xt, wt, **kw).backward(g)
    xr = torch.tensor(x, requires_grad=True)
    wr = torch.tensor(w, requires_grad=True)
    getattr(torch.nn.functional, tconv)(xr, wr, **kw).backward(torch.tensor(g))
    np.testing.assert_allclose(xt.grad, xr.grad.numpy(), **TOL)
    np.testing.assert_allclose(wt.grad, wr.grad.numpy(), **TOL)


# ------------------------------------------------------ padding="same" and "valid"


@pytest.mark.parametrize("conv,tconv,xshape,wshape,kw", [
    (ag.conv2d, "conv2d", (2, 3, 6, 7), (4, 3, 3, 3), dict()),
    (ag.conv2d, "conv2d", (2, 3, 6, 7), (4, 3, 2, 4), dict()),  # even: one more after
    (ag.conv2d, "conv2d", (1, 4, 7, 5), (2, 2, 3, 2), dict(dilation=(2, 3), groups=2)),
    (ag.conv2d, "conv2d", (3, 5, 5), (2, 3, 4, 1), dict()),  # unbatched
    (ag.conv1d, "conv1d", (2, 3, 8), (2, 3, 4), dict(dilation=2)),
    (ag.conv1d, "conv1d", (2, 3, 8), (2, 3, 5), dict()),
])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note on its own copy
def test_padding_same_and_valid_match_torch(conv, tconv, xshape, wshape, kw, padding):
    x, w, b = (rng.standard_normal(s) for s in (xshape, wshape, (wshape[0],)))
    ours = [ag.Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = conv(*ours, padding=padding, **kw)
    want = getattr(torch.nn.functional, tconv)(*theirs, padding=padding, **kw)
    assert out.shape == tuple(want.shape)
    if padding == "same":
        assert out.shape[-(len(wshape) - 2):] == xshape[-(len(wshape) - 2):]
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), **TOL)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    want.backward(torch.tensor(g))
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad, t.grad.numpy(), **TOL)


def test_padding_same_layer_matches_torch():
    ref = torch.nn.Conv2d(3, 4, (2, 3), padding="same", dilation=2).double()
    ours = nn.Conv2d(3, 4, (2, 3), padding="same", dilation=2)
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = rng.standard_normal((2, 3, 6, 5))
    np.testing.assert_allclose(ours(ag.Tensor(x)).numpy(),
                               ref(torch.tensor(x)).detach().numpy(), **TOL)
    assert "padding=same" in repr(ours)


def test_padding_strings_are_refused_where_torch_refuses_them():
    x = ag.Tensor(np.zeros((1, 2, 5, 5)))
    w = ag.Tensor(np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="conv2d: padding='same' is not supported for "
                                         "strided convolutions"):
        ag.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="Conv2d: padding='same' is not supported for "
                                         "strided convolutions"):
        nn.Conv2d(2, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"conv2d: padding='full' is not one of 'same', "
                                         r"'valid'"):
        ag.conv2d(x, w, padding="full")
    for call in (lambda: torch.nn.functional.conv2d(torch.zeros(1, 2, 5, 5),
                                                    torch.zeros(3, 2, 3, 3), stride=2,
                                                    padding="same"),
                 lambda: torch.nn.Conv2d(2, 3, 3, stride=2, padding="same"),
                 lambda: torch.nn.functional.conv2d(torch.zeros(1, 2, 5, 5),
                                                    torch.zeros(3, 2, 3, 3),
                                                    padding="full")):
        with pytest.raises((RuntimeError, ValueError)):
            call()
