"""``make demo``: chainrule's main job, end to end.

1. The chain rule on three scalars: build L = tanh(a*b + c), walk the backward pass one
   node at a time and print what each node receives and passes on.
2. The case study: binary classification of N=1000 samples with D=10 features by an
   MLP 10-5-5-1 with sigmoid units and binary cross-entropy; training with a progress
   bar, validation and early stopping; train / validation / test accuracy.
3. Pictures of that network, written to out/: the graph of one loss after backward
   (graph.svg), a page that steps through that backward pass node by node
   (backprop.html), and the gradient reaching each layer (grad_flow.png).
"""

from __future__ import annotations

from pathlib import Path

import autograd as ag
import nn

OUT = Path("out")


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


def train_case_study():
    print("\n== 2. The case study: MLP 10-5-5-1, sigmoid units, binary cross-entropy")
    X, y = nn.data.make_case_study(n=1000, d=10, seed=0)
    train, val, test = nn.data.train_val_test_split(X, y, stratify=True, rng=0)
    print(f"data: {len(train[0])} training, {len(val[0])} validation, {len(test[0])} test "
          f"samples; {int(y.sum())} of {len(y)} labelled 1")
    nn.manual_seed(0)
    model = nn.MLP([10, 5, 5, 1], activation="sigmoid", output_activation="sigmoid")
    print(model)
    loss_fn = nn.BCELoss()
    optimizer = nn.optim.Adam(model.parameters(), lr=0.02)
    history = nn.fit(model, loss_fn, optimizer, train=train, val=val, epochs=200,
                     batch_size=64, metrics=["accuracy"], early_stopping=30,
                     progress=True, rng=0)
    if history.stopped_epoch:
        how = f"early stopping ended training after epoch {history.stopped_epoch}"
    else:
        how = f"trained {len(history)} epochs"
    print(f"{how}; best validation loss at epoch {history.best_epoch} "
          "(weights restored from there)")
    for name, (Xs, ys) in (("train", train), ("validation", val), ("test", test)):
        result = nn.evaluate(model, loss_fn, Xs, ys, metrics=["accuracy"])
        print(f"  {name:<10} loss {result['loss']:.4f}  accuracy {result['accuracy']:.3f}")
    return model, loss_fn, test


def draw_pictures(model, loss_fn, test) -> None:
    print("\n== 3. Pictures of the trained network")
    OUT.mkdir(exist_ok=True)
    X, y = test[0][:4], test[1][:4]  # four samples keep every number readable
    model.zero_grad()
    loss = loss_fn(model(ag.Tensor(X, name="x")), ag.Tensor(y, name="y"))
    loss.name = "loss"
    trace = ag.trace_backward(loss)  # runs the backward pass, recording every step
    ag.draw_graph(loss, grads=trace, title="BCE loss of 4 test samples").save(OUT / "graph.svg")
    trace.to_html(OUT / "backprop.html", title="Backpropagation through MLP 10-5-5-1")
    nn.grad_flow(model, title="Gradient per layer (4 test samples)").savefig(
        OUT / "grad_flow.png", dpi=120, bbox_inches="tight")
    for name, what in (("graph.svg", "the graph, edges coloured by gradient magnitude"),
                       ("backprop.html", f"the backward pass in {len(trace)} steps; open it "
                                         "in a browser, use Next / Previous or the arrows"),
                       ("grad_flow.png", "mean and max |gradient| per parameter")):
        print(f"  {OUT / name}: {what}")


def main() -> None:
    chain_rule_on_scalars()
    model, loss_fn, test = train_case_study()
    draw_pictures(model, loss_fn, test)


if __name__ == "__main__":
    main()
