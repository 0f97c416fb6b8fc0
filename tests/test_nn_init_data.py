"""Initialisation, randomness, Dropout, and the data helpers."""

import math

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F


def test_linear_init_matches_pytorch_bounds():
    nn.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.data, lin.bias.data
    assert w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # uniform on [-bound, bound]: variance bound²/3
    assert abs(w.var() - bound**2 / 3) < 0.05 * bound**2 / 3
    assert abs(w.mean()) < 0.01 * bound


def test_initialisers():
    rng = np.random.default_rng(0)
    w = nn.Parameter(np.zeros((200, 300)))
    nn.init.xavier_uniform_(w, rng=rng)
    a = math.sqrt(6 / 500)
    assert np.abs(w.data).max() <= a and abs(w.data.var() - a**2 / 3) < 0.05 * a**2 / 3
    nn.init.xavier_normal_(w, rng=rng)
    assert abs(w.data.std() - math.sqrt(2 / 500)) < 0.02 * math.sqrt(2 / 500)
    nn.init.kaiming_normal_(w, nonlinearity="relu", rng=rng)
    assert abs(w.data.std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)
    nn.init.kaiming_uniform_(w, nonlinearity="relu", rng=rng)
    assert np.abs(w.data).max() <= math.sqrt(6 / 300)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", rng=rng)
    assert abs(w.data.std() - math.sqrt(2 / 200)) < 0.02 * math.sqrt(2 / 200)
    assert nn.init.zeros_(w) is w and not w.data.any()
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(3)))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        nn.init.calculate_gain("swish")


def test_manual_seed_reproduces_weights_and_rng_argument():
    nn.manual_seed(123)
    a = nn.MLP([5, 7, 2])
    nn.manual_seed(123)
    b = nn.MLP([5, 7, 2])
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    c = nn.MLP([5, 7, 2], rng=7)
    d = nn.MLP([5, 7, 2], rng=np.random.default_rng(7))
    for p, q in zip(c.parameters(), d.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert not np.allclose(a.layers[0].weight.data, c.layers[0].weight.data)
    with pytest.raises(TypeError, match="rng"):
        nn.Linear(2, 2, rng="seed")


def test_float32_linear():
    lin = nn.Linear(3, 2, dtype=np.float32)
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32


def test_dropout_statistics_in_train_mode():
    drop = nn.Dropout(0.3, rng=0)
    x = ag.Tensor(np.ones((400, 500)))
    y = drop(x).data
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.005  # 200,000 draws: 4 sigma is about 0.004
    np.testing.assert_allclose(y[kept], 1 / 0.7)  # survivors are scaled up
    assert abs(y.mean() - 1.0) < 0.01  # the expected value is unchanged
    # a new mask every call
    assert not np.array_equal(y, drop(x).data)


def test_dropout_gradient_follows_the_mask():
    drop = nn.Dropout(0.5, rng=1)
    x = ag.Tensor(np.ones((50, 40)), requires_grad=True)
    y = drop(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)


def test_dropout_is_identity_in_eval_mode_and_edge_cases():
    m = nn.MLP([4, 8, 2], dropout=0.5)
    x = ag.Tensor(np.random.default_rng(0).standard_normal((3, 4)))
    m.eval()
    np.testing.assert_array_equal(m(x).data, m(x).data)
    d = nn.Dropout(0.5).eval()
    assert d(x) is x
    assert F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).data.any()
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


def test_dropout_reproducible_with_seed():
    x = ag.Tensor(np.ones((10, 10)))
    nn.manual_seed(5)
    a = nn.Dropout(0.5)(x).data
    nn.manual_seed(5)
    b = nn.Dropout(0.5)(x).data
    np.testing.assert_array_equal(a, b)


def test_train_val_test_split_sizes_and_disjointness():
    X = np.arange(200).reshape(100, 2)
    y = np.arange(100)
    s = nn.data.train_val_test_split(X, y, val_size=0.2, test_size=0.1, rng=0)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = s
    assert (len(Xtr), len(Xva), len(Xte)) == (70, 20, 10)
    assert sorted(np.concatenate([ytr, yva, yte]).tolist()) == list(range(100))
    np.testing.assert_array_equal(Xtr[:, 0] // 2, ytr)  # rows stay paired
    again = nn.data.train_val_test_split(X, y, val_size=0.2, test_size=0.1, rng=0)
    np.testing.assert_array_equal(again.train[1], ytr)
    s = nn.data.train_val_test_split(X, y, val_size=5, test_size=0, rng=0)
    assert (len(s.train[0]), len(s.val[0]), len(s.test[0])) == (95, 5, 0)
    with pytest.raises(ValueError, match="no training samples"):
        nn.data.train_val_test_split(X, y, val_size=0.5, test_size=0.5)
    with pytest.raises(ValueError, match="X has 100 samples but y has 3"):
        nn.data.train_val_test_split(X, y[:3])


def test_stratified_split_keeps_class_shares():
    y = np.array([0] * 80 + [1] * 20).reshape(-1, 1)
    X = np.zeros((100, 3))
    s = nn.data.train_val_test_split(X, y, val_size=0.2, test_size=0.2, stratify=True, rng=1)
    assert s.val[1].mean() == pytest.approx(0.2)
    assert s.test[1].mean() == pytest.approx(0.2)
    assert s.train[1].mean() == pytest.approx(0.2)


def test_batches():
    X = np.arange(10)
    y = np.arange(10) * 10
    got = list(nn.data.batches(X, y, batch_size=4, shuffle=False))
    assert [len(b[0]) for b in got] == [4, 4, 2]
    np.testing.assert_array_equal(got[0][0], [0, 1, 2, 3])
    shuffled = list(nn.data.batches(X, y, batch_size=3, rng=0))
    xs = np.concatenate([b[0] for b in shuffled])
    assert sorted(xs.tolist()) == list(range(10)) and xs.tolist() != list(range(10))
    for xb, yb in shuffled:
        np.testing.assert_array_equal(yb, xb * 10)
    assert [len(b) for b in nn.data.batches(X, batch_size=3, drop_last=True)] == [3, 3, 3]
    assert len(list(nn.data.batches(X, y, batch_size=None))) == 1


def test_make_case_study():
    X, y = nn.data.make_case_study(n=1000, d=10, seed=0)
    assert X.shape == (1000, 10) and y.shape == (1000, 1)
    assert set(np.unique(y)) == {0.0, 1.0}
    assert 0.4 < y.mean() < 0.6  # balanced-ish
    X2, y2 = nn.data.make_case_study(n=1000, d=10, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, y3 = nn.data.make_case_study(n=1000, d=10, seed=1)
    assert not np.array_equal(X, X3)
    # the same teacher labels every seed: identical inputs, identical labels
    Xa, ya = nn.data.make_case_study(n=50, seed=3)
    Xb, yb = nn.data.make_case_study(n=50, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(ya, yb)
    _, noisy = nn.data.make_case_study(n=1000, seed=0, label_noise=0.1)
    assert 0.05 < np.mean(noisy != y) < 0.15


def test_standardize_uses_training_statistics():
    rng = np.random.default_rng(0)
    tr = rng.normal(5, 3, (100, 2))
    te = rng.normal(5, 3, (50, 2))
    tr[:, 1] = 7.0  # a constant feature: centred, not divided by 0
    a, b, (mean, std) = nn.data.standardize(tr, te)
    np.testing.assert_allclose(a[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(a[:, 0].std(), 1)
    np.testing.assert_allclose(b, (te - mean) / std)
    assert np.all(a[:, 1] == 0)


def test_standardize_floors_nearly_constant_features():
    rng = np.random.default_rng(0)
    tr = rng.normal(0, 4.0, (2000, 5))
    tr[:, 3] = 0.0
    tr[0, 3] = 5.0  # blank but for one sample: std 0.11, far below the others' 4
    tr[:, 4] = 0.25  # constant
    te = np.zeros((1, 5))
    te[0, 3:] = [3.0, 1.25]
    a, b, (mean, scale) = nn.data.standardize(tr, te, std_floor=0.1)
    typical = np.median(tr[:, :3].std(axis=0))
    np.testing.assert_allclose(scale[:3], tr[:, :3].std(axis=0))  # unit variance
    np.testing.assert_allclose(a[:, :3].std(axis=0), 1)
    # the near-constant and the constant feature are divided by the floor, 10% of typical
    np.testing.assert_allclose(scale[3:], 0.1 * np.median(tr[:, :4].std(axis=0)))
    assert 0.1 * typical * 0.9 < scale[3] < 0.1 * typical * 1.1
    assert np.abs(a[:, 3]).max() < 15  # not 45 standard deviations
    assert np.all(a[:, 4] == 0)
    np.testing.assert_allclose(b, (te - mean) / scale)
    # the default: plain per-feature scaling, constant features only centred
    a0, (_, scale0) = nn.data.standardize(tr)
    np.testing.assert_allclose(scale0[:4], tr[:, :4].std(axis=0))
    assert scale0[4] == 1.0 and np.abs(a0[:, 3]).max() > 40
    with pytest.raises(ValueError, match="std_floor"):
        nn.data.standardize(tr, std_floor=1.5)


def test_sklearn_loaders():
    pytest.importorskip("sklearn")
    bc = nn.data.load_breast_cancer()
    assert bc.train[0].shape[1] == 30 and bc.train[1].shape[1] == 1
    assert sum(len(p[0]) for p in bc) == 569
    np.testing.assert_allclose(bc.train[0].mean(axis=0), 0, atol=1e-10)
    dg = nn.data.load_digits()
    assert dg.train[0].shape[1] == 64 and dg.train[1].dtype.kind == "i"
    assert np.abs(dg.train[0]).max() < 25  # nearly blank border pixels are not blown up
    assert set(np.unique(dg.train[1])) == set(range(10))
    mo = nn.data.load_moons(n=200)
    assert sum(len(p[0]) for p in mo) == 200 and mo.test[0].shape[1] == 2
