"""Plotly figures of job results, drawn like the result pages (plotly is an optional dependency)."""

from __future__ import annotations

from typing import Any

import numpy as np


def figure_of(kind: str, result: dict[str, Any], *, title: str = ""):
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ImportError("job.show() needs plotly: pip install 'terrain-client[notebook]'") from None
    fig = go.Figure()
    if kind == "landscape" and result.get("kind") == "line":
        fig.add_scatter(x=result["t"], y=result["loss"], mode="lines", name="loss")
        fig.update_layout(xaxis_title="t", yaxis_title="loss")
    elif kind == "landscape":
        # loss[i][j] is at (a[i], b[j]): Plotly's z[row][col] is at (y[row], x[col]), so a runs along y.
        fig.add_contour(x=result["b"], y=result["a"], z=result["loss"], colorscale="Viridis", colorbar={"title": "loss"}, name="loss")
        trajectory = result.get("trajectory")
        if trajectory is not None and len(trajectory):
            path = np.asarray(trajectory)
            steps = result.get("trajectory_steps")
            fig.add_scatter(x=path[:, 1], y=path[:, 0], mode="lines+markers", name="trajectory", line={"color": "white"},
                            text=None if steps is None else [f"step {int(s)}" for s in steps])
        fig.add_scatter(x=[0], y=[0], mode="markers", name="centre", marker={"symbol": "x", "size": 10, "color": "red"})
        fig.update_layout(xaxis_title="b", yaxis_title="a")
    elif kind == "hessian":
        values = result.get("eigenvalues", {}).get("values", [])
        fig.add_bar(x=[f"λ{i + 1}" for i in range(len(values))], y=values, name="top eigenvalues")
        density = result.get("density")
        if density:
            fig.add_scatter(x=density["grid"], y=density["density"], mode="lines", name="spectral density", yaxis="y2", xaxis="x2")
            fig.update_layout(xaxis2={"overlaying": "x", "side": "top"}, yaxis2={"overlaying": "y", "side": "right"})
    elif kind == "connectivity":
        for label, curve in result.get("curves", {}).items():
            fig.add_scatter(x=curve["t"], y=curve["loss"], mode="lines+markers", name=f"{label} (barrier {curve.get('barrier_height')})")
        fig.update_layout(xaxis_title="t", yaxis_title="loss")
    else:
        raise ValueError(f"no notebook figure for {kind!r} jobs yet; open job.url for the full view")
    fig.update_layout(title=title, template="plotly_white", margin={"t": 40})
    return fig
