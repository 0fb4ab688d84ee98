"""A QA run set off by the k-th submission over the API, on PostgreSQL with a real worker.

Embedded (no broker) the run happens eagerly once the submission commits; with
``CELERY_BROKER_URL`` and ``DATABASE_URL=postgres://...`` the test session starts a real
``celery worker`` and the run must happen there (see tests/test_worker.py).
"""

import time

import pytest
from django.conf import settings
from django.db import connection

from annotation.models import Assignment
from qa.models import GateDecision, ImageQaState, QaRun
from tests.api.uploads import upload, url
from tests.conftest import broker_configured
from tests.factories import png_bytes
from tests.qa_service.conftest import make_world

# The worker reads the masks: files go to the session media folder it shares (no media_root).


def _submit_all_over_the_api(world, client):
    image = world.images[0]
    for name in ("ann_a", "ann_b", "ann_c"):
        client.force_authenticate(world.users[name])
        assignment = Assignment.objects.get(image=image, annotator=world.users[name])
        response = client.post(
            url(world.project.slug, "annotations"),
            {"assignment": assignment.pk, "mask": upload("m.png", png_bytes(world.mask_for(0, name)))},
            format="multipart",
        )
        assert response.status_code == 201, response.content
    return image


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_kth_submission_runs_qa_in_a_worker(api_client, request):
    world = make_world()
    if not broker_configured():
        assert settings.CELERY_TASK_ALWAYS_EAGER is True
        image = _submit_all_over_the_api(world, api_client)
        run = QaRun.objects.get(image=image)  # finished before the third request returned
        assert run.members.count() == 3 and GateDecision.objects.filter(qa_run=run).exists()
        return

    assert connection.vendor == "postgresql", "run with DATABASE_URL=postgres://..."
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    worker = request.getfixturevalue("celery_worker_process")
    image = _submit_all_over_the_api(world, api_client)
    deadline = time.monotonic() + 90
    while not GateDecision.objects.filter(image=image).exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    log = worker["log"].read_text()
    run = QaRun.objects.filter(image=image).first()
    assert run is not None, f"no QA run; worker log:\n{log}"
    assert sorted(run.members.values_list("annotator__username", flat=True)) == ["ann_a", "ann_b", "ann_c"]
    assert ImageQaState.objects.get(image=image).latest_run == run
    assert "qa.image_qa_run[" in log and "succeeded in" in log
