"""job_run: what every job-running task does around its service (running, progress, outcome)."""

import pytest

from annotation.enums import JobStatus
from annotation.models import Job
from annotation.services.jobs import job_create, job_run, job_succeed
from config.errors import Conflict, InvalidInput

pytestmark = pytest.mark.django_db


def _job(world):
    return job_create(kind="test.kind", project=world.project, message="queued")


def test_a_successful_run_records_running_progress_and_the_result(world):
    job = _job(world)
    seen = []

    def work(progress):
        job.refresh_from_db()
        seen.append((job.status, job.message, job.started_at is not None))
        progress(1, 3)
        job.refresh_from_db()
        seen.append((job.progress_done, job.progress_total, job.message))
        progress(2, 3)
        return {"n": 2}

    out = job_run(job_id=job.pk, work=work, message="working",
                  progress_message=lambda done, total: f"{done} of {total} things")
    assert out == {"n": 2}
    assert seen == [(JobStatus.RUNNING, "working", True), (1, 3, "1 of 3 things")]
    job.refresh_from_db()
    assert (job.status, job.result, job.message) == (JobStatus.SUCCEEDED, {"n": 2}, "done")
    assert (job.progress_done, job.progress_total, job.error) == (3, 3, "")  # complete on success
    assert job.finished_at is not None


def test_output_and_summary_shape_what_is_stored_and_returned(world):
    job = _job(world)

    class Result:
        created = 4

        def as_dict(self):
            return {"created": self.created}

    out = job_run(job_id=job.pk, work=lambda progress: Result(), output=lambda r: r.as_dict(),
                  summary=lambda r: f"{r.created} made")
    job.refresh_from_db()
    assert out == job.result == {"created": 4}
    assert job.message == "4 made"


def test_progress_without_a_message_keeps_the_running_message(world):
    job = _job(world)
    messages = []

    def work(progress):
        progress(5, 10)
        messages.append(Job.objects.get(pk=job.pk).message)
        return {}

    job_run(job_id=job.pk, work=work, message="re-gating")
    assert messages == ["re-gating"]


def test_a_domain_error_is_the_jobs_outcome_not_a_crash(world):
    job = _job(world)

    def work(progress):
        progress(1, 2)
        raise InvalidInput("no annotators in this project")

    assert job_run(job_id=job.pk, work=work) == {"error": "no annotators in this project"}
    job.refresh_from_db()
    assert (job.status, job.error, job.message) == (JobStatus.FAILED, "no annotators in this project", "failed")
    assert job.result in ({}, None) and job.finished_at is not None


def test_any_other_error_fails_the_job_and_is_raised_again(world):
    job = _job(world)

    def work(progress):
        raise ZeroDivisionError("division by zero")

    with pytest.raises(ZeroDivisionError):
        job_run(job_id=job.pk, work=work)
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "ZeroDivisionError: division by zero")


def test_a_finished_job_is_not_run_again(world):
    job = _job(world)
    job_succeed(job_id=job.pk, result={"first": True})
    calls = []
    with pytest.raises(Conflict, match="already succeeded"):
        job_run(job_id=job.pk, work=lambda progress: calls.append(1) or {})
    assert calls == []
    job.refresh_from_db()
    assert job.result == {"first": True}
