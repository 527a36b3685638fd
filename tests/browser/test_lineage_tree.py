"""Headless Chromium on a family tree of real Hugging Face lineage: search, fold, unfold, details."""

import pytest
from django.contrib.auth import get_user_model

from analysis import lineage as lib
from tests.browser.conftest import log_in
from tests.webapp.test_lineage_support import HF_DIR, experiment
from webapp.catalog.visibility import Visibility
from webapp.lineage import services
from webapp.lineage.models import GraphSource

pytestmark = pytest.mark.browser

READY = "document.getElementById('tree-chart').dataset.state === 'ready'"


def loads(page):
    return page.evaluate("window.lineageTree.state().loads")


def wait_reload(page, before):
    page.wait_for_function(f"window.lineageTree.state().loads > {before} && {READY}", timeout=20_000)


def hf_subset_graph(owner):
    """The two largest real families and the openchat one (~1,340 models), imported into a public experiment."""
    result = lib.import_hf_snapshot(HF_DIR)
    families = result.graph.families()
    keep = [n for f in (families[0], families[1], families[6]) for n in f.nodes]
    sub = lib.ImportResult(result.graph.subgraph(keep), result.report)
    return services.lineage_graph_store(experiment=experiment(owner, Visibility.PUBLIC, title="HF families"),
                                        name="Hugging Face families (subset)", source=GraphSource.HF_SNAPSHOT,
                                        result=sub)


def test_family_tree_search_fold_unfold_details(page):
    assert (HF_DIR / "model_cards_parent_edges.csv").exists(), f"the repository carries the snapshot at {HF_DIR}"
    owner = get_user_model().objects.create_user("genealogist", password="pw-gene-1")
    graph = hf_subset_graph(owner)
    log_in(page, "genealogist", "pw-gene-1")

    page.goto("/lineage/")
    page.click(f"text={graph.name}")
    page.wait_for_url(f"**{graph.get_absolute_url()}")
    assert page.locator("#stat-families").inner_text() == "3"
    page.click("#family-table tbody tr:first-child a")  # the largest family: Mistral-7B
    page.wait_for_function(READY, timeout=30_000)
    assert page.evaluate("window.lineageTree.state()")["visible"] == 631
    assert "mistralai/Mistral-7B-v0.1" in page.locator("h1").inner_text()

    # Search a model id of this family: the tree highlights it and opens its details.
    before = loads(page)
    page.fill("#tree-search", "arc53/docsgpt-7b-mistral")  # any case
    page.wait_for_selector("#tree-search-results li[data-id='Arc53/docsgpt-7b-mistral']")
    page.keyboard.press("Enter")
    wait_reload(page, before)
    page.wait_for_function("document.getElementById('node-panel').dataset.node === 'Arc53/docsgpt-7b-mistral'", timeout=10_000)
    assert page.locator("#node-title").inner_text() == "Arc53/docsgpt-7b-mistral"
    assert page.locator("#node-panel").get_by_text("HuggingFaceH4/zephyr-7b-beta").count() >= 1  # its parent

    # Collapse its subtree from the details panel, then unfold it with a click on its "+".
    subtree = "Arc53/docsgpt-7b-mistral"
    before = loads(page)
    page.click("#node-toggle")
    wait_reload(page, before)
    folded = page.evaluate(f"window.lineageTree.hiddenUnder('{subtree}')")
    assert folded == 7 and page.evaluate("window.lineageTree.state()")["visible"] == 631 - 7
    assert "7 inside folded subtrees" in page.locator("#tree-status").inner_text()
    before = loads(page)
    plus = page.evaluate(f"window.lineageTree.pointOnScreen('{subtree}', true)")
    page.mouse.move(plus["x"], plus["y"])
    page.wait_for_timeout(300)
    page.mouse.click(plus["x"], plus["y"])
    wait_reload(page, before)
    assert page.evaluate(f"window.lineageTree.hiddenUnder('{subtree}')") == 0
    assert page.evaluate("window.lineageTree.state()")["visible"] == 631

    # Click a node like a person would (one of the unfolded children, in view): its details open.
    target = "TheBloke/docsgpt-7B-mistral-GPTQ"
    point = page.evaluate(f"window.lineageTree.pointOnScreen('{target}')")
    box = page.locator("#tree-chart").bounding_box()
    assert box["x"] < point["x"] < box["x"] + box["width"] and box["y"] < point["y"] < box["y"] + box["height"]
    page.mouse.move(point["x"], point["y"])
    page.wait_for_timeout(300)  # Plotly resolves the hovered point on mouse moves
    page.mouse.click(point["x"], point["y"])
    page.wait_for_function(f"document.getElementById('node-panel').dataset.node === '{target}'", timeout=10_000)
    panel = page.locator("#node-panel")
    assert panel.locator("#node-title").inner_text() == target
    assert "Parents (1)" in panel.inner_text() and subtree in panel.inner_text()
    assert page.get_attribute("#node-hub", "href") == f"https://huggingface.co/{target}"  # a link, never fetched

    # Radial layout, colour by generation, then search a model of another family: its page opens at it.
    before = loads(page)
    page.check("#layout-radial")
    wait_reload(page, before)
    assert page.evaluate("window.lineageTree.state()")["kind"] == "radial"
    page.select_option("#colour-by", "generation")
    page.fill("#tree-search", "openchat/openchat-3.5-0106")
    page.wait_for_selector("#tree-search-results li[data-id='openchat/openchat-3.5-0106']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/family/2/**")
    page.wait_for_function(READY, timeout=30_000)
    page.wait_for_function("document.getElementById('node-panel').dataset.node === 'openchat/openchat-3.5-0106'", timeout=10_000)
    assert page.evaluate("window.lineageTree.state()")["kind"] == "radial"
    assert page.js_errors == []
