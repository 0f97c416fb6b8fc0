"""The Jupyter widget of a traced backward pass (``BackwardTrace.widget``).

Imported only when a widget is asked for: ``ipywidgets`` is needed here and nowhere else.
The widget shows the same viewer as the standalone page (``viewer``): an ``Output``
widget holding its HTML, whose script runs in the notebook (JupyterLab and Notebook
run the scripts of the outputs they display), so it needs no Jupyter extension.
"""

from __future__ import annotations

import itertools

import ipywidgets as W

from .explain import panel_html
from .viewer import viewer_html

__all__ = ["trace_widget"]

_ids = itertools.count()


def trace_widget(trace) -> W.Output:
    """An ``Output`` widget showing the step-through viewer of ``trace``: Previous /
    Next, a slider, zoom and pan, the overview, and the numbers panel of each step."""
    from IPython.display import HTML

    panels = [panel_html(trace, s) for s in trace.steps]
    uid = f"chainrule-viewer-{id(trace):x}-{next(_ids)}"
    out = W.Output(layout=W.Layout(width="100%"))
    out.append_display_data(HTML(viewer_html(trace.frames(), panels, uid,
                                                  scopes=trace.step_scopes())))
    return out
