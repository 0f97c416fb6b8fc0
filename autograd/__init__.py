"""chainrule's engine: reverse-mode automatic differentiation on NumPy.

    import autograd as ag
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad  # array([2., 4.])
"""

from .anomaly import AnomalyError, detect_anomaly, register_library
from .engine import (
    BackwardStep,
    backward_steps,
    once_differentiable,
    topological_order,
    unbroadcast,
)
from .function import (
    Function,
    ShapeError,
    current_scope,
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    name_scope,
    no_grad,
    set_default_dtype,
    set_grad_enabled,
)
from .functional import (
    avg_pool2d,
    broadcast_to,
    concat,
    conv1d,
    conv2d,
    cumsum,
    einsum,
    expand_dims,
    flatten,
    grad,
    hessian,
    hvp,
    index_add,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    logsumexp,
    max_pool2d,
    maximum,
    minimum,
    norm,
    pad,
    scatter_add,
    squeeze,
    stack,
    std,
    take_along_axis,
    unsqueeze,
    value_and_grad,
    var,
    vjp,
    where,
)
from .gradcheck import (
    GradcheckError,
    GradcheckResult,
    gradcheck,
    gradgradcheck,
    numerical_grad,
)
from .hooks import RemovableHandle
from .tensor import Tensor
from .viz import BackwardTrace, GraphvizNotFoundError, TraceStep, draw_graph, trace_backward

__all__ = [
    "Tensor", "Function", "ShapeError", "RemovableHandle",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "set_default_dtype", "get_default_dtype", "name_scope", "current_scope",
    "concat", "stack", "where", "maximum", "minimum", "grad", "value_and_grad",
    "gradcheck", "numerical_grad", "GradcheckError", "GradcheckResult",
    "backward_steps", "BackwardStep", "topological_order", "unbroadcast",
    "draw_graph", "GraphDrawing", "GraphvizNotFoundError",
    "trace_backward", "BackwardTrace", "TraceStep", "detect_anomaly", "AnomalyError",
    "register_library",
    "squeeze", "unsqueeze", "expand_dims", "flatten", "logsumexp", "var", "std", "norm",
    "cumsum",
    "pad", "take_along_axis", "index_add", "scatter_add", "einsum",
    "conv1d", "conv2d",
    "max_pool2d", "avg_pool2d",
    # derivatives of derivatives
    "broadcast_to", "vjp", "jvp", "jacobian", "jacrev", "jacfwd", "hessian", "hvp", "gradgradcheck",
    "once_differentiable",
]

# -- the (n,)-with-(n, 1) broadcast warning
from .broadcasting import (  # noqa: E402
    BroadcastWarning,
    broadcast_warnings_enabled,
    set_broadcast_warnings,
)

__all__ += ["BroadcastWarning", "set_broadcast_warnings", "broadcast_warnings_enabled"]

# -- ONNX export: each op says how it exports (its ``onnx`` attribute)
from .export import OnnxExportError, export_onnx, onnx_node  # noqa: E402

__all__ += ["export_onnx", "onnx_node", "OnnxExportError"]

# -- gradients derived by hand, compared with the engine's
from .gradcheck import GradComparison, GradMismatchError, compare_grads  # noqa: E402

__all__ += ["compare_grads", "GradComparison", "GradMismatchError"]

__version__ = "0.1.0"


def __getattr__(name):
    # GraphDrawing subclasses graphviz.Digraph: looked up here, graphviz is imported
    # (import autograd itself never imports graphviz; draw_graph does when called)
    if name == "GraphDrawing":
        from . import viz

        return viz.GraphDrawing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
