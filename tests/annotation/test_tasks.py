"""Celery tasks: pinned names, and assignment generation as a job with progress."""

import datetime as dt

import pytest
from django.utils import timezone

from annotation import tasks
from annotation.models import Assignment, Job
from tests.api.uploads import url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


def test_task_names_are_pinned():
    assert tasks.assignments_generate_task.name == "annotation.assignments_generate"
    assert tasks.leases_expire_task.name == "annotation.leases_expire"


def test_generate_over_the_api_runs_as_a_job_with_progress(
    world, api_client, django_capture_on_commit_callbacks
):
    api_client.force_authenticate(world.users["manager"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.post(url("world", "assignments", "generate"))
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert len(callbacks) == 1
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded"
    assert (job.progress_done, job.progress_total) == (2, 2)
    # image 0 already had both annotators; image 1 gets the two as well
    assert job.result == {"images": 2, "annotators": 2, "gold_images": 0, "created": 2}
    assert Assignment.objects.filter(image=world.images[1]).count() == 2
    polled = api_client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert (polled["status"], polled["progress"], polled["kind"]) == (
        "succeeded",
        1.0,
        "annotation.assignments_generate",
    )


def test_a_refused_generation_fails_the_job_with_the_reason(
    world, api_client, django_capture_on_commit_callbacks
):
    world.project.annotators_per_image = 3
    world.project.save()
    api_client.force_authenticate(world.users["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(url("world", "assignments", "generate"))
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "failed"
    assert "gives each image to 3 annotators but has 2" in job.error


def test_job_progress_cannot_change_a_finished_job(world):
    from annotation.services import job_create, job_progress, job_succeed
    from config.errors import Conflict

    job = job_create(kind="x", project=world.project, total=4)
    job_progress(job_id=job.pk, done=2, total=4)
    job_succeed(job_id=job.pk, result={"ok": True})
    with pytest.raises(Conflict, match="already succeeded"):
        job_progress(job_id=job.pk, done=3, total=4)
    job.refresh_from_db()
    assert (job.status, job.progress_done, job.result) == ("succeeded", 4, {"ok": True})


def test_leases_expire_task_returns_the_count(world):
    Assignment.objects.filter(pk=world.assignments["annotator"].pk).update(
        status="in_progress", lease_expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    assert tasks.leases_expire_task.apply().get() == 1


@pytest.mark.django_db(transaction=True)
def test_generate_reports_the_jobs_real_state_when_it_already_ran(world, api_client):
    """Embedded mode: the task runs eagerly when the request's transaction commits, so the
    answer is the finished job (200), not a "queued" one that is no longer true."""
    api_client.force_authenticate(world.users["manager"])
    response = api_client.post(url("world", "assignments", "generate"))
    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["progress"]) == ("succeeded", 1.0)
    assert body["result"] == {"images": 2, "annotators": 2, "gold_images": 0, "created": 2}
    assert response["Location"] == f"/api/v1/jobs/{body['id']}/"
    assert Job.objects.get(pk=body["id"]).status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_generate_reports_a_failed_job_as_failed(world, api_client):
    world.project.annotators_per_image = 3
    world.project.save()
    api_client.force_authenticate(world.users["manager"])
    response = api_client.post(url("world", "assignments", "generate"))
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert "gives each image to 3 annotators but has 2" in response.json()["error"]


def test_generate_answers_202_while_the_job_is_queued(world, api_client):
    """With the task not run yet (its on-commit callback pending), the job is queued: 202."""
    api_client.force_authenticate(world.users["manager"])
    response = api_client.post(url("world", "assignments", "generate"))
    assert (response.status_code, response.json()["status"]) == (202, "queued")
    assert response["Location"] == f"/api/v1/jobs/{response.json()['id']}/"
