"""The Jupyter widget of a traced backward pass (``BackwardTrace.widget``).

Imported only when a widget is asked for: ``ipywidgets`` is needed here and nowhere else.
"""

from __future__ import annotations

import ipywidgets as W

from .explain import panel_html
from .page import PANEL_CSS

__all__ = ["trace_widget"]


def trace_widget(trace) -> W.VBox:
    """Previous / Next buttons, a slider and a label over the frame of the current step
    and its numbers panel (the same panel as the HTML page)."""
    n = len(trace) - 1
    slider = W.IntSlider(value=0, min=0, max=n, description="Step", continuous_update=False)
    prev = W.Button(description="Previous", icon="arrow-left")
    nxt = W.Button(description="Next", icon="arrow-right")
    label = W.Label()
    fig = W.HTML(layout=W.Layout(width="68%"))
    panel = W.HTML(layout=W.Layout(width="32%"))
    style = f"<style>{PANEL_CSS}</style>"

    def show(change=None):
        i = slider.value
        label.value = f"Step {i} of {n}"
        fig.value = f'<div style="overflow:auto">{trace.svg(i)}</div>'
        panel.value = style + panel_html(trace, trace[i])
        prev.disabled, nxt.disabled = i == 0, i == n

    def move(delta):
        slider.value = min(n, max(0, slider.value + delta))

    prev.on_click(lambda _: move(-1))
    nxt.on_click(lambda _: move(1))
    slider.observe(show, names="value")
    show()
    return W.VBox([W.HBox([prev, nxt, slider, label]), W.HBox([fig, panel])])
