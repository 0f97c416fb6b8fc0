"""``Parameter``, ``Module`` and ``Sequential``: how a network keeps track of its weights.

A ``Module`` is a Python object whose attributes may be Parameters (trainable tensors)
or other Modules. Assigning one registers it, so the module can list every weight it
owns, by a dotted path::

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(10, 5)    # registered as a child called "hidden"
            self.out = nn.Linear(5, 1)

        def forward(self, x):
            return self.out(self.hidden(x).sigmoid()).sigmoid()

    net = Net()
    [name for name, p in net.named_parameters()]
    # ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    net.hidden.weight.name   # 'hidden.weight': the parameter knows its own path

Calling a module (``net(x)``) runs its ``forward`` inside ``ag.name_scope(<its name in
its parent>, <its class>)``, so each op records where in the network it was made
(``ctx.scope``, e.g. ``"layers.0"``) and what made it (``Linear``): graph drawings group
a layer's ops in a box titled ``layers.0 · Linear`` this way.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

import autograd as ag

__all__ = ["Parameter", "Module", "Sequential", "StateDictError", "IncompatibleKeys"]


class Parameter(ag.Tensor):
    """A Tensor that is a trainable weight of a module: it requires grad by default.

    ``Parameter(data, requires_grad=True, dtype=None, name=None)``. The values are
    copied. Once assigned into a module, ``.name`` holds the parameter's dotted path in
    the outermost module (``"layers.0.weight"``); pictures and error messages use it.
    Arithmetic on a Parameter gives ordinary Tensors, recorded in the graph as usual.
    """

    def __init__(self, data, requires_grad: bool = True, dtype=None, name: str | None = None):
        if isinstance(data, ag.Tensor):
            data = data.numpy()
        super().__init__(data, requires_grad=False, dtype=dtype, name=name)
        if self.dtype.kind != "f":
            raise TypeError(
                f"Parameter: weights must be floating point, got dtype {self.dtype}; "
                "pass float data or dtype=np.float32 / np.float64")
        self.requires_grad = bool(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(RuntimeError):
    """``load_state_dict`` found missing or unexpected keys, or shapes that do not fit."""


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped."""

    missing_keys: list
    unexpected_keys: list


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class Module:
    """Base class of every layer and network.

    Subclasses call ``super().__init__()`` first, assign Parameters and sub-modules as
    attributes, and define ``forward``. Then:

    - ``parameters()`` / ``named_parameters()``: every trainable weight, each listed once
      even when it is shared, with dotted names (``"layers.0.weight"``);
    - ``children()`` / ``modules()`` (and their ``named_`` forms): the sub-modules;
    - ``zero_grad()``; ``train()`` / ``eval()`` (``self.training``, read by Dropout);
    - ``state_dict()`` / ``load_state_dict()``: the weights as ``{name: ndarray}``.
    """

    training: bool

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = {}
        d["_buffers"] = {}  # name -> Tensor (no grad) or None: state that is not trained
        d["_non_persistent"] = set()  # buffers left out of state_dict()
        d["_modules"] = {}
        d["_forward_hooks"] = {}
        d["_path"] = ""  # dotted path in the outermost module it was assigned into
        d["_scope_name"] = ""  # the name scope forward runs in: its name in its parent
        d["training"] = True

    # ------------------------------------------------------------------ forward
    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__}: a Module subclass must define forward(self, ...)")

    def __call__(self, *args, **kwargs):
        scope = self._scope_name
        if scope:
            with ag.name_scope(scope, type(self).__name__):
                out = self.forward(*args, **kwargs)
        else:  # a top-level module: no scope of its own
            out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                r = hook(self, args, out)
                if r is not None:
                    out = r
        return out

    def register_forward_hook(self, hook) -> ag.RemovableHandle:
        """``hook(module, inputs, output)`` runs after each forward; it may return a new
        output. Returns an ``ag.RemovableHandle``: ``.remove()`` takes the hook off
        again, and ``with module.register_forward_hook(hook): ...`` keeps it on for the
        block only."""
        handle = ag.RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if params is None and isinstance(value, (Parameter, Module)):
            raise AttributeError(
                f"cannot assign {type(value).__name__} {name!r} before Module.__init__() "
                f"ran: call super().__init__() at the start of {type(self).__name__}"
                ".__init__")
        if isinstance(value, Parameter):
            if name in d["_buffers"]:
                raise TypeError(f"{type(self).__name__}.{name} is a buffer: assign values "
                                "(an array or a Tensor), not a Parameter; delete it first "
                                "to make it a trained weight")
            self._modules.pop(name, None)
            params[name] = value
            d[name] = value
            value.name = _join(self._path, name)
        elif isinstance(value, Module):
            params.pop(name, None)
            self._modules[name] = value
            d[name] = value
            value._set_path(_join(self._path, name))
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to {type(self).__name__}.{name}, "
                    f"which is a parameter: assign an nn.Parameter (or None). To change the "
                    f"values in place, write to .data: module.{name}.data[...] = values")
            params[name] = None
            d[name] = None
        elif params is not None and name in d["_buffers"]:
            self._buffers[name] = d[name] = _as_buffer(value, type(self).__name__, name)
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to {type(self).__name__}.{name}, "
                    "which is a sub-module: assign an nn.Module (or None)")
            self._modules[name] = None
            d[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # only reached when normal lookup fails: registered names live in __dict__ too
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        d.get("_parameters", {}).pop(name, None)
        d.get("_buffers", {}).pop(name, None)
        d.get("_non_persistent", set()).discard(name)
        d.get("_modules", {}).pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None: a declared but absent weight, like ``bias``)."""
        if param is None:
            self._declare_absent(name, self._parameters)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Register state that is not trained (running statistics of a batch norm):
        ``tensor`` (a Tensor or an array, or None) is kept as a Tensor without grad,
        read as ``self.<name>``, left out of ``parameters()`` (so no optimiser moves
        it), and saved in ``state_dict()`` unless ``persistent=False``. Assigning
        ``self.<name> = values`` later replaces it."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: the name must be a non-empty string "
                           f"without '.', got {name!r}")
        d = self.__dict__
        if "_buffers" not in d:
            raise AttributeError(f"cannot register buffer {name!r} before Module.__init__() "
                                 f"ran: call super().__init__() at the start of "
                                 f"{type(self).__name__}.__init__")
        if name in d and name not in self._buffers:
            raise KeyError(f"register_buffer: {type(self).__name__} already has an "
                           f"attribute {name!r}; choose another name for the buffer")
        self._declare_absent(name, self._buffers)
        self._buffers[name] = d[name] = _as_buffer(tensor, type(self).__name__, name)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` under ``name`` (same as assigning the attribute)."""
        if module is None:
            self._declare_absent(name, self._modules)
        else:
            setattr(self, name, module)

    def _declare_absent(self, name: str, registry: dict) -> None:
        """``name`` is declared in ``registry`` but holds None (a Linear without bias),
        and in no other registry."""
        for other in (self._parameters, self._buffers, self._modules):
            if other is not registry:
                other.pop(name, None)
        registry[name] = None
        self.__dict__[name] = None

    def _set_path(self, path: str) -> None:
        """Record where this module sits, and rename its parameters after it."""
        for mpath, m in self.named_modules(prefix=path):
            m.__dict__["_path"] = mpath
            m.__dict__["_scope_name"] = mpath.rsplit(".", 1)[-1]
        for pname, p in self.named_parameters(prefix=path):
            p.name = pname

    # ------------------------------------------------------------------ traversal
    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` pairs; a parameter shared by two layers once."""
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mpath, m in modules:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield _join(mpath, name), p

    def named_buffers(self, prefix: str = "", recurse: bool = True
                      ) -> Iterator[tuple[str, ag.Tensor]]:
        """``(dotted name, buffer)`` for every buffer that is not None."""
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mpath, m in modules:
            for name, b in m._buffers.items():
                if b is not None:
                    yield _join(mpath, name), b

    def buffers(self, recurse: bool = True) -> Iterator[ag.Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def _named_state(self) -> Iterator[tuple[str, ag.Tensor]]:
        """What ``state_dict`` holds, in PyTorch's order: each module's parameters,
        then its persistent buffers, module by module."""
        for mpath, m in self.named_modules():
            for name, p in m._parameters.items():
                if p is not None:
                    yield _join(mpath, name), p
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    yield _join(mpath, name), b

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every Parameter, each once (pass them to an optimiser)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules with their attribute names."""
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module (depth first), each once, with dotted paths."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            path, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield path, m
            subs = [(_join(path, n), c) for n, c in m._modules.items() if c is not None]
            stack.extend(reversed(subs))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every sub-module and then on this one; returns self."""
        for m in list(self.modules())[::-1]:
            fn(m)
        return self

    # ------------------------------------------------------------------ modes, grads
    def train(self, mode: bool = True) -> Module:
        """Training mode (Dropout active) for this module and all below; returns self."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (Dropout is the identity); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``)."""
        for p in self.parameters():
            p.grad = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> OrderedDict:
        """``{dotted name: ndarray}``: a copy of every parameter's values and of every
        persistent buffer's (keys and order as PyTorch's for the same architecture)."""
        return OrderedDict((name, t.numpy().copy()) for name, t in self._named_state())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into the parameters and buffers (in place).

        With ``strict=True`` (the default) the keys must match ``state_dict()``'s
        exactly. Shapes must always match. Nothing is changed unless everything fits;
        a ``StateDictError`` lists every problem. Values are cast to each parameter's
        dtype. Returns the ``(missing_keys, unexpected_keys)`` that were skipped.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a dict of name -> array, got "
                            f"{type(state_dict).__name__}")
        own = OrderedDict(self._named_state())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems, values = [], {}
        for name, p in own.items():
            if name not in state_dict:
                continue
            v = state_dict[name]
            v = v.numpy() if isinstance(v, ag.Tensor) else np.asarray(v)
            if v.dtype.kind not in "biuf":
                problems.append(f"{name}: value has dtype {v.dtype}, expected numbers")
            elif v.shape != p.shape:
                problems.append(f"size mismatch for {name}: the state dict has shape "
                                f"{v.shape}, the model's has shape {p.shape}")
            else:
                values[name] = v
        if strict and missing:
            problems.insert(0, "missing key(s): " + ", ".join(map(repr, missing)) +
                            " (the model has these, the state dict does not)")
        if strict and unexpected:
            problems.insert(int(strict and bool(missing)),
                            "unexpected key(s): " + ", ".join(map(repr, unexpected)) +
                            " (in the state dict, but not parameters or buffers of this "
                            "model)")
        if problems:
            raise StateDictError(
                f"Error(s) in loading state_dict for {type(self).__name__} (nothing was "
                "loaded):\n  " + "\n  ".join(problems) +
                "\nCheck that the model is built with the same layers and sizes as the one "
                "that was saved" + ("; strict=False skips missing and unexpected keys "
                                    "(shape mismatches are always errors)." if strict else "."))
        for name, v in values.items():
            own[name].data[...] = v  # cast to the parameter's or buffer's dtype
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (override it)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            if m is None:
                continue
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}(" + (f"\n  {extra}" if extra else "")
        return head + "\n" + "\n".join(lines) + "\n)"


def _as_buffer(value, owner: str, name: str):
    """A buffer's value: None, or a Tensor without grad holding numbers."""
    if value is None:
        return None
    if isinstance(value, Parameter):
        raise TypeError(f"{owner}.{name} is a buffer: assign values (an array or a "
                        "Tensor), not a Parameter (register_parameter makes a weight)")
    t = value if isinstance(value, ag.Tensor) else ag.Tensor(np.asarray(value))
    return t.detach() if t.requires_grad else t


class _ModuleSequence(Module):
    """Children named ``"0"``, ``"1"``, ... in order: what Sequential and ModuleList
    share (indexing, ``len``, iteration, ``append``)."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module: Module):
        return self._add(str(len(self._modules)), module)

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def _add(self, name: str, module: Module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: item {name} is a "
                            f"{type(module).__name__}, not an nn.Module (wrap functions in a "
                            "Module subclass)")
        setattr(self, name, module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx):
        items = list(self._modules.items())
        if isinstance(idx, slice):
            # a view on the same modules: keep their names (do not re-register them)
            new = type(self)()
            for name, m in items[idx]:
                new._modules[name] = m
                new.__dict__[name] = m
            return new
        try:
            return items[idx][1]
        except (IndexError, TypeError):
            raise IndexError(f"{type(self).__name__}: index {idx!r} out of range for "
                             f"{len(items)} module(s)") from None

    def __setitem__(self, idx: int, module: Module) -> None:
        name = list(self._modules)[idx] if -len(self) <= idx < len(self) else None
        if name is None:
            raise IndexError(f"{type(self).__name__}: index {idx!r} out of range for "
                             f"{len(self)} module(s)")
        self._add(name, module)


class Sequential(_ModuleSequence):
    """Modules applied one after another: ``Sequential(m0, m1, ...)(x) = ...m1(m0(x))``.

    The children are named ``"0"``, ``"1"``, ... (or by an ``OrderedDict`` of
    name -> module). Index with ``seq[i]``; ``seq[a:b]`` is a Sequential of the same
    module objects (sharing their weights).
    """

    def __init__(self, *modules):
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            super().__init__()
            for name, m in modules[0].items():
                self._add(name, m)
        else:
            super().__init__(modules)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(_ModuleSequence):
    """A list of modules, registered so that their parameters are the owner's
    (``self.blocks = nn.ModuleList([...])``; names ``blocks.0.weight``, as PyTorch's).
    It has no forward of its own: loop over it in the owner's forward."""


class ModuleDict(Module):
    """A dict of modules, registered so that their parameters are the owner's
    (``self.heads = nn.ModuleDict({"a": ..., "b": ...})``; names ``heads.a.weight``)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def update(self, modules) -> None:
        items = modules.items() if hasattr(modules, "items") else modules
        for name, m in items:
            self[name] = m

    def __setitem__(self, name: str, module: Module) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"ModuleDict: keys are non-empty strings without '.', got "
                           f"{name!r}")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: item {name!r} is a {type(module).__name__}, not "
                            "an nn.Module")
        setattr(self, name, module)

    def __getitem__(self, name: str) -> Module:
        try:
            return self._modules[name]
        except KeyError:
            raise KeyError(f"ModuleDict: no module {name!r}; it has "
                           f"{', '.join(map(repr, self._modules)) or 'none'}") from None

    def __delitem__(self, name: str) -> None:
        self[name]  # a clear KeyError for a missing name
        delattr(self, name)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, name) -> bool:
        return name in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
