"""The ML engineer's page in a real Chromium: snapshot, export, tiny training run to done."""

import pytest
from django.test.utils import override_settings

from datasets.models import DatasetExport, DatasetSnapshot
from tests.datasets.conftest import build_world
from tests.ui_pages.conftest import log_in
from training.models import TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ml_engineer_snapshots_exports_and_trains(live_server, page, seen, screenshot_dir):
    with override_settings(TRAINING_DEVICE="cpu"):
        world = build_world(8, slug="mlp")
        log_in(page, live_server.url, "mlp-ml_engineer")
        page.goto(f"{live_server.url}/ml/mlp/")
        page.wait_for_selector("#ml[data-state='ready']")
        assert "No export yet" in page.inner_text("#exports")
        assert "once it starts" in page.inner_text("#loss-chart")

        page.fill("#snapshot-form input[name=name]", "nuclei")
        page.click("#snapshot-form button")
        page.wait_for_selector("#snapshots tbody tr[data-snapshot]")
        snapshot = DatasetSnapshot.objects.get(project=world.project, name="nuclei")
        assert snapshot.n_items == 8
        assert f"nuclei v{snapshot.version}" in page.inner_text("#snapshots")

        page.click(f"#snapshots tr[data-snapshot='{snapshot.pk}'] button")
        page.wait_for_selector("#exports tr[data-status='succeeded'] a[href$='/download/']", timeout=60000)
        export = DatasetExport.objects.get(snapshot=snapshot)
        assert export.status == "succeeded" and export.n_files > 0
        # the status line follows the export it announced to its end
        status = page.locator("#ml-status")
        status.filter(has_text="is ready").wait_for()
        assert f"Export {export.pk} (" in status.inner_text()
        assert f"{export.n_files} files" in status.inner_text()
        # Exports made before are listed after a reload, with their download.
        page.reload()
        page.wait_for_selector("#ml[data-state='ready']")
        assert page.locator(f"#exports tr[data-export='{export.pk}'][data-status='succeeded'] a[href$='/download/']").count() == 1

        page.fill("#run-form input[name=name]", "nuclei-cp")
        page.fill("#run-form input[name=epochs]", "2")
        page.click("#run-form button")
        page.wait_for_selector("#runs tr[data-status='succeeded']", timeout=180000)
        run = TrainingRun.objects.get(snapshot=snapshot)
        assert run.status == "succeeded" and run.epochs_done == 2 and len(run.train_loss) == 2
        assert "2/2" in page.inner_text(f"#runs tr[data-run='{run.pk}']")
        status.filter(has_text=f"Training run {run.pk} finished").wait_for()
        assert f"model #{run.model_version_id} registered" in status.inner_text()
        assert "started" not in status.inner_text()
        page.wait_for_selector("#loss-chart .uplot")
        page.wait_for_selector(f"#models tr[data-model='{run.model_version_id}']")
        assert "nuclei-cp v1" in page.inner_text("#models")
        page.screenshot(path=str(screenshot_dir / "ml_page.png"), full_page=True)
        assert seen.dialogs == [] and seen.csp == [] and seen.errors == []
