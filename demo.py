"""``make demo``: chainrule's main job, end to end.

1. The chain rule on three scalars: build L = (a*b + c).tanh(), walk the backward pass
   one node at a time and print what each node receives and passes on.
"""

from __future__ import annotations

import autograd as ag


def _label(t) -> str:
    return t.name or (t.grad_fn.name if t.grad_fn is not None else "?")


def chain_rule_on_scalars() -> None:
    print("== 1. The chain rule on three scalars: L = tanh(a*b + c)")
    a = ag.Tensor(2.0, requires_grad=True, name="a")
    b = ag.Tensor(-0.5, requires_grad=True, name="b")
    c = ag.Tensor(0.3, requires_grad=True, name="c")
    ab = a * b
    ab.name = "a*b"
    z = ab + c
    z.name = "z"
    loss = z.tanh()
    loss.name = "L"
    print(f"forward: a*b = {ab.item():.4f}, z = a*b + c = {z.item():.4f}, "
          f"L = tanh(z) = {loss.item():.4f}")
    print("backward, one node at a time (dL/dnode, then what the chain rule sends on):")
    for k, step in enumerate(ag.backward_steps(loss), 1):
        node = step.node
        op = f" [{node.grad_fn.name}: {node.grad_fn.rule}]" if node.grad_fn is not None else ""
        print(f"  step {k}: dL/d{_label(node)} = {float(step.grad):+.4f}{op}")
        for parent, g in step.sent:
            print(f"      -> dL/d{_label(parent)} += {float(g):+.4f}")
    print(f"leaf gradients: a.grad = {a.grad:+.4f}, b.grad = {b.grad:+.4f}, "
          f"c.grad = {c.grad:+.4f}")
    check = ag.gradcheck(lambda a, b, c: (a * b + c).tanh(), [a, b, c])
    print(f"checked against finite differences: {'ok' if check else 'MISMATCH'}")


def main() -> None:
    chain_rule_on_scalars()


if __name__ == "__main__":
    main()
