"""The re-check job runs on Celery: eagerly when embedded, on a real worker with a broker.

Run with ``DATABASE_URL=postgres://...`` and ``CELERY_BROKER_URL=redis://...`` to start a
real ``celery worker`` (see tests/conftest.py); without them the task runs in-process.
"""

import time

import pytest

from annotation.models import Job
from guidelines.models import RuleRecheck
from tests.api.uploads import url
from tests.conftest import broker_configured
from tests.guidelines.helpers import squares, submit


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_publishing_runs_the_recheck_job_on_celery(world, api_client, settings,
                                                   _session_media_root, request):
    # Masks go where a worker process can read them too.
    settings.MEDIA_ROOT = _session_media_root
    small = submit(api_client, world, squares(4, 3)).json()["id"]
    clean = submit(api_client, world, squares(4, 4), user="annotator2").json()["id"]
    worker = request.getfixturevalue("celery_worker_process") if broker_configured() else None

    api_client.force_authenticate(world.users["manager"])
    created = api_client.post(url("world", "guidelines"), {
        "title": "v2", "body": "b", "rules": {"min_area": {"value": 12}},
    }, format="json")
    assert created.status_code == 201
    published = api_client.post(url("world", "guidelines", 2, "publish")).json()
    job = Job.objects.get(pk=published["recheck_job"])
    deadline = time.monotonic() + 60
    while job.status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert (job.progress_done, job.progress_total, job.result["flagged"]) == (2, 2, 1)
    flagged = RuleRecheck.objects.filter(guideline_version__version=2, flagged=True)
    assert list(flagged.values_list("annotation_id", flat=True)) == [small]
    assert RuleRecheck.objects.get(annotation_id=clean).violations == []
    if worker is not None:
        log = worker["log"].read_text()
        assert "guidelines.recheck[" in log and "succeeded in" in log
