"""MaxPool2d, AvgPool2d, BatchNorm1d and BatchNorm2d against torch.nn in float64:
outputs, gradients of the input and the weights, running statistics after several
training steps, eval outputs, and state_dict keys, shapes and loading from torch."""

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F

torch = pytest.importorskip("torch")

TOL = dict(rtol=1e-10, atol=1e-10)


def _pair(ours, theirs):
    """torch's initial weights (and buffers) copied into ours, so they start equal."""
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _step(ours, theirs, x, g):
    """One forward/backward of both on ``x`` with upstream gradient ``g``; outputs and
    gradients (input, weight, bias) compared."""
    a, t = ag.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = ours(a), theirs(t)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **TOL)
    out.backward(g)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad, t.grad.numpy(), **TOL)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad, p.grad.numpy(), **TOL)
    return out


def _same_state(ours, theirs):
    ref = theirs.state_dict()
    mine = ours.state_dict()
    assert list(mine) == list(ref)
    for k, v in ref.items():
        assert np.shape(mine[k]) == tuple(v.shape), k
        np.testing.assert_allclose(np.asarray(mine[k], dtype=np.float64),
                                   v.double().numpy(), **TOL)


CASES = [
    (lambda **kw: nn.BatchNorm1d(3, **kw), lambda **kw: torch.nn.BatchNorm1d(3, **kw), (8, 3)),
    (lambda **kw: nn.BatchNorm1d(3, **kw), lambda **kw: torch.nn.BatchNorm1d(3, **kw),
     (5, 3, 4)),
    (lambda **kw: nn.BatchNorm2d(3, **kw), lambda **kw: torch.nn.BatchNorm2d(3, **kw),
     (4, 3, 2, 5)),
]
OPTIONS = [{}, {"momentum": 0.3, "eps": 1e-3}, {"momentum": None}, {"affine": False}]


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("make_ours, make_theirs, shape", CASES,
                         ids=["bn1d-NC", "bn1d-NCL", "bn2d"])
def test_batch_norm_matches_torch_in_training_and_eval(make_ours, make_theirs, shape,
                                                        options):
    rng = np.random.default_rng(3)
    ours = make_ours(**options)
    theirs = make_theirs(**options).double()
    if theirs.affine:  # weights away from their initial ones and bias
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(rng.uniform(0.5, 2, 3)))
            theirs.bias.copy_(torch.tensor(rng.standard_normal(3)))
    _pair(ours, theirs)
    _same_state(ours, theirs)
    for _ in range(4):  # training: batch statistics, running ones updated
        x = 2 * rng.standard_normal(shape) + rng.standard_normal(3).reshape(
            (1, 3) + (1,) * (len(shape) - 2))
        _step(ours, theirs, x, rng.standard_normal(shape))
        theirs.zero_grad()
        ours.zero_grad()
    _same_state(ours, theirs)
    assert int(ours.num_batches_tracked.item()) == 4
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape)
    _step(ours, theirs, x, rng.standard_normal(shape))  # eval: running statistics
    _same_state(ours, theirs)  # unchanged by eval


def test_batch_norm_without_running_stats_uses_the_batch_in_eval():
    ours = nn.BatchNorm2d(2, track_running_stats=False)
    theirs = torch.nn.BatchNorm2d(2, track_running_stats=False).double()
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(0).standard_normal((3, 2, 2, 2))
    _step(ours, theirs, x, np.ones(x.shape))


def test_torch_state_dict_loads_into_a_conv_free_net_with_equal_outputs():
    def build(lib):
        return lib.Sequential(lib.BatchNorm2d(2), lib.MaxPool2d(2), lib.AvgPool2d(2, 1),
                              lib.Flatten(), lib.Linear(2 * 2 * 2, 4), lib.BatchNorm1d(4))

    torch.manual_seed(0)
    theirs = build(torch.nn).double()
    rng = np.random.default_rng(5)
    for _ in range(3):  # move torch's running statistics away from 0 and 1
        theirs(torch.tensor(rng.standard_normal((6, 2, 6, 6)) + 1.5))
    ours = build(nn)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    _same_state(ours, theirs)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        x = rng.standard_normal((5, 2, 6, 6))
        a, t = ag.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = ours(a), theirs(t)
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **TOL)
        g = rng.standard_normal(out.shape)
        out.backward(g)
        ref.backward(torch.tensor(g))
        np.testing.assert_allclose(a.grad, t.grad.numpy(), **TOL)
        np.testing.assert_allclose(ours[4].weight.grad, theirs[4].weight.grad.numpy(), **TOL)
        _same_state(ours, theirs)
        ours.zero_grad()
        theirs.zero_grad()


def test_batch_norm_buffers_are_not_parameters_and_keep_float32():
    bn = nn.BatchNorm1d(3, dtype=np.float32)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == [
        "running_mean", "running_var", "num_batches_tracked"]
    out = bn(ag.Tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)))
    assert out.dtype == np.float32
    assert bn.running_mean.dtype == np.float32
    assert bn.num_batches_tracked.dtype == np.int64


@pytest.mark.parametrize("bad, shape, match", [
    (nn.BatchNorm1d(3), (2, 4), "channels"),
    (nn.BatchNorm1d(3), (2, 3, 4, 5), "2-D or 3-D"),
    (nn.BatchNorm2d(3), (2, 3, 4), "4-D"),
    (nn.BatchNorm1d(3), (1, 3), "more than 1 value"),
])
def test_batch_norm_rejects_what_torch_rejects(bad, shape, match):
    with pytest.raises((ValueError, ag.ShapeError), match=match):
        bad(ag.Tensor(np.ones(shape)))


@pytest.mark.parametrize("layer, ref", [
    (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
    (nn.MaxPool2d((3, 2), stride=(1, 2), padding=1), torch.nn.MaxPool2d((3, 2), (1, 2), 1)),
    (nn.AvgPool2d(3, stride=2, padding=1), torch.nn.AvgPool2d(3, stride=2, padding=1)),
    (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
])
def test_pool_layers_match_torch(layer, ref):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6))
    out = _step(layer, ref, x, rng.standard_normal(ref(torch.tensor(x)).shape))
    assert layer.state_dict() == {} and not ref.state_dict()
    assert out.shape == tuple(ref(torch.tensor(x)).shape)


def test_max_pool_ties_go_to_the_first_and_padding_never_wins():
    x = np.zeros((1, 1, 3, 3))
    a, t = ag.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.max_pool2d(a, 2, 1).sum().backward()
    torch.nn.functional.max_pool2d(t, 2, 1).sum().backward()
    np.testing.assert_array_equal(a.grad, t.grad.numpy())
    x = np.full((1, 1, 2, 2), -np.inf)
    a, t = ag.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.max_pool2d(a, 2, 1, 1).sum().backward()
    torch.nn.functional.max_pool2d(t, 2, 1, 1).sum().backward()
    np.testing.assert_array_equal(a.grad, t.grad.numpy())


def test_max_pool_nan_wins_its_window_as_in_torch():
    x = np.array([[[[1.0, np.nan, 0.0], [np.nan, 2.0, np.nan], [3.0, 4.0, 5.0]]]])
    a, t = ag.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = ag.max_pool2d(a, 2, 1, 1), torch.nn.functional.max_pool2d(t, 2, 1, 1)
    np.testing.assert_array_equal(out.numpy(), ref.detach().numpy())
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_array_equal(a.grad, t.grad.numpy())


def test_max_pool_zero_grad_where_not_picked_even_for_infinite_upstream():
    a = ag.Tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    out = ag.max_pool2d(a, 2)
    out.backward(np.full(out.shape, np.inf))
    assert np.isnan(a.grad).sum() == 0
    assert (a.grad == np.inf).sum() == 4 and (a.grad == 0).sum() == 12


def test_float32_pooling_stays_float32():
    for fn in (ag.max_pool2d, ag.avg_pool2d):
        x = ag.Tensor(np.ones((1, 2, 4, 4), dtype=np.float32), requires_grad=True)
        out = fn(x, 2)
        assert out.dtype == np.float32
        out.sum().backward()
        assert x.grad.dtype == np.float32


@pytest.mark.parametrize("fn", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("shape, kw, match", [
    ((4, 4), {"kernel_size": 2}, "expected"),
    ((1, 1, 4, 4), {"kernel_size": 2, "padding": 2}, "at most half"),
    ((1, 1, 2, 2), {"kernel_size": 3}, "empty output"),
    ((1, 1, 4, 4), {"kernel_size": 0}, "positive"),
    ((1, 1, 4, 4), {"kernel_size": 2.5}, "int"),
])
def test_pool_errors_where_torch_raises(fn, shape, kw, match):
    with pytest.raises((ValueError, TypeError, ag.ShapeError), match=match):
        getattr(ag, fn)(ag.Tensor(np.ones(shape)), **kw)
    with pytest.raises((RuntimeError, ValueError, TypeError, IndexError)):
        getattr(torch.nn.functional, fn)(torch.ones(shape, dtype=torch.float64), **kw)


@pytest.mark.parametrize("given", ["neither", "mean only"])
def test_functional_batch_norm_in_eval_mode_needs_running_statistics(given):
    """PyTorch raises "running_mean must be defined in evaluation mode": without running
    statistics there is nothing to normalise with outside training."""
    x = np.random.default_rng(0).normal(size=(4, 3))
    mean = np.zeros(3) if given == "mean only" else None
    missing = "running_var" if given == "mean only" else "running_mean"
    with pytest.raises(ValueError, match=f"batch_norm: {missing} must be given in "
                                         "evaluation mode"):
        F.batch_norm(x, mean, None, training=False)
