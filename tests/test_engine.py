"""The backward engine: order, accumulation, graph lifetime, modes, hooks, custom ops."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from values import cube_function, leaf

import autograd as ag

# ----------------------------------------------------------------- deep graphs


@pytest.mark.slow
def test_100k_deep_chain_of_muls():
    depth = 100_000
    assert sys.getrecursionlimit() < depth  # the point: no recursion anywhere
    x = leaf(0.5)
    y = x
    for _ in range(depth):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**depth, rel=1e-9)
    order = ag.topological_order(y)
    assert len(order) == depth + 1 and order[0] is x and order[-1] is y
    del y, order  # freeing a 100,000-deep chain must not overflow the C stack either


@pytest.mark.slow
def test_100k_deep_chain_of_tanh():
    depth = 100_000
    start = 0.3
    x = leaf(start)
    y = x
    for _ in range(depth):
        y = y.tanh()
    y.backward()
    # independent derivative: product of (1 - tanh(y_i)^2) along the chain, in NumPy
    v, deriv = start, 1.0
    for _ in range(depth):
        v = np.tanh(v)
        deriv *= 1.0 - v * v
    assert y.item() == pytest.approx(v, rel=1e-12)
    assert x.grad == pytest.approx(deriv, rel=1e-9)


# ----------------------------------------------------------------- accumulation


def test_leaves_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3.0)
    x.zero_grad()
    assert x.grad is None
    x.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(3))


def test_gradient_from_several_paths_adds_up():
    x = leaf([0.5, -1.5])
    y1, y2 = x * 2.0, x * 3.0
    (y1 * y2).sum().backward()  # 6 x^2
    np.testing.assert_allclose(x.grad, 12 * x.data)


def test_same_tensor_twice_in_one_op():
    x = leaf([0.5, -1.5, 2.0])
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 3 * x.data**2)
    w = leaf(np.arange(6.0).reshape(2, 3) / 7)
    (w @ w.T).sum().backward()
    np.testing.assert_allclose(w.grad, 2 * np.ones((2, 2)) @ w.data)


def test_leaf_grad_is_an_owned_array():
    x = leaf([1.0, 2.0])
    y = x.sum()
    y.backward(retain_graph=True)
    g = x.grad
    g[0] = 100.0  # the user scribbles on it
    y.backward()
    np.testing.assert_array_equal(x.grad, [101.0, 2.0])


def test_intermediate_grads_are_not_kept_unless_retained():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    z = y.exp()
    z.sum().backward()
    assert y.grad is None and z.grad is None
    assert x.grad is not None

    x2 = leaf([1.0, 2.0])
    y2 = x2 * 3.0
    y2.retain_grad()
    z2 = y2.exp()
    z2.sum().backward()
    np.testing.assert_allclose(y2.grad, np.exp(y2.data))
    np.testing.assert_allclose(x2.grad, 3 * np.exp(y2.data))


# ----------------------------------------------------------------- graph lifetime


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, -2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad, 2 * (2 * x.data))
    y.backward()
    np.testing.assert_allclose(x.grad, 3 * (2 * x.data))


def test_second_backward_through_released_graph_raises():
    x = leaf([1.0, -2.0])
    y = (x * x).exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_released_subgraph_shared_by_a_new_graph_raises():
    x = leaf([1.0, -2.0])
    h = x * x
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 2.0).sum().backward()


def test_backward_on_non_scalar_without_gradient_names_the_shape():
    x = leaf(np.ones((2, 3)))
    y = x * 2.0
    with pytest.raises(RuntimeError) as info:
        y.backward()
    assert "(2, 3)" in str(info.value)
    assert "gradient" in str(info.value)


@pytest.mark.parametrize("wrong", [np.ones(3), np.ones((3, 2)), np.ones((2, 3, 1)), 1.0])
def test_backward_with_wrong_gradient_shape_raises(wrong):
    x = leaf(np.ones((2, 3)))
    y = x * 2.0
    with pytest.raises(ag.ShapeError) as info:
        y.backward(wrong)
    assert "(2, 3)" in str(info.value)
    assert str(np.shape(wrong)) in str(info.value)
    assert x.grad is None


def test_backward_with_explicit_gradient():
    x = leaf(np.arange(6.0).reshape(2, 3))
    y = x * x
    g = np.arange(6.0).reshape(2, 3)[::-1] - 2.5
    y.backward(g.tolist(), retain_graph=True)
    np.testing.assert_allclose(x.grad, g * 2 * x.data)
    x.zero_grad()
    y.backward(ag.Tensor(g))
    np.testing.assert_allclose(x.grad, g * 2 * x.data)


def test_backward_on_scalar_shaped_one_element_tensor():
    x = leaf([[2.0]])
    (x * x).backward()  # shape (1, 1): one value, seed 1 is implicit
    np.testing.assert_allclose(x.grad, [[4.0]])


def test_backward_without_graph_raises():
    x = ag.Tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="requires_grad"):
        x.sum().backward()


# ----------------------------------------------------------------- grad modes


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with ag.no_grad():
        assert not ag.is_grad_enabled()
        y = x * 2.0 + x.exp()
    assert ag.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    z = x * 2.0
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_as_decorator_and_restored_after_exception():
    @ag.no_grad()
    def step(t):
        return t * 2.0

    x = leaf([1.0])
    assert not step(x).requires_grad
    assert ag.is_grad_enabled()
    with pytest.raises(ZeroDivisionError), ag.no_grad():
        raise ZeroDivisionError
    assert ag.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0, 2.0])
    with ag.no_grad():
        with ag.enable_grad():
            y = (x * x).sum()
        z = x * x
    assert y.requires_grad and not z.requires_grad
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_set_grad_enabled():
    x = leaf([1.0])
    with ag.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with ag.set_grad_enabled(True):
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_detach_cuts_the_graph_and_shares_memory():
    x = leaf([1.0, 2.0, 3.0])
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, x.data)
    (d * x).sum().backward()  # only the non-detached factor carries a gradient
    np.testing.assert_allclose(x.grad, x.data)
    y = (x * 2.0).detach()
    assert not y.requires_grad


def test_ops_on_constants_build_no_graph():
    a, b = ag.Tensor([1.0, 2.0]), ag.Tensor([3.0, 4.0])
    c = (a * b).exp().sum()
    assert not c.requires_grad and c.grad_fn is None


def test_mixed_constant_and_variable_inputs():
    x = leaf([1.0, 2.0])
    c = ag.Tensor([3.0, 4.0])
    (x * c).sum().backward()
    np.testing.assert_array_equal(x.grad, c.data)
    assert c.grad is None


# ----------------------------------------------------------------- hooks


def test_hook_on_leaf_changes_its_grad():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.copy()))
    x.register_hook(lambda g: g * 10.0)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(x.grad, [30.0, 30.0])


def test_hook_on_intermediate_changes_what_flows_on():
    x = leaf([1.0, 2.0])
    y = x * x
    y.register_hook(lambda g: g + 1.0)
    (y * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, (2.0 + 1.0) * 2 * x.data)
    assert y.grad is None


def test_hooks_run_in_registration_order():
    x = leaf([1.0])
    x.register_hook(lambda g: g + 1.0)
    x.register_hook(lambda g: g * 10.0)
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, [(2.0 + 1.0) * 10.0])


def test_hook_handle_remove():
    x = leaf([1.0, 2.0])
    calls = []

    def hook(g):
        calls.append(1)
        return g * 0.0

    handle = x.register_hook(hook)
    x.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    handle.remove()
    handle.remove()  # removing twice is harmless
    x.zero_grad()
    x.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    assert len(calls) == 1


def test_hook_returning_wrong_shape_raises():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: np.ones(3))
    with pytest.raises(ag.ShapeError):
        x.sum().backward()


def test_hook_on_constant_raises():
    with pytest.raises(RuntimeError):
        ag.Tensor([1.0]).register_hook(lambda g: g)


# ----------------------------------------------------------------- order and steps


def _diamond():
    a = leaf([1.0, -2.0, 0.5], name="a")
    b = leaf([[0.3], [-0.7]], name="b")
    k = ag.Tensor([2.0, 2.0, 2.0], name="k")  # constant: not part of the gradient graph
    c = a * b  # (2, 3), broadcast
    d = c + a * k
    e = d.tanh()
    loss = (e * c).sum()
    return loss, dict(a=a, b=b, k=k, c=c, d=d, e=e, loss=loss)


def _requiring_parents(node):
    ctx = node.grad_fn
    if ctx is None:
        return []
    return [p for p, need in zip(ctx.parents, ctx.needs_input_grad) if need]


def test_topological_order_parents_first():
    loss, t = _diamond()
    order = ag.topological_order(loss)
    pos = {id(n): i for i, n in enumerate(order)}
    assert len(pos) == len(order)  # no duplicates
    assert order[-1] is loss
    for n in order:
        for p in _requiring_parents(n):
            assert pos[id(p)] < pos[id(n)]
    assert id(t["k"]) not in pos  # constants are not in the gradient graph
    for name in "abcde":
        assert id(t[name]) in pos
    # every node reachable through gradient-carrying edges, nothing else
    reach, stack = set(), [loss]
    while stack:
        n = stack.pop()
        if id(n) not in reach:
            reach.add(id(n))
            stack.extend(_requiring_parents(n))
    assert reach == set(pos)


def test_backward_steps_one_per_node_in_reverse_topological_order():
    loss, t = _diamond()
    nodes = ag.topological_order(loss)
    steps = list(ag.backward_steps(loss))
    assert [type(s) for s in steps] == [ag.BackwardStep] * len(steps)
    assert len(steps) == len(nodes)
    assert {id(s.node) for s in steps} == {id(n) for n in nodes}
    pos = {id(s.node): i for i, s in enumerate(steps)}
    for s in steps:  # a node's step comes before its parents' steps
        for p in _requiring_parents(s.node):
            assert pos[id(p)] > pos[id(s.node)]
    assert steps[0].node is loss
    np.testing.assert_array_equal(steps[0].grad, 1.0)


def test_backward_steps_sent_pairs_follow_the_chain_rule():
    loss, t = _diamond()
    steps = list(ag.backward_steps(loss))
    received = {}
    for s in steps:
        if s.node is not loss:
            np.testing.assert_allclose(s.grad, received[id(s.node)])
        want = _requiring_parents(s.node)
        assert [p for p, _ in s.sent] == want  # identity, in argument order
        for p, g in s.sent:
            assert g.shape == p.shape  # broadcasting undone before sending
            received[id(p)] = received.get(id(p), 0) + g
        if s.node.is_leaf:
            assert s.sent == ()
            np.testing.assert_array_equal(s.node.grad, s.grad)
    # spot-check one local derivative: c = a * b sends grad * b to a
    c_step = next(s for s in steps if s.node is t["c"])
    a_from_c = dict((id(p), g) for p, g in c_step.sent)[id(t["a"])]
    np.testing.assert_allclose(a_from_c, (c_step.grad * t["b"].data).sum(axis=0))
    # and the result is the true gradient: d loss / d a by central differences
    num = ag.numerical_grad(lambda a: _loss_with(a, t["b"]), [ag.Tensor(t["a"].data)])[0]
    np.testing.assert_allclose(t["a"].grad, num, rtol=1e-6, atol=1e-8)


def _loss_with(a, b):
    c = a * b
    e = (c + a * 2.0).tanh()
    return (e * c).sum()


def test_backward_steps_deterministic():
    def trace():
        loss, t = _diamond()
        names = {id(v): k for k, v in t.items()}

        def label(n):  # a node's name, or its op and its parents' labels
            if id(n) in names:
                return names[id(n)]
            return f"{n.grad_fn.name}({', '.join(label(p) for p in n.grad_fn.parents)})"

        return [(label(s.node), [label(p) for p, _ in s.sent], s.grad.tolist())
                for s in ag.backward_steps(loss)]

    first = trace()
    for _ in range(3):
        assert trace() == first


def test_backward_steps_is_lazy_and_backward_drains_it():
    loss, t = _diamond()
    gen = ag.backward_steps(loss)
    first = next(gen)
    assert first.node is loss
    assert t["a"].grad is None  # nothing reached the leaves yet
    rest = list(gen)
    assert t["a"].grad is not None and t["b"].grad is not None
    assert len(rest) + 1 == len(ag.topological_order(loss))


def test_backward_steps_without_records_is_the_same_pass():
    """record=False (what backward() drains) visits the same nodes, one None each, and
    leaves the same gradients."""
    loss, t = _diamond()
    steps = list(ag.backward_steps(loss, retain_graph=True))
    recorded = {k: v.grad.copy() for k, v in t.items() if v.grad is not None}
    for v in t.values():
        v.zero_grad()
    quiet = list(ag.backward_steps(loss, record=False))
    assert quiet == [None] * len(steps)
    assert recorded and all(np.array_equal(t[k].grad, g) for k, g in recorded.items())


def test_backward_steps_with_gradient_argument():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    steps = list(ag.backward_steps(y, np.array([1.0, -1.0])))
    np.testing.assert_array_equal(steps[0].grad, [1.0, -1.0])
    np.testing.assert_array_equal(x.grad, [3.0, -3.0])


# ----------------------------------------------------------------- functional forms


def test_grad_of_simple_functions():
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(ag.grad(lambda t: (t**3).sum())(x), 3 * x**2)
    np.testing.assert_allclose(ag.grad(lambda t: t.exp().sum())(x), np.exp(x))
    np.testing.assert_allclose(ag.grad(lambda t: (t * t).sum().sqrt())(x),
                               x / np.linalg.norm(x))


def test_grad_of_python_numbers():
    assert ag.grad(lambda t: t**3)(2.0) == pytest.approx(12.0)
    assert ag.grad(lambda t: t**3)(2) == pytest.approx(12.0)  # an int becomes a float leaf


def test_grad_argnums():
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])

    def f(a, b):
        return (a * b).sum() + (b * b).sum()

    np.testing.assert_allclose(ag.grad(f)(x, y), y)
    np.testing.assert_allclose(ag.grad(f, argnums=1)(x, y), x + 2 * y)
    ga, gb = ag.grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(ga, y)
    np.testing.assert_allclose(gb, x + 2 * y)


def test_value_and_grad():
    x = np.array([0.25, -0.5])
    value, g = ag.value_and_grad(lambda t: (t.tanh() ** 2).sum())(x)
    assert float(np.asarray(value)) == pytest.approx(np.sum(np.tanh(x) ** 2))
    np.testing.assert_allclose(g, 2 * np.tanh(x) * (1 - np.tanh(x) ** 2))
    value, (g0, g1) = ag.value_and_grad(lambda a, b: (a / b).sum(), argnums=(0, 1))(x, 2.0)
    assert float(np.asarray(value)) == pytest.approx(np.sum(x / 2.0))
    np.testing.assert_allclose(g0, [0.5, 0.5])
    assert g1 == pytest.approx(-np.sum(x) / 4.0)


def test_grad_leaves_callers_tensors_alone():
    x = leaf([1.0, 2.0])
    g = ag.grad(lambda t: (t * t).sum())(x)
    np.testing.assert_allclose(g, 2 * x.data)
    assert x.grad is None


def test_grad_of_unused_argument_is_zero():
    g = ag.grad(lambda a, b: (ag.Tensor(a) * 2.0).sum(), argnums=1)(np.ones(2), np.ones(3))
    np.testing.assert_array_equal(g, np.zeros(3))


def test_grad_requires_single_value():
    with pytest.raises(TypeError):
        ag.grad(lambda t: t * 2.0)(np.ones(3))


# ----------------------------------------------------------------- custom Functions


Cube = cube_function()


class Recorder(ag.Function):
    """a * b + c, recording needs_input_grad and what was saved."""

    log: list = []

    @staticmethod
    def forward(ctx, a, b, c, scale=1.0):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return scale * a * b + c

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        Recorder.log.append(ctx.needs_input_grad)
        na, nb, nc = ctx.needs_input_grad
        return (ctx.scale * grad * b if na else None,
                ctx.scale * grad * a if nb else None,
                grad if nc else None)


def test_custom_function_value_and_grad():
    x = leaf([0.5, -2.0])
    y = Cube.apply(x)
    assert isinstance(y, ag.Tensor) and isinstance(y.grad_fn, Cube)
    np.testing.assert_allclose(y.data, x.data**3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 3 * x.data**2)
    assert ag.gradcheck(lambda t: Cube.apply(t.tanh()) * 2.0, [leaf([0.1, 0.7, -1.2])])


def test_custom_function_needs_input_grad_and_constants():
    Recorder.log.clear()
    a, b = leaf([1.0, 2.0]), ag.Tensor([3.0, 4.0])
    c = leaf(0.5)
    out = Recorder.apply(a, b, c, scale=2.0)
    assert out.grad_fn.needs_input_grad == (True, False, True)
    out.sum().backward()
    assert Recorder.log == [(True, False, True)]
    np.testing.assert_allclose(a.grad, 2.0 * b.data)
    assert b.grad is None
    assert c.grad == pytest.approx(2.0)  # broadcast (2,) summed down to ()

    Recorder.log.clear()
    out = Recorder.apply(a, 5.0, ag.Tensor(1.0))  # plain Python constant in the middle
    out.sum().backward()
    assert Recorder.log == [(True, False, False)]


def test_custom_function_under_no_grad_records_nothing():
    x = leaf([1.0])
    with ag.no_grad():
        y = Cube.apply(x)
    assert y.grad_fn is None and not y.requires_grad


def test_custom_backward_with_wrong_number_of_gradients():
    class Bad(ag.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad  # one gradient for two inputs

    with pytest.raises(RuntimeError, match="Bad"):
        Bad.apply(leaf([1.0]), leaf([2.0])).sum().backward()


def test_custom_backward_with_wrong_shape_is_an_error_not_a_silent_gradient():
    class BadShape(ag.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return np.ones(grad.shape[::-1])  # transposed: same size, wrong shape

    x = leaf(np.ones((2, 3)))
    with pytest.raises(ag.ShapeError) as info:
        BadShape.apply(x).sum().backward()
    msg = str(info.value)
    assert "BadShape" in msg and "(3, 2)" in msg and "(2, 3)" in msg


def test_custom_backward_in_broadcast_shape_is_summed_down():
    class AddBias(ag.Function):
        @staticmethod
        def forward(ctx, x, bias):
            return x + bias

        @staticmethod
        def backward(ctx, grad):
            return grad, grad  # both in the output's shape

    x, bias = leaf(np.zeros((3, 4))), leaf(np.zeros((1, 4)))
    AddBias.apply(x, bias).sum().backward()
    assert bias.grad.shape == (1, 4)
    np.testing.assert_array_equal(bias.grad, np.full((1, 4), 3.0))


def test_unbroadcast():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(ag.unbroadcast(g, (2, 3, 4)), g)
    np.testing.assert_array_equal(ag.unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(ag.unbroadcast(g, (3, 1)), g.sum(axis=(0, 2))[:, None])
    np.testing.assert_array_equal(ag.unbroadcast(g, (1, 1, 1)), g.sum(keepdims=True))
    assert ag.unbroadcast(g, ()) == g.sum()


@pytest.mark.parametrize("shape,axis,keepdims", [
    ((1000, 5), 0, False), ((1000, 5), -2, True), ((1000, 5), (0,), False),
    ((6, 7, 3), (0, 1), False), ((6, 7, 3), (0, 1), True), ((6, 7, 3), 0, False),
    ((2, 1), 0, False), ((300, 1), (0,), True)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_sum_over_leading_axes_is_a_product_with_ones(shape, axis, keepdims, dtype):
    """The bias gradient's sum over a batch runs as ones @ rows (BLAS), in the Sum op
    and in unbroadcast: the same values as NumPy's sum, the same shape and dtype."""
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    want = np.sum(a, axis=axis, keepdims=keepdims)
    got = ag.ops.sum_rows(a, axis, keepdims)
    assert got is not None and got.shape == want.shape and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    t = ag.Tensor(a, requires_grad=True)
    np.testing.assert_array_equal(t.sum(axis=axis, keepdims=keepdims).data, got)
    lead = tuple(range(len(axis))) if isinstance(axis, tuple) else (axis % a.ndim,)
    target = tuple(1 if i in lead else n for i, n in enumerate(shape))[len(lead):]
    np.testing.assert_array_equal(ag.unbroadcast(a, target), got.reshape(target))


@pytest.mark.parametrize("a,axis", [
    (np.ones((4, 3), dtype=np.int64), 0),                 # integers: NumPy's own sum
    (np.ones((3, 4))[:, ::2], 0),                         # not contiguous
    (np.ones((3, 4)).T, 0),
    (np.ones((3, 4)), 1),                                 # not a leading axis
    (np.ones((3, 4)), (1, 0)),
    (np.ones((3, 4)), None),                              # all axes: NumPy's pairwise sum
    (np.ones((3, 4)), 2),                                 # out of range: NumPy's error
    (np.ones((0, 4)), 0),                                 # empty
    (np.ones(5), 0)])                                     # one axis: NumPy's pairwise sum
def test_other_sums_are_left_to_numpy(a, axis):
    assert ag.ops.sum_rows(a, axis) is None


def test_a_sum_over_rows_is_more_accurate_than_numpys_in_float32():
    """NumPy adds the rows of a matrix one after another; BLAS keeps partial sums."""
    a = np.random.default_rng(0).standard_normal((200_000, 3)).astype(np.float32) + 1
    exact = a.astype(np.float64).sum(axis=0)
    ours = ag.Tensor(a).sum(axis=0).numpy()
    assert np.abs(ours - exact).max() < np.abs(np.sum(a, axis=0) - exact).max()


# ----------------------------------------------------------------- owning .grad


def test_leaf_grads_never_alias_each_other_or_what_backward_saw():
    """.grad may be changed in place (clipping, optimisers): that must change nothing
    else, however the gradient reached the leaf."""
    x, y = leaf(np.ones(3)), leaf(np.ones(3))
    (x + y).sum().backward()  # Add sends one array to both inputs
    assert not np.shares_memory(x.grad, y.grad)
    x.grad *= 0
    np.testing.assert_array_equal(y.grad, np.ones(3))

    kept = []
    z = leaf(np.ones(3))
    z.register_hook(lambda g: kept.append(g))
    (z * 2).sum().backward()
    z.grad *= 0
    np.testing.assert_array_equal(kept[0], np.full(3, 2.0))

    steps = list(ag.backward_steps((z * 3).sum()))
    z.grad *= 0
    np.testing.assert_array_equal(steps[-1].grad, np.full(3, 3.0))


def test_a_gradient_an_op_still_saves_is_copied():
    class Triple(ag.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(np.full(x.shape, 3.0))
            return x * 3

        @staticmethod
        def backward(ctx, grad):
            return ctx.saved[0]  # the saved array itself

    q = leaf(np.ones(2))
    out = Triple.apply(q)
    out.backward(np.ones(2), retain_graph=True)
    q.grad *= 0
    q.zero_grad()
    out.backward(np.ones(2))
    np.testing.assert_array_equal(q.grad, [3.0, 3.0])


def _doubled_gradient_of(w):
    """Backward through an op whose backward makes a fresh array; returns its id."""
    made = []

    class Double(ag.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            g = grad * 2
            made.append(id(g))  # its identity only: a reference would force a copy
            return g

    Double.apply(w).backward(np.ones(w.shape))
    np.testing.assert_array_equal(w.grad, np.full(w.shape, 2.0))
    return made[0]


def test_a_fresh_gradient_is_taken_without_a_copy():
    """The engine takes a first gradient that nothing else holds instead of copying
    it (as PyTorch does): the array backward made becomes .grad itself."""
    w = leaf(np.ones((4, 3)))
    assert _doubled_gradient_of(w) == id(w.grad)


@pytest.fixture
def copy_every_gradient(monkeypatch):
    """The engine as on an interpreter without reference counts: every first gradient
    is copied (``engine.TAKE_UNSHARED`` is False)."""
    monkeypatch.setattr(ag.engine, "TAKE_UNSHARED", False)


def test_without_reference_counts_every_first_gradient_is_copied(copy_every_gradient):
    w = leaf(np.ones((4, 3)))
    assert _doubled_gradient_of(w) != id(w.grad)


def test_without_reference_counts_grads_still_never_alias(copy_every_gradient):
    test_leaf_grads_never_alias_each_other_or_what_backward_saw()
    test_a_gradient_an_op_still_saves_is_copied()


# ----------------------------------------------------------------- reference backward


@st.composite
def random_graphs(draw):
    """A random program over 1-3 leaves: each step applies a unary or binary op to
    earlier values (so values are reused: diamonds, x * x), with broadcasting."""
    n_leaves = draw(st.integers(1, 3))
    shapes = [draw(st.sampled_from([(), (3,), (2, 3), (1, 3), (2, 1)])) for _ in range(n_leaves)]
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        n = n_leaves + len(steps)
        op = draw(st.sampled_from(["add", "mul", "sub", "tanh", "sigmoid", "sum", "square",
                                   "exp_small"]))
        steps.append((op, draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))))
    return shapes, steps, draw(st.integers(0, 2**31 - 1))


_PROGRAM_OPS = {
    "add": lambda a, b: a + b, "mul": lambda a, b: a * b, "sub": lambda a, b: a - b,
    "tanh": lambda a, b: a.tanh(), "sigmoid": lambda a, b: a.sigmoid(),
    "sum": lambda a, b: a.sum(axis=-1, keepdims=True) if a.ndim else a * 1.0,
    "square": lambda a, b: a * a, "exp_small": lambda a, b: a.tanh().exp(),
}


def _run_program(shapes, steps, seed, backward):
    rng = np.random.default_rng(seed)
    leaves = [leaf(rng.standard_normal(s)) for s in shapes]
    values = list(leaves)
    for op, i, j in steps:
        values.append(_PROGRAM_OPS[op](values[i], values[j]))
    root = values[-1].sum() if values[-1].ndim else values[-1] * 1.0
    backward(root)
    return [x.grad for x in leaves]


@given(random_graphs())
@settings(max_examples=60, deadline=None)
def test_reference_backward_and_the_engine_agree(program):
    """The 20-line reference algorithm and the scheduled loop give the same gradients."""
    ours = _run_program(*program, backward=lambda root: root.backward())
    ref = _run_program(*program, backward=ag.engine.reference_backward)
    for g, r in zip(ours, ref):
        if r is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


def test_reference_backward_refuses_a_tensor_without_a_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ag.engine.reference_backward(ag.Tensor([1.0]).sum())


def test_reference_backward_is_the_chain_rule_on_a_small_graph():
    x = leaf([1.0, 2.0])
    y = leaf([3.0, -1.0])
    z = (x * y + x).tanh().sum()
    ag.engine.reference_backward(z)
    t = np.tanh(np.array([1.0, 2.0]) * [3.0, -1.0] + [1.0, 2.0])
    np.testing.assert_allclose(x.grad, (1 - t * t) * (np.array([3.0, -1.0]) + 1))
    np.testing.assert_allclose(y.grad, (1 - t * t) * np.array([1.0, 2.0]))


# ------------------------------------------------------------------ retain_grad


def test_retain_grad_on_a_tensor_without_grad_raises_as_pytorch():
    x = leaf([1.0, 2.0])
    with ag.no_grad():
        y = x * 2.0
    for t in (y, ag.Tensor([1.0, 2.0])):
        with pytest.raises(RuntimeError, match="does not require grad"):
            t.retain_grad()


def test_retain_grad_keeps_every_intermediate_of_a_chain():
    # each of a chain of ops, reshapes and an index: its gradient, as the chain rule says
    x = leaf(np.arange(6.0).reshape(2, 3))
    a = x * 2.0
    b = a.reshape(3, 2)
    c = b[1:]
    d = c.tanh()
    for t in (a, b, c, d):
        t.retain_grad()
    (d * d).sum().backward()
    np.testing.assert_allclose(d.grad, 2 * d.data)
    np.testing.assert_allclose(c.grad, 2 * d.data * (1 - d.data ** 2))
    np.testing.assert_allclose(b.grad, np.concatenate([np.zeros((1, 2)), c.grad]))
    np.testing.assert_allclose(a.grad, b.grad.reshape(2, 3))
    np.testing.assert_allclose(x.grad, 2 * a.grad)
