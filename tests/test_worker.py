"""Async work goes through Celery: in-process when embedded, on a real worker with a broker.

CI runs this file twice: once embedded (no broker: the task must run eagerly inside the
request) and once with ``CELERY_BROKER_URL=redis://...`` on PostgreSQL, where the test
session starts a real ``celery worker`` process and the task must run there, not inline.
"""

import time

import pytest
from django.conf import settings

from annotation.models import Assignment, Job
from tests.api.uploads import url
from tests.conftest import broker_configured
from tests.factories import api_client, world  # noqa: F401


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_over_the_api_is_run_by_celery(world, api_client, request):  # noqa: F811
    api_client.force_authenticate(world.users["manager"])

    if not broker_configured():
        assert settings.CELERY_TASK_ALWAYS_EAGER is True
        response = api_client.post(url("world", "assignments", "generate"))
        # Eager: the work is finished by the time the request returns, and the answer says so.
        assert (response.status_code, response.json()["status"]) == (200, "succeeded")
        job = Job.objects.get(pk=response.json()["id"])
        assert job.status == "succeeded"
        assert Assignment.objects.filter(image=world.images[1]).count() == 2
        return

    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    worker = request.getfixturevalue("celery_worker_process")
    response = api_client.post(url("world", "assignments", "generate"))
    assert response.status_code == 202
    job_id = response.json()["id"]

    deadline = time.monotonic() + 60
    job = Job.objects.get(pk=job_id)
    while job.status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    log = worker["log"].read_text()
    assert job.status == "succeeded", f"job {job.status}: {job.error}\nworker log:\n{log}"
    assert job.result["created"] == 2
    assert Assignment.objects.filter(image=world.images[1]).count() == 2
    # The worker process, not this one, ran it.
    assert "annotation.assignments_generate[" in log and "succeeded in" in log
