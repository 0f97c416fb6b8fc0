"""chainrule's neural-network library, built on ``autograd``'s public API only.

    import nn
    import nn.functional as F

    nn.manual_seed(0)
    model = nn.MLP([10, 5, 5, 1], activation="sigmoid", output_activation="sigmoid")
    opt = nn.optim.SGD(model.parameters(), lr=0.5)
    history = nn.fit(model, nn.BCELoss(), opt, train=(X, y), epochs=100)

Names follow PyTorch: ``Module``, ``Parameter``, ``Sequential``, ``Linear``, ``MLP``,
``Flatten``, ``LayerNorm``, ``Embedding``, activation modules, ``Dropout``, losses in
``nn.functional`` and as ``...Loss`` modules, optimisers and schedules in ``nn.optim``,
gradient clipping in ``nn.utils``, initialisers in ``nn.init``. Datasets and splits
live in ``nn.data``; ``fit`` / ``evaluate`` / ``predict`` in ``nn.training``, with the
callbacks ``EarlyStopping`` and ``ProgressBar`` in ``nn.callbacks``; ``save`` / ``load``
(``.npz`` or ``.safetensors``, never pickle) and ``export_onnx`` in ``nn.io``.
"""

import autograd as ag

from . import data, functional, init, optim, utils
from .callbacks import EarlyStopping, ProgressBar
from .functional import l2_penalty
from .gradflow import GradFlowRecorder, grad_flow, grad_stats
from .init import manual_seed
from .io import LoadError, export_onnx, load, save
from .layers import (
    ELU,
    GELU,
    MLP,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    KLDivLoss,
    MSELoss,
    NLLLoss,
)
from .module import (
    IncompatibleKeys,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    Sequential,
    StateDictError,
)
from .training import History, NaNLossError, accuracy, evaluate, fit, predict

ag.register_library(__name__)  # anomaly mode points past nn, at the user's line

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "StateDictError",
    "IncompatibleKeys",
    "Linear", "MLP", "Dropout", "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "Identity",
    "Softmax", "LogSoftmax", "GELU", "SiLU", "ELU", "Softplus", "Flatten", "LayerNorm",
    "Embedding", "Conv1d", "Conv2d",
    "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d",
    "MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "KLDivLoss",
    "l2_penalty",
    "fit", "evaluate", "predict", "History", "NaNLossError", "accuracy",
    "EarlyStopping", "ProgressBar",
    "save", "load", "LoadError", "manual_seed",
    "GradFlowRecorder", "grad_flow", "grad_stats",
    "functional", "init", "optim", "data", "utils",
    "export_onnx",
]

# -- regression and margin losses
from .losses import (  # noqa: E402
    HingeEmbeddingLoss,
    HuberLoss,
    L1Loss,
    MultiMarginLoss,
    SmoothL1Loss,
)

__all__ += ["L1Loss", "SmoothL1Loss", "HuberLoss", "HingeEmbeddingLoss", "MultiMarginLoss"]

# ready-made networks for the examples and the tour: nn.models.digits_cnn()
from . import models  # noqa: E402

__all__ += ["models"]
