"""Draw docs/sharpness-edge-of-stability.png: the test's edge-of-stability runs, loss and sharpness.

    .venv/bin/python docs/make_sharpness_plot.py

Runs :func:`analysis.sharpness.edge_of_stability_demo` at the two step sizes
of ``tests/analysis/test_sharpness.py``, draws them with Plotly (the pinned
package's own plotly.min.js, inlined) and screenshots the page in headless
Chromium (no kaleido or matplotlib in the environment).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import plotly.graph_objects as go  # noqa: E402
import torch  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

from analysis import sharpness  # noqa: E402

OUT = ROOT / "docs" / "sharpness-edge-of-stability.png"
RUNS = [(0.25, "#2563eb"), (1.0, "#dc2626")]


def figure() -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss (full-batch GD)", "sharpness λ_max of the Hessian"))
    for lr, colour in RUNS:
        tracker, result = sharpness.edge_of_stability_demo(lr)
        steps = [row["step"] for row in result.history]
        fig.add_trace(go.Scatter(x=steps, y=[row["train_loss"] for row in result.history], name=f"η = {lr:g}",
                                 line={"color": colour}, legendgroup=str(lr)), row=1, col=1)
        fig.add_trace(go.Scatter(x=[r["step"] for r in tracker.records], y=[r["sharpness"] for r in tracker.records],
                                 mode="lines+markers", line={"color": colour}, showlegend=False, legendgroup=str(lr)), row=1, col=2)
        fig.add_trace(go.Scatter(x=[0, result.total_steps], y=[2 / lr] * 2, mode="lines", name=f"2/η = {2 / lr:g}",
                                 line={"color": colour, "dash": "dash"}, legendgroup=str(lr)), row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 9], row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(width=1100, height=420, margin={"t": 40, "r": 20, "b": 50, "l": 60}, legend={"orientation": "h", "y": -0.2},
                      template="plotly_white")
    return fig


def main() -> None:
    torch.set_num_threads(1)
    html = figure().to_html(include_plotlyjs=True, full_html=True, config={"staticPlot": True})
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        page_path = Path(tmp) / "figure.html"
        page_path.write_text(html)
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1120, "height": 440})
        page.goto(page_path.as_uri())
        page.wait_for_selector(".plotly .main-svg")
        page.locator(".plotly-graph-div").screenshot(path=str(OUT))
        browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
