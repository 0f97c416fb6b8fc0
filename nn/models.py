"""Small ready-made networks, built from ``nn``'s layers, for the examples and the tour.

- ``digits_cnn()``: a convolutional network for 1×8×8 images such as scikit-learn's
  digits (``nn.data.load_digits(images=True)``).
"""

from __future__ import annotations

from collections import OrderedDict

from .init import get_rng
from .layers import AvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU
from .module import Sequential

__all__ = ["digits_cnn"]


def digits_cnn(channels=(16, 32), num_classes: int = 10, image_size: int = 8, dtype=None,
               rng=None) -> Sequential:
    """Two blocks of conv 3×3 (padding 1) → batch norm → ReLU → average pool 2×2, then
    a linear layer to ``num_classes`` logits::

        (N, 1, 8, 8) -conv1,bn1,relu1-> (N, 16, 8, 8) -pool1-> (N, 16, 4, 4)
                     -conv2,bn2,relu2-> (N, 32, 4, 4) -pool2-> (N, 32, 2, 2)
                     -flatten-> (N, 128) -fc-> (N, 10)

    A ``Sequential`` with named layers (``conv1``, ``bn1``, ``relu1``, ``pool1``,
    ``conv2``, ..., ``flatten``, ``fc``), so its ``state_dict`` keys (``conv1.weight``,
    ``bn1.running_mean``, ``bn1.num_batches_tracked``, ...) and shapes are those of
    ``torch.nn.Sequential`` over the same ``OrderedDict`` of ``torch.nn`` layers.
    Each pooling halves the image, so ``image_size`` must be a multiple of 4. The
    convolutions have no bias: the batch norm after each removes it anyway. The pools
    average: on images as small as 8×8, keeping only the largest of 4 values drops much
    of what is there (with max pooling this network scored lower on the digits'
    validation set).
    ``dtype`` and ``rng`` as for the layers (default: float64, ``nn.manual_seed``'s
    generator).
    """
    c1, c2 = (int(c) for c in channels)
    if c1 < 1 or c2 < 1 or num_classes < 1:
        raise ValueError(f"digits_cnn: channels and num_classes must be positive, got "
                         f"channels={tuple(channels)}, num_classes={num_classes}")
    if image_size < 4 or image_size % 4:
        raise ValueError(f"digits_cnn: image_size must be a multiple of 4 (two poolings "
                         f"halve it), got {image_size}")
    side = image_size // 4
    rng = get_rng(rng)  # one generator for all layers (an int seed is read once)
    return Sequential(OrderedDict([
        ("conv1", Conv2d(1, c1, 3, padding=1, bias=False, dtype=dtype, rng=rng)),
        ("bn1", BatchNorm2d(c1, dtype=dtype)),
        ("relu1", ReLU()),
        ("pool1", AvgPool2d(2)),
        ("conv2", Conv2d(c1, c2, 3, padding=1, bias=False, dtype=dtype, rng=rng)),
        ("bn2", BatchNorm2d(c2, dtype=dtype)),
        ("relu2", ReLU()),
        ("pool2", AvgPool2d(2)),
        ("flatten", Flatten()),
        ("fc", Linear(c2 * side * side, num_classes, dtype=dtype, rng=rng)),
    ]))
