"""pad, take_along_axis / gather, index_add, sort / topk and einsum: what the op table
cannot say (the op table checks values and gradients against PyTorch): the indices that
sort and topk return, ties and NaN, PyTorch's own topk, and the errors where PyTorch
raises."""

from __future__ import annotations

import numpy as np
import pytest

import autograd as ag

torch = pytest.importorskip("torch")


def leaf(a):
    return ag.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def twin(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def check_backward(ours, theirs, out, ref, seed=0):
    g = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------ sort, topk

TIES = np.array([[3.0, 1.0, 3.0, np.nan, 1.0, 2.0], [0.0, -0.5, 0.0, 0.0, 7.0, -0.5]])


@pytest.mark.parametrize("descending", [False, True])
def test_sort_gives_values_and_indices_as_torch_stable_sort(descending):
    a, t = leaf(TIES), twin(TIES)
    values, indices = a.sort(dim=1, descending=descending)
    ref = torch.sort(t, dim=1, descending=descending, stable=True)
    assert isinstance(indices, np.ndarray) and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, ref.indices.numpy())
    np.testing.assert_array_equal(values.data, ref.values.detach().numpy())
    assert a.sort(1, descending).values is not None  # positional, as in PyTorch
    check_backward(a, t, values, ref.values)


def test_sort_result_has_fields_and_unpacks():
    result = leaf([2.0, 1.0]).sort()
    assert result.values.requires_grad
    np.testing.assert_array_equal(result.indices, [1, 0])
    values, indices = result
    assert values is result.values and indices is result.indices


def test_topk_matches_torch_topk_off_ties():
    x = np.random.default_rng(1).standard_normal((3, 5, 4))
    for k, dim, largest in [(2, 1, True), (3, -1, False), (0, 0, True), (5, 1, True)]:
        a, t = leaf(x), twin(x)
        values, indices = a.topk(k, dim, largest=largest)
        ref = torch.topk(t, k, dim=dim, largest=largest)
        np.testing.assert_array_equal(indices, ref.indices.numpy())
        np.testing.assert_array_equal(values.data, ref.values.detach().numpy())
        check_backward(a, t, values, ref.values)


def test_topk_at_ties_takes_the_first_positions():
    values, indices = leaf([1.0, 5.0, 5.0, 5.0]).topk(2)
    np.testing.assert_array_equal(indices, [1, 2])


def test_sort_and_topk_of_a_0d_tensor():
    a = leaf(2.5)
    values, indices = a.sort()
    assert values.shape == () and indices.shape == ()
    values.backward()
    assert a.grad == 1.0
    assert leaf(2.5).topk(1).values.item() == 2.5


def test_topk_k_out_of_range_raises_like_torch():
    with pytest.raises(RuntimeError):
        torch.zeros(2, 3).topk(4)
    with pytest.raises(IndexError, match=r"topk: k=4 .* size 3"):
        leaf(np.zeros((2, 3))).topk(4)


def test_np_sort_keeps_the_graph():
    a = leaf([[3.0, 1.0, 2.0]])
    out = np.sort(a, axis=None)
    assert isinstance(out, ag.Tensor) and out.shape == (3,)
    (out * np.array([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_array_equal(a.grad, [[100.0, 1.0, 10.0]])


# ------------------------------------------------------------------------ gather


def test_take_along_axis_broadcasts_and_counts_from_the_end():
    x = np.arange(12.0).reshape(3, 4)
    idx = np.array([[-1, 0, 0]])  # broadcast over the 3 rows, a repeat
    a = leaf(x)
    out = ag.take_along_axis(a, idx, axis=1)
    np.testing.assert_array_equal(out.data, np.take_along_axis(x, idx, axis=1))
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, np.tile([2.0, 0.0, 0.0, 1.0], (3, 1)))


def test_take_along_axis_none_flattens():
    x = np.arange(6.0).reshape(2, 3)
    out = ag.take_along_axis(leaf(x), np.array([5, 0]), axis=None)
    np.testing.assert_array_equal(out.data, [5.0, 0.0])
    out2 = np.take_along_axis(leaf(x), np.array([5, 0]), axis=None)
    np.testing.assert_array_equal(out2.data, [5.0, 0.0])


@pytest.mark.parametrize("index, error, match", [
    (np.array([[-1, 0]]), IndexError, "out of range"),
    (np.array([[0, 3]]), IndexError, "out of range"),
    (np.zeros((3, 1), dtype=np.int64), ag.ShapeError, "larger than the input"),
    (np.zeros((2,), dtype=np.int64), ag.ShapeError, "same number of dimensions"),
    (np.zeros((2, 1)), TypeError, "integers"),
])
def test_gather_refuses_what_torch_refuses(index, error, match):
    x = np.zeros((2, 3))
    with pytest.raises(RuntimeError):
        torch.gather(torch.tensor(x), 1, torch.as_tensor(index).long()
                     if index.dtype.kind == "i" else torch.as_tensor(index))
    with pytest.raises(error, match=f"gather: .*{match}"):
        leaf(x).gather(1, index)


# ------------------------------------------------------------------------ index_add


def test_index_add_repeats_add_up_and_both_get_gradients():
    x, s = np.zeros((4, 2)), np.arange(6.0).reshape(3, 2)
    index = np.array([1, 3, 1])
    a, src, t, tsrc = leaf(x), leaf(s), twin(x), twin(s)
    out = a.index_add(0, index, src, alpha=-2.0)
    ref = t.index_add(0, torch.as_tensor(index), tsrc, alpha=-2.0)
    np.testing.assert_array_equal(out.data, ref.detach().numpy())
    g = np.random.default_rng(2).standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(a.grad, t.grad.numpy())
    np.testing.assert_array_equal(src.grad, tsrc.grad.numpy())
    np.testing.assert_array_equal(ag.index_add(leaf(x), 0, index, s).data,
                                  t.detach().index_add(0, torch.as_tensor(index),
                                                       torch.tensor(s)).numpy())


@pytest.mark.parametrize("index, source_shape, error, match", [
    ([0, 5], (2, 2), IndexError, "out of range"),
    ([-1], (1, 2), IndexError, "out of range"),
    ([[0, 1]], (2, 2), ag.ShapeError, "1-D"),
    ([0, 1], (3, 2), ag.ShapeError, "source needs shape"),
])
def test_index_add_refuses_what_torch_refuses(index, source_shape, error, match):
    with pytest.raises((RuntimeError, IndexError)):
        torch.zeros(4, 2).index_add(0, torch.tensor(index), torch.ones(source_shape))
    with pytest.raises(error, match=f"index_add: .*{match}"):
        leaf(np.zeros((4, 2))).index_add(0, np.array(index), leaf(np.ones(source_shape)))


# ------------------------------------------------------------------------ pad


def test_pad_width_is_numpy_s_and_maps_to_f_pad_reversed():
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    a, t = leaf(x), twin(x)
    out = ag.pad(a, ((0, 1), (2, 0), (1, 3)), value=-1.0)
    ref = torch.nn.functional.pad(t, (1, 3, 2, 0, 0, 1), value=-1.0)
    np.testing.assert_array_equal(out.data, ref.detach().numpy())
    check_backward(a, t, out, ref)
    np.testing.assert_array_equal(np.pad(leaf(x), 1).data, np.pad(x, 1))


def test_pad_refuses_negative_and_misshapen_widths():
    with pytest.raises(ValueError, match="pad: .*negative"):
        ag.pad(leaf(np.zeros((2, 2))), -1)
    with pytest.raises(ValueError, match="pad: .*does not fit 2 dimensions"):
        ag.pad(leaf(np.zeros((2, 2))), ((1, 1), (1, 1), (1, 1)))


def test_pad_keeps_float32():
    out = ag.pad(ag.Tensor(np.ones(2, dtype=np.float32), requires_grad=True), 1,
                 value=np.float64(2.0))
    assert out.dtype == np.float32


# ------------------------------------------------------------------------ einsum

EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),        # matmul
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),  # batch matmul
    ("i,j->ij", [(3,), (4,)]),              # outer
    ("ii->i", [(3, 3)]),                    # diagonal
    ("ii", [(3, 3)]),                       # trace, implicit
    ("ij->", [(3, 4)]),                     # sum
    ("ij,jk", [(3, 4), (4, 2)]),            # implicit matmul
    ("iij,jk->ki", [(3, 3, 4), (4, 2)]),    # diagonal inside a product
    ("ij,kl->i", [(2, 3), (4, 5)]),         # letters only one operand has
    ("ij,ij->ij", [(3, 1), (1, 4)]),        # length-1 axes broadcast
    ("cB,Ba", [(2, 3), (3, 4)]),            # implicit output: alphabetical, A-Z first
]


@pytest.mark.parametrize("spec, shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_against_torch(spec, shapes):
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal(s) for s in shapes]
    ours, theirs = [leaf(x) for x in xs], [twin(x) for x in xs]
    out, ref = ag.einsum(spec, *ours), torch.einsum(spec, *theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.einsum(spec, *[leaf(x) for x in xs]).data, out.data)


@pytest.mark.parametrize("call, match", [
    (lambda a: ag.einsum("...i->i", a), r"'\.\.\.' is not supported"),
    (lambda a: ag.einsum("ij,jk->ik", a), "2 operand term"),
    (lambda a: ag.einsum("ijk", a), "one letter per dimension"),
    (lambda a: ag.einsum("ij,jk->ik", a, leaf(np.ones((4, 2)))), "einsum 'ij,jk->ik' on "),
])
def test_einsum_errors_name_the_op(call, match):
    with pytest.raises(ValueError, match=match):
        call(leaf(np.ones((2, 3))))


def test_einsum_sums_a_letter_only_one_operand_has_first_as_torch():
    # j has length 3 only in a: summed before the product, so an infinite b gives
    # ±inf where summing the products would meet inf - inf = NaN
    a = np.array([[[1.0], [-2.0], [0.5]]])  # (1, 3, 1): the sum over j is -0.5
    b = np.array([[-np.inf]])  # (1, 1): j of length 1, broadcast
    out = ag.einsum("ijk,jm", ag.Tensor(a), ag.Tensor(b))
    ref = torch.einsum("ijk,jm", torch.tensor(a), torch.tensor(b))
    np.testing.assert_array_equal(out.data, ref.numpy())
    assert np.isposinf(out.data).all()


# ------------------------------------------------------------------------ scatter_add


def test_scatter_add_is_the_adjoint_of_gather():
    rng = np.random.default_rng(5)
    index = rng.integers(0, 4, (3, 5))
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    gathered = leaf(x).gather(1, index)
    scattered = ag.scatter_add(ag.Tensor(np.zeros((3, 4))), 1, index, ag.Tensor(y))
    # <gather(x), y> = <x, scatter_add(0, y)>
    np.testing.assert_allclose((gathered.data * y).sum(), (x * scattered.data).sum())
    a, s, t, ts = leaf(x), leaf(y), twin(x), twin(y)
    out = a.scatter_add(1, index, s)
    ref = t.scatter_add(1, torch.as_tensor(index), ts)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12)
    check_backward(a, t, out, ref)
    np.testing.assert_array_equal(s.grad, ts.grad.numpy())


def test_scatter_add_with_a_larger_source_uses_the_part_index_covers():
    src = leaf(np.arange(6.0).reshape(2, 3))
    out = leaf(np.zeros((2, 2))).scatter_add(1, np.array([[1], [0]]), src)
    expected = torch.zeros(2, 2).double().scatter_add(
        1, torch.tensor([[1], [0]]), torch.arange(6.0).double().reshape(2, 3))
    np.testing.assert_array_equal(out.data, expected.numpy())
    out.backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(src.grad, [[2.0, 0.0, 0.0], [3.0, 0.0, 0.0]])


@pytest.mark.parametrize("index, source_shape, error, match", [
    ([[0, 2]], (1, 2), IndexError, "out of range"),
    ([[0, 1, 0]], (1, 2), ag.ShapeError, "no larger"),
    ([0, 1], (2,), ag.ShapeError, "as many dimensions"),
])
def test_scatter_add_refuses_what_torch_refuses(index, source_shape, error, match):
    with pytest.raises(RuntimeError):
        torch.zeros(2, 2).scatter_add(1, torch.tensor(index), torch.ones(source_shape))
    with pytest.raises(error, match=f"scatter_add: .*{match}"):
        leaf(np.zeros((2, 2))).scatter_add(1, np.array(index), leaf(np.ones(source_shape)))
