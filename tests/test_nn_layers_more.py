"""Flatten, LayerNorm, Embedding, GELU / SiLU / ELU / Softplus / LogSoftmax, label
smoothing and KL divergence against torch in float64 (values and gradients to 1e-10),
with state_dict keys and shapes compared with torch's modules."""

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

rng = np.random.default_rng(11)
TOL = dict(rtol=1e-10, atol=1e-10)


def compare(fn_ours, fn_torch, *inputs, grad=True):
    """Forward both on the same float inputs (those that are float get gradients) and a
    random upstream gradient; compare values and every input's gradient."""
    ours = [ag.Tensor(x, requires_grad=True) for x in inputs]
    refs = [torch.tensor(x, requires_grad=True) for x in inputs]
    out, ref = fn_ours(*ours), fn_torch(*refs)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **TOL)
    assert out.shape == tuple(ref.shape)
    if grad:
        g = rng.standard_normal(out.shape)
        out.backward(g)
        ref.backward(torch.tensor(g))
        for a, b in zip(ours, refs):
            np.testing.assert_allclose(a.grad, b.grad.numpy(), **TOL)
    return out


X = rng.standard_normal((4, 6)) * 3
EDGES = np.array([0.0, -0.0, 1e-9, -1e-9, 30.0, -30.0, 800.0, -800.0, 19.999, 20.0,
                  20.001, -1.0, 1.0])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    compare(nn.GELU(approximate), torch.nn.GELU(approximate), X)
    compare(lambda a: F.gelu(a, approximate=approximate),
            lambda a: TF.gelu(a, approximate=approximate), EDGES[np.abs(EDGES) < 100])
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


def test_silu_elu():
    compare(nn.SiLU(), torch.nn.SiLU(), X)
    compare(F.silu, TF.silu, EDGES[np.abs(EDGES) < 100])
    for alpha in (1.0, 0.5, 2.0):
        compare(nn.ELU(alpha), torch.nn.ELU(alpha), X)
        compare(lambda a, al=alpha: F.elu(a, al), lambda a, al=alpha: TF.elu(a, al), EDGES)


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 5.0)])
def test_softplus(beta, threshold):
    compare(nn.Softplus(beta, threshold), torch.nn.Softplus(beta, threshold), X)
    compare(lambda a: F.softplus(a, beta, threshold),
            lambda a: TF.softplus(a, beta, threshold), EDGES)


def test_log_softmax_dim():
    compare(nn.LogSoftmax(dim=0), torch.nn.LogSoftmax(dim=0), X)
    compare(nn.LogSoftmax(1), torch.nn.LogSoftmax(1), X)
    compare(nn.Softmax(dim=0), torch.nn.Softmax(dim=0), X)
    compare(lambda a: F.log_softmax(a, dim=0), lambda a: TF.log_softmax(a, dim=0), X)


def test_float32_stays_float32():
    x = ag.Tensor(X.astype(np.float32))
    for m in (nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.ELU(), nn.Softplus(2.0),
              nn.LayerNorm(6, dtype=np.float32)):
        assert m(x).dtype == np.float32, m


@pytest.mark.parametrize("start,end,shape", [(1, -1, (2, 3, 4, 5)), (0, -1, (2, 3, 4)),
                                             (1, 2, (2, 3, 4, 5)), (-2, -1, (2, 3, 4)),
                                             (2, 2, (2, 3, 4))])
def test_flatten(start, end, shape):
    x = rng.standard_normal(shape)
    compare(nn.Flatten(start, end), torch.nn.Flatten(start, end), x)
    assert nn.Flatten()(ag.Tensor(x)).shape == (shape[0], int(np.prod(shape[1:])))


def state_keys(ours, ref):
    a = {k: tuple(np.shape(v)) for k, v in ours.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert list(a) == list(b) and a == b


def load_torch(ours, ref):
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})


@pytest.mark.parametrize("shape,normalized", [((4, 6), 6), ((2, 3, 4, 5), (4, 5)),
                                              ((3, 5), [5])])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(shape, normalized, affine):
    ours = nn.LayerNorm(normalized, eps=1e-3, elementwise_affine=affine)
    ref = torch.nn.LayerNorm(normalized, eps=1e-3, elementwise_affine=affine,
                             dtype=torch.float64)
    state_keys(ours, ref)
    if affine:
        with torch.no_grad():
            ref.weight.copy_(torch.tensor(rng.standard_normal(ref.weight.shape)))
            ref.bias.copy_(torch.tensor(rng.standard_normal(ref.bias.shape)))
        load_torch(ours, ref)
    x = rng.standard_normal(shape) * 2 + 1
    compare(ours, ref, x)
    if affine:
        for p, q in zip(ours.parameters(), ref.parameters()):
            np.testing.assert_allclose(p.grad, q.grad.numpy(), **TOL)
    compare(lambda a: F.layer_norm(a, normalized),
            lambda a: TF.layer_norm(a, [normalized] if isinstance(normalized, int)
                                    else normalized), x)


def test_layer_norm_shape_error():
    with pytest.raises(ag.ShapeError, match="normalized_shape"):
        nn.LayerNorm(5)(ag.Tensor(np.zeros((2, 4))))


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding(padding_idx):
    ours = nn.Embedding(7, 3, padding_idx=padding_idx)
    ref = torch.nn.Embedding(7, 3, padding_idx=padding_idx, dtype=torch.float64)
    state_keys(ours, ref)
    assert ours.weight.shape == (7, 3)
    if padding_idx is not None:
        assert not ours.weight.numpy()[padding_idx].any()
    with torch.no_grad():  # a non-zero padding row too: looked up as it is
        ref.weight.copy_(torch.tensor(rng.standard_normal((7, 3))))
    load_torch(ours, ref)
    idx = np.array([[0, 2, 2, 6], [2, 1, 0, 6], [5, 5, 5, 2]])
    out = ours(idx)
    r = ref(torch.as_tensor(idx))
    np.testing.assert_allclose(out.numpy(), r.detach().numpy(), **TOL)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    r.backward(torch.tensor(g))
    # repeated indices add up, the padding row gets nothing
    np.testing.assert_allclose(ours.weight.grad, ref.weight.grad.numpy(), **TOL)
    if padding_idx is not None:
        assert not ours.weight.grad[padding_idx].any()
    # one index, and the functional form
    assert ours(np.array(4)).shape == (3,)
    np.testing.assert_allclose(F.embedding(idx, ours.weight).numpy(),
                               TF.embedding(torch.as_tensor(idx), ref.weight).detach(),
                               **TOL)


def test_embedding_errors():
    emb = nn.Embedding(4, 2)
    with pytest.raises(IndexError, match="index 4 is out of range"):
        emb(np.array([0, 4]))
    with pytest.raises(TypeError, match="integers"):
        emb(np.array([0.0, 1.0]))


def test_embedding_in_a_model_loads_torch_weights():
    ours = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 5), nn.GELU(),
                         nn.LayerNorm(5), nn.Linear(5, 3))
    ref = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Flatten(),
                              torch.nn.Linear(12, 5), torch.nn.GELU(), torch.nn.LayerNorm(5),
                              torch.nn.Linear(5, 3)).double()
    state_keys(ours, ref)
    load_torch(ours, ref)
    idx = rng.integers(0, 10, (8, 3))
    y = rng.integers(0, 3, 8)
    loss = F.cross_entropy(ours(idx), y, label_smoothing=0.1)
    rloss = TF.cross_entropy(ref(torch.as_tensor(idx)), torch.as_tensor(y),
                             label_smoothing=0.1)
    np.testing.assert_allclose(loss.item(), rloss.item(), **TOL)
    loss.backward()
    rloss.backward()
    for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), err_msg=name, **TOL)


# ----------------------------------------------------------------------- losses


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_cross_entropy_label_smoothing(reduction, eps):
    z = rng.standard_normal((5, 4)) * 2
    c = np.array([0, 3, 1, 1, 2])
    compare(lambda a: F.cross_entropy(a, c, reduction=reduction, label_smoothing=eps),
            lambda a: TF.cross_entropy(a, torch.as_tensor(c), reduction=reduction,
                                       label_smoothing=eps), z)
    p = rng.dirichlet(np.ones(4), 5)
    compare(lambda a: F.cross_entropy(a, p, reduction=reduction, label_smoothing=eps),
            lambda a: TF.cross_entropy(a, torch.tensor(p), reduction=reduction,
                                       label_smoothing=eps), z)
    compare(lambda a: nn.CrossEntropyLoss(reduction=reduction, label_smoothing=eps)(a, c),
            lambda a: torch.nn.CrossEntropyLoss(reduction=reduction,
                                                label_smoothing=eps)(a, torch.as_tensor(c)),
            z)
    # one unbatched sample
    compare(lambda a: F.cross_entropy(a, np.array(2), reduction=reduction,
                                      label_smoothing=eps),
            lambda a: TF.cross_entropy(a, torch.tensor(2), reduction=reduction,
                                       label_smoothing=eps), z[0])


def test_label_smoothing_out_of_range():
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(ag.Tensor(np.zeros((2, 3))), np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=-0.1)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    logq = TF.log_softmax(torch.tensor(rng.standard_normal((4, 5))), 1).numpy()
    p = rng.dirichlet(np.ones(5), 4)
    p[0, 1] = 0.0  # 0·log 0 = 0
    t = np.log(np.where(p > 0, p, np.exp(-50.0))) if log_target else p
    compare(lambda a: F.kl_div(a, t, reduction=reduction, log_target=log_target),
            lambda a: TF.kl_div(a, torch.tensor(t), reduction=reduction,
                                log_target=log_target), logq)
    compare(lambda a: nn.KLDivLoss(reduction=reduction, log_target=log_target)(a, t),
            lambda a: torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)(
                a, torch.tensor(t)), logq)
    # a target that needs its gradient too (positive entries)
    tp = np.log(rng.dirichlet(np.ones(5), 4)) if log_target else rng.dirichlet(np.ones(5), 4)
    compare(lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
            lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target),
            logq, tp)


def test_kl_div_bad_reduction():
    with pytest.raises(ValueError, match="batchmean"):
        F.kl_div(ag.Tensor(np.zeros(3)), np.ones(3), reduction="avg")
    with pytest.raises(ValueError, match="batchmean"):
        nn.KLDivLoss(reduction="avg")


# ------------------------------------ leaky_relu, elu and softplus: one op each, at the edges

EDGE_POINTS = np.concatenate([EDGES, [np.inf, -np.inf, np.nan, 0.5, 10.0, 40.0, -1e-300]])
ONE_OPS = {
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1), lambda a: TF.leaky_relu(a, 0.1)),
    "leaky_relu slope 0": (lambda a: F.leaky_relu(a, 0.0), lambda a: TF.leaky_relu(a, 0.0)),
    "elu": (F.elu, TF.elu),
    "elu alpha 2": (lambda a: F.elu(a, 2.0), lambda a: TF.elu(a, 2.0)),
    "softplus": (F.softplus, TF.softplus),
    "softplus beta 2": (lambda a: F.softplus(a, 2.0), lambda a: TF.softplus(a, 2.0)),
    "softplus beta 0.5 threshold 5": (lambda a: F.softplus(a, 0.5, 5.0),
                                      lambda a: TF.softplus(a, 0.5, 5.0)),
}


@pytest.mark.filterwarnings("ignore:invalid value")
@pytest.mark.parametrize("name", ONE_OPS)
def test_activation_edges_up_to_second_derivatives(name):
    """At 0 and -0, ±inf, NaN, a threshold itself and large |x|: values (zeros with their
    sign), first derivatives for an upstream gradient of 1, ±inf and a random one, and
    second derivatives (ELU's is 0 at exactly 0, softplus's at the threshold) as PyTorch
    float64 gives them; the op is one node."""
    ours, theirs = ONE_OPS[name]
    x = ag.Tensor(EDGE_POINTS, requires_grad=True)
    tx = torch.tensor(EDGE_POINTS, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    assert len(y.grad_fn.parents) == 1 and y.grad_fn.parents[0] is x  # one op
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **TOL)
    zeros = y.numpy() == 0
    np.testing.assert_array_equal(np.signbit(y.numpy()[zeros]),
                                  np.signbit(ty.detach().numpy()[zeros]))
    for v in (np.ones(x.shape), np.full(x.shape, np.inf), np.full(x.shape, -np.inf),
              rng.standard_normal(x.shape)):
        (g,) = ag.engine.graph_backward(y, ag.Tensor(v), inputs=[x], create_graph=False)
        (tg,) = torch.autograd.grad(ty, tx, torch.tensor(v), retain_graph=True)
        np.testing.assert_allclose(g.numpy(), tg.numpy(), **TOL, err_msg=f"upstream {v[0]}")
    v_np, w = rng.standard_normal(x.shape), rng.standard_normal(x.shape)
    v, tv = ag.Tensor(v_np, requires_grad=True), torch.tensor(v_np, requires_grad=True)
    (g,) = ag.engine.graph_backward(y, v, inputs=[x])
    (tg,) = torch.autograd.grad(ty, tx, tv, create_graph=True)
    second = ag.engine.graph_backward((g * w).sum(), inputs=[x, v], create_graph=False)
    tsecond = torch.autograd.grad((tg * torch.tensor(w)).sum(), [tx, tv], allow_unused=True)
    for what, a, b in zip(("x", "the upstream gradient"), second, tsecond):
        a = np.zeros(x.shape) if a is None else a.numpy()
        b = np.zeros(x.shape) if b is None else b.numpy()
        np.testing.assert_allclose(a, b, **TOL, err_msg=f"second derivative in {what}")
