"""Module registry, dotted names, modes, state dicts and their errors."""

import copy

import numpy as np
import pytest

import autograd as ag
import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.hidden(x).tanh())


def test_parameters_are_registered_with_dotted_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert [p.shape for p in net.parameters()] == [(4, 3), (4,), (2, 4), (2,)]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    # each parameter knows its own path
    assert net.hidden.weight.name == "hidden.weight"
    assert net.out.bias.name == "out.bias"


def test_parameter_is_renamed_when_its_module_moves_into_a_parent():
    lin = nn.Linear(2, 2)
    assert lin.weight.name == "weight"
    seq = nn.Sequential(nn.ReLU(), lin)
    assert lin.weight.name == "1.weight"

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = seq

    Outer()
    assert lin.weight.name == "layers.1.weight"
    mlp = nn.MLP([3, 4, 2])
    assert [n for n, _ in mlp.named_parameters()][0] == "layers.0.weight"
    assert mlp.layers[2].bias.name == "layers.2.bias"


def test_shared_parameter_is_listed_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 3)
            self.b.weight = self.a.weight  # tie the weights

    t = Tied()
    names = [n for n, _ in t.named_parameters()]
    assert names == ["a.weight", "a.bias", "b.bias"]
    assert len(list(t.parameters())) == 3
    # a shared sub-module is listed once too
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.Tanh(), lin)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 3  # seq, lin, tanh


def test_children_modules_and_modes():
    net = Net()
    assert [n for n, _ in net.named_children()] == ["hidden", "out"]
    assert [n for n, _ in net.named_modules()] == ["", "hidden", "out"]
    assert net.training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())


def test_unknown_attribute_raises_attribute_error():
    net = Net()
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'hiden'"):
        net.hiden  # noqa: B018
    assert not hasattr(net, "nothing")


def test_assigning_before_init_and_wrong_types_is_refused():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="is a parameter"):
        lin.weight = np.zeros((2, 2))
    lin.bias = None  # allowed: drops the bias
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    assert lin(ag.Tensor(np.ones((1, 2)))).shape == (1, 2)


def test_zero_grad_clears_every_gradient():
    net = Net()
    net(ag.Tensor(np.ones((5, 3)))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_forward_records_the_module_path_as_name_scope():
    mlp = nn.MLP([3, 4, 2], activation="tanh")
    out = mlp(ag.Tensor(np.ones((2, 3))))
    scopes = set()
    stack, seen = [out], set()
    while stack:
        t = stack.pop()
        if id(t) in seen or t.grad_fn is None:
            continue
        seen.add(id(t))
        scopes.add(t.grad_fn.scope)
        stack.extend(p for p in t.grad_fn.parents if isinstance(p, ag.Tensor))
    assert scopes == {"layers.0", "layers.1", "layers.2"}
    # a top-level module opens no scope of its own
    lin = nn.Linear(3, 2)
    assert lin(ag.Tensor(np.ones((1, 3)))).grad_fn.scope == ""
    with ag.name_scope("outer"):
        assert mlp(ag.Tensor(np.ones((1, 3)))).grad_fn.scope == "outer.layers.2"


def test_sequential_indexing_and_slicing_keeps_names():
    mlp = nn.MLP([3, 4, 4, 2])
    seq = mlp.layers
    assert len(seq) == 5
    assert isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.Linear)
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    assert seq[0].weight.name == "layers.0.weight"  # slicing did not rename
    x = ag.Tensor(np.ones((1, 3)))
    np.testing.assert_array_equal(head(x).data, seq[1](seq[0](x)).data)
    with pytest.raises(IndexError, match="out of range"):
        seq[7]
    with pytest.raises(TypeError, match="not an nn.Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_repr_in_pytorch_style():
    text = repr(nn.MLP([10, 5, 1], activation="sigmoid", dropout=0.1))
    assert text.startswith("MLP(\n  (layers): Sequential(\n")
    assert "(0): Linear(in_features=10, out_features=5, bias=True)" in text
    assert "(1): Sigmoid()" in text
    assert "(2): Dropout(p=0.1)" in text
    assert repr(nn.Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"
    assert "Parameter containing" in repr(nn.Linear(1, 1).weight)


def test_mlp_structure_and_activations():
    m = nn.MLP([4, 8, 8, 3], activation="relu", output_activation="sigmoid")
    kinds = [type(x).__name__ for x in m.layers]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear", "Sigmoid"]
    m = nn.MLP([4, 3], activation="tanh")
    assert [type(x).__name__ for x in m.layers] == ["Linear"]
    m = nn.MLP([2, 3, 3, 1], activation=nn.LeakyReLU(0.2))
    acts = [x for x in m.layers if isinstance(x, nn.LeakyReLU)]
    assert len(acts) == 2 and acts[0] is not acts[1] and acts[0].negative_slope == 0.2
    m = nn.MLP([2, 3, 1], activation=nn.Tanh)
    assert isinstance(m.layers[1], nn.Tanh)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP([2, 3, 1], activation="swish")
    with pytest.raises(ValueError, match="at least"):
        nn.MLP([3])


def test_state_dict_round_trip():
    nn.manual_seed(0)
    a = nn.MLP([3, 4, 2])
    nn.manual_seed(1)
    b = nn.MLP([3, 4, 2])
    x = ag.Tensor(np.random.default_rng(0).standard_normal((5, 3)))
    assert not np.allclose(a(x).data, b(x).data)
    state = a.state_dict()
    assert list(state) == [n for n, _ in a.named_parameters()]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    weight_before = b.layers[0].weight
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(a(x).data, b(x).data)
    assert b.layers[0].weight is weight_before  # loaded in place, same Parameter objects
    # the state dict is a copy: changing the model later does not change it
    a.layers[0].weight.data += 1
    assert not np.allclose(state["layers.0.weight"], a.layers[0].weight.data)


def test_load_state_dict_missing_key():
    m = nn.MLP([3, 4, 2])
    state = m.state_dict()
    del state["layers.2.bias"]
    with pytest.raises(nn.StateDictError, match="missing key\\(s\\): 'layers.2.bias'"):
        m.load_state_dict(state)
    before = m.layers[0].weight.data.copy()
    state["layers.0.weight"] = before + 1
    res = m.load_state_dict(state, strict=False)
    assert res.missing_keys == ["layers.2.bias"]
    np.testing.assert_array_equal(m.layers[0].weight.data, before + 1)


def test_load_state_dict_unexpected_key():
    m = nn.MLP([3, 4, 2])
    state = m.state_dict()
    state["layers.9.weight"] = np.zeros((2, 2))
    with pytest.raises(nn.StateDictError, match="unexpected key\\(s\\): 'layers.9.weight'"):
        m.load_state_dict(state)
    res = m.load_state_dict(state, strict=False)
    assert res.unexpected_keys == ["layers.9.weight"]


def test_load_state_dict_shape_mismatch_changes_nothing():
    m = nn.MLP([3, 4, 2])
    before = {k: v.copy() for k, v in m.state_dict().items()}
    state = nn.MLP([3, 5, 2]).state_dict()
    with pytest.raises(nn.StateDictError) as err:
        m.load_state_dict(state, strict=False)  # shapes are checked even when not strict
    msg = str(err.value)
    assert "size mismatch for layers.0.weight" in msg and "(5, 3)" in msg and "(4, 3)" in msg
    assert "nothing was loaded" in msg
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_bad_values():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="dict"):
        m.load_state_dict([1, 2])
    with pytest.raises(nn.StateDictError, match="dtype"):
        m.load_state_dict({"weight": np.array([["a", "b"], ["c", "d"]]), "bias": np.zeros(2)})


def test_load_state_dict_reports_all_problems_at_once():
    m = nn.MLP([3, 4, 2])
    state = m.state_dict()
    del state["layers.0.bias"]
    state["extra"] = np.zeros(1)
    state["layers.2.weight"] = np.zeros((3, 3))
    with pytest.raises(nn.StateDictError) as err:
        m.load_state_dict(state)
    msg = str(err.value)
    assert "missing" in msg and "unexpected" in msg and "size mismatch" in msg


def test_float32_parameters_and_deepcopy():
    m = nn.MLP([3, 4, 2], dtype=np.float32)
    assert all(p.dtype == np.float32 for p in m.parameters())
    out = m(ag.Tensor(np.ones((2, 3), dtype=np.float32)))
    assert out.dtype == np.float32
    c = copy.deepcopy(m)
    assert c.layers[0].weight is not m.layers[0].weight
    np.testing.assert_array_equal(c.layers[0].weight.data, m.layers[0].weight.data)
    assert c.layers[0].weight.name == "layers.0.weight"


def test_forward_hook():
    lin = nn.Linear(2, 2)
    seen = []
    handle = lin.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    lin(ag.Tensor(np.ones((3, 2))))
    handle.remove()
    lin(ag.Tensor(np.ones((3, 2))))
    assert seen == [(3, 2)]


def test_linear_shape_error_names_the_fix():
    lin = nn.Linear(4, 2)
    with pytest.raises(ag.ShapeError, match="in_features=3"):
        lin(ag.Tensor(np.ones((5, 3))))


def test_gradcheck_linear():
    rng = np.random.default_rng(0)
    lin = nn.Linear(4, 3, rng=0)
    x = ag.Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    ag.gradcheck(lambda x, w, b: (lin(x) ** 2).sum(), [x, lin.weight, lin.bias])
    mlp = nn.MLP([3, 4, 2], activation="tanh", rng=1)
    x = ag.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    ag.gradcheck(lambda x, *ps: mlp(x).sum(), [x, *mlp.parameters()])


def test_register_parameter_and_add_module_by_name():
    m = nn.Module()
    w = nn.Parameter(np.ones(2))
    m.register_parameter("w", w)
    m.add_module("inner", nn.Linear(2, 1))
    assert m.w is w and dict(m.named_parameters())["inner.weight"].shape == (1, 2)
    # None declares the name without a value, as a Linear without bias does
    m.register_parameter("b", None)
    m.add_module("extra", None)
    assert m.b is None and m.extra is None
    assert sorted(m.state_dict()) == ["inner.bias", "inner.weight", "w"]
    # a name moves from one registry to the other
    m.add_module("w", None)
    assert "w" not in dict(m.named_parameters()) and m.w is None
