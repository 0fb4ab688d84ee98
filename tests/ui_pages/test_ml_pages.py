"""The ML engineer's snapshot and model pages in a real Chromium.

Snapshots go through the preview (counts before creating) and the API; models carry the
evaluation :func:`training.services.registry.evaluation_build` computes on the real test
split of a snapshot, for two prediction sets (one misses cells, one is exact).
"""

import numpy as np
import pytest

from datasets.model_views import HEADLINES
from datasets.models import DatasetSnapshot
from datasets.services import SnapshotSpec, snapshot_create
from tests.datasets.conftest import build_world
from tests.ui_pages.conftest import log_in
from tests.ui_pages.qa_world import XSS
from training.models import ModelVersion
from training.services.data import split_load
from training.services.registry import evaluation_build

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _register(world, snapshot, *, name, version, predictions, parent=None):
    truth = split_load(snapshot=snapshot, split="test")
    metrics = evaluation_build(truth, predictions(truth.labels), None, split="test")
    return ModelVersion.objects.create(
        project=world.project, name=name, version=version, backbone="cellpose", weights="none",
        weights_sha256="0" * 64, snapshot=snapshot, snapshot_content_hash=snapshot.content_hash,
        code_version="test", parent=parent, metrics=metrics,
    )


def _table_fit(page, ids):
    """Where each table's last header cell ends against its scroll box and card (CSS px)."""
    return page.evaluate("""(ids) => Object.fromEntries(ids.map((id) => {
      const table = document.getElementById(id), box = table.parentElement, card = table.closest(".card");
      const heads = table.tHead.rows[0].cells, last = heads[heads.length - 1];
      return [id, { last_right: last.getBoundingClientRect().right, last_text: last.textContent.trim(),
        box_right: box.getBoundingClientRect().right, card_right: card.getBoundingClientRect().right,
        scroll_width: box.scrollWidth, client_width: box.clientWidth, scroller: getComputedStyle(box).overflowX }];
    }))""", ids)


def _drop_half(labels):
    out = []
    for lab in labels:
        lab = lab.copy()
        ids = [i for i in np.unique(lab) if i]
        for i in ids[: len(ids) // 2]:
            lab[lab == i] = 0
        out.append(lab)
    return out


def test_snapshot_preview_create_page_and_diff(live_server, page, seen, screenshot_dir):
    world = build_world(8, slug="mls")
    world.project.name = f"Plates {XSS}"
    world.project.cell_classes = [*world.project.cell_classes, XSS]  # frozen into the selection
    world.project.save()
    log_in(page, live_server.url, "mls-ml_engineer")
    page.goto(f"{live_server.url}/ml/mls/datasets/new/")
    page.wait_for_selector("body[data-ml-ready='1']")
    page.fill("#snapshot-form [name=plate]", "P0, P1, P2")
    page.select_option("#snapshot-form [name=group_by]", "image")
    page.click("#preview-button")
    page.wait_for_selector("#preview")
    # Plates P0..P2 of 8 images on plates P(i % 6): images 0, 1, 2, 6, 7.
    expected = [im for im in world.images if im.plate in {"P0", "P1", "P2"}]
    assert int(page.inner_text("#preview-items")) == len(expected) == 5
    split_images = sum(int(t) for t in page.locator("#preview-splits td:nth-child(2)").all_inner_texts())
    assert split_images == 5
    assert not DatasetSnapshot.objects.filter(project=world.project).exists()  # a preview stores nothing
    page.screenshot(path=str(screenshot_dir / "ml_snapshot_new.png"), full_page=True)

    page.fill("#snapshot-form [name=name]", "first-plates")
    page.click("#create")
    page.wait_for_url("**/ml/mls/datasets/*/")
    snapshot = DatasetSnapshot.objects.get(project=world.project, name="first-plates")
    assert snapshot.n_items == 5 and snapshot.selection["filters"] == {"plate": ["P0", "P1", "P2"]}
    assert page.inner_text("#snap-items") == "5"
    rows = {r.get_attribute("data-split"): r for r in page.locator("#splits tbody tr").all()}
    assert sum(int(r.locator("td").nth(1).inner_text()) for r in rows.values()) == 5
    assert page.locator("#items tbody tr").count() == 5
    assert "first-plates" in page.inner_text("#datasheet")
    page.screenshot(path=str(screenshot_dir / "ml_snapshot.png"), full_page=True)

    everything = snapshot_create(actor=world.users["ml_engineer"], project=world.project,
                                 spec=SnapshotSpec(name="all", group_by="image")).snapshot
    page.goto(f"{live_server.url}/ml/mls/datasets/diff/?a={snapshot.pk}&b={everything.pk}")
    assert page.inner_text("#diff-summary [data-count='added']") == "3"
    assert page.inner_text("#diff-summary [data-count='removed']") == "0"
    assert page.locator("#diff-table tr[data-change='added']").count() == 3
    assert "Selection changed" in page.inner_text("#diff")
    assert "<script>" in page.inner_text("#diff") and "<script>" in page.inner_text("h1")  # text, not markup
    page.screenshot(path=str(screenshot_dir / "ml_snapshot_diff.png"), full_page=True)
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []


def test_model_registry_evaluation_tables_and_comparison(live_server, page, seen, screenshot_dir):
    world = build_world(12, slug="mlm")
    snapshot = snapshot_create(actor=world.users["ml_engineer"], project=world.project,
                               spec=SnapshotSpec(name="all", group_by="image", fractions=(0.5, 0.0, 0.5))).snapshot
    weak = _register(world, snapshot, name="nuclei", version=1, predictions=_drop_half)
    exact = _register(world, snapshot, name="nuclei", version=2, predictions=lambda labels: labels, parent=weak)
    log_in(page, live_server.url, "mlm-ml_engineer")
    page.goto(f"{live_server.url}/ml/mlm/models/")
    assert page.locator("#registry tbody tr[data-model]").count() == 2
    page.click(f"#registry tr[data-model='{weak.pk}'] a")
    page.wait_for_url(f"**/ml/mlm/models/{weak.pk}/")
    n_test = weak.metrics["n_images"]
    assert n_test >= 2
    assert page.locator("#per-threshold tbody tr").count() == len(weak.metrics["thresholds"])
    assert page.locator("#per-image tbody tr").count() == n_test
    groups = page.locator("#per-group tbody tr[data-key='modality']")
    assert groups.count() == len(weak.metrics["groups"]["modality"])
    ap50 = float(page.locator("#headline tr[data-row='model'] td").nth(2).inner_text())
    assert ap50 == pytest.approx(weak.metrics["model"]["pooled"]["ap"][0], abs=5e-4) and ap50 < 0.9
    page.screenshot(path=str(screenshot_dir / "ml_model.png"), full_page=True)
    # At 1280 x 800 every column of every evaluation table is in view (the per-group one was
    # cut off in half a page), and a table wider than its card would scroll inside it.
    assert page.viewport_size == {"width": 1280, "height": 800}
    fit = _table_fit(page, ["headline", "per-threshold", "per-group", "per-image"])
    for table, f in fit.items():
        assert f["scroller"] in ("auto", "scroll"), (table, f)
        assert f["last_right"] <= f["box_right"] + 0.5 and f["scroll_width"] <= f["client_width"], (table, f)
        assert f["box_right"] <= f["card_right"] and f["card_right"] <= 1280, (table, f)
    assert fit["per-group"]["last_text"] == HEADLINES[-1][1]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    page.select_option("#compare-form [name=b]", str(exact.pk))
    page.click("#compare-form button")
    page.wait_for_url(f"**/ml/mlm/models/{weak.pk}/compare/{exact.pk}/")
    assert "same snapshot and split" in page.inner_text("#same-split")
    delta = page.locator("#compare-headline tr[data-metric='ap_50'] td").nth(3)
    assert float(delta.inner_text()) > 0 and "ml-up" in delta.get_attribute("class")
    assert page.locator("#compare-thresholds tbody tr").count() == len(weak.metrics["thresholds"])
    page.screenshot(path=str(screenshot_dir / "ml_model_compare.png"), full_page=True)
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []
