"""Active-learning endpoints: a ranking computed by a job, and queueing images to be handed out first."""

import numpy as np
import pytest

from annotation.enums import AssignmentStatus, JobStatus, Role
from annotation.models import Assignment, Job
from qa.metrics import match_instances
from qa.models import QaRun
from qa.services.masks import mask_read
from tests.factories import AssignmentFactory, ImageFactory, MembershipFactory, UserFactory
from training.services.predict import model_version_predict

API = "/api/v1/projects/train/"


def _rank(client, capture, model):
    with capture(execute=True):
        return client.post(API + "active-learning/", {"model": model.pk}, format="json")


def test_ranking_is_computed_by_a_job_then_served(tworld, tmodel, api_client, django_capture_on_commit_callbacks):
    fresh = [ImageFactory(project=tworld.project, batch="new") for _ in range(3)]
    AssignmentFactory(image=fresh[0], annotator=tworld.users["annotator"])  # open, not annotated: unlabelled
    ImageFactory(project=tworld.project, is_gold=True)  # gold never enters the ranking
    api_client.force_authenticate(tworld.users["annotator"])
    assert api_client.get(API + "active-learning/", {"model": tmodel.pk}).status_code == 403
    assert api_client.get(API + "active-learning/").status_code == 403  # role before query
    assert api_client.post(API + "active-learning/", {"model": tmodel.pk}, format="json").status_code == 403
    assert api_client.post(API + "active-learning/", {"bogus": 1}, format="json").status_code == 403  # before body
    api_client.force_authenticate(tworld.users["qa_lead"])
    assert api_client.get(API + "active-learning/").status_code == 400
    assert api_client.get(API + "active-learning/", {"model": 999999}).status_code == 404
    assert api_client.post(API + "active-learning/", {}, format="json").json()["model"]
    assert api_client.post(API + "active-learning/", {"model": 999999}, format="json").status_code == 404
    assert not Job.objects.filter(kind="training.active_learning_rank").exists()  # nothing on refusal

    # Reading never starts anything: no ranking yet is a 404 that says how to compute one.
    none_yet = api_client.get(API + "active-learning/", {"model": tmodel.pk})
    assert none_yet.status_code == 404
    assert "has been computed yet" in none_yet.json()["detail"] and "POST active-learning/" in none_yet.json()["detail"]
    assert not Job.objects.filter(kind="training.active_learning_rank").exists()

    first = _rank(api_client, django_capture_on_commit_callbacks, tmodel)
    assert first.status_code == 202 and first.json()["kind"] == "training.active_learning_rank"
    job = Job.objects.get(pk=first.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    n_labelled = QaRun.objects.filter(image__project=tworld.project).values("image").distinct().count()
    assert (job.progress_done, job.progress_total) == (3 + n_labelled, 3 + n_labelled)

    got = api_client.get(API + "active-learning/", {"model": tmodel.pk})
    assert got.status_code == 200
    body = got.json()
    assert body["job"] == job.pk and body["model_version"] == tmodel.pk and body["backbone"] == "cellpose"
    unl = body["unlabelled"]
    assert sorted(r["image"] for r in unl) == sorted(im.pk for im in fresh)
    assert {r["image"]: r["name"] for r in unl} == {im.pk: im.original_name for im in fresh}
    assert all(r["name"] == next(im.original_name for im in tworld.images if im.pk == r["image"])
               for r in body["labelled"])
    scores = [r["score"] for r in unl]
    assert scores == sorted(scores, reverse=True)
    for r in unl:
        assert 0.0 <= r["entropy"] <= 1.0 and r["flow_error"] >= 0.0
        assert r["score"] >= r["entropy"] - 1e-9  # entropy plus the scaled flow error

    # Labelled images: disagreement = 1 - F1@0.5 between the model and the QA consensus.
    lab = body["labelled"]
    assert len(lab) == n_labelled
    for r in lab[:3]:
        image = next(im for im in tworld.images if im.pk == r["image"])
        consensus = mask_read(QaRun.objects.filter(image=image).latest("id").consensus.name)
        pred = model_version_predict(model_version=tmodel, image=image)
        assert r["score"] == pytest.approx(1.0 - match_instances(consensus, pred).f1)
    assert [r["score"] for r in lab] == sorted((r["score"] for r in lab), reverse=True)

    # GET keeps serving that ranking, however often it is asked, and starts nothing.
    for _ in range(2):
        assert api_client.get(API + "active-learning/", {"model": tmodel.pk}).json()["job"] == job.pk
    assert Job.objects.filter(kind="training.active_learning_rank").count() == 1
    # `refresh` was the GET's way to recompute; it is a POST now, and the GET says so by name.
    assert "refresh" in api_client.get(API + "active-learning/", {"model": tmodel.pk, "refresh": "true"}).json()

    refreshed = _rank(api_client, django_capture_on_commit_callbacks, tmodel)
    assert refreshed.status_code == 202 and refreshed.json()["id"] != job.pk
    assert api_client.get(API + "active-learning/", {"model": tmodel.pk}).json()["job"] == refreshed.json()["id"]


def test_a_running_ranking_is_answered_instead_of_a_second(tworld, tmodel, api_client,
                                                          django_capture_on_commit_callbacks):
    url = API + "active-learning/"
    with django_capture_on_commit_callbacks(execute=False) as queued:  # the task has not run yet
        api_client.force_authenticate(tworld.users["ml_engineer"])
        first = api_client.post(url, {"model": tmodel.pk}, format="json")
        api_client.force_authenticate(tworld.users["manager"])
        again = api_client.post(url, {"model": tmodel.pk}, format="json")
    assert first.status_code == again.status_code == 202
    assert first.json()["status"] == "queued" and again.json()["id"] == first.json()["id"]
    assert len(queued) == 1  # one task enqueued
    jobs = Job.objects.filter(kind="training.active_learning_rank")
    assert list(jobs.values_list("pk", "params")) == [(first.json()["id"], {"model_version": tmodel.pk})]
    assert api_client.get(url, {"model": tmodel.pk}).status_code == 404  # still none finished

    Job.objects.filter(pk=first.json()["id"]).update(status=JobStatus.RUNNING)
    assert api_client.post(url, {"model": tmodel.pk}, format="json").json()["id"] == first.json()["id"]
    Job.objects.filter(pk=first.json()["id"]).update(status=JobStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=False):
        after_failure = api_client.post(url, {"model": tmodel.pk}, format="json")
    assert after_failure.status_code == 202 and after_failure.json()["id"] != first.json()["id"]
    assert jobs.count() == 2


def test_queue_raises_priority_creates_assignments_and_next_hands_them_out_first(tworld, api_client):
    users = tworld.users
    MembershipFactory(user=UserFactory(username="annotator3"), project=tworld.project, role=Role.ANNOTATOR)
    old = ImageFactory(project=tworld.project)
    older = AssignmentFactory(image=old, annotator=users["annotator"])
    queued = ImageFactory(project=tworld.project)
    target = AssignmentFactory(image=queued, annotator=users["annotator"])
    bare = ImageFactory(project=tworld.project)  # no assignment yet
    done = tworld.images[0]  # labelled: all its assignments are submitted

    url = API + "active-learning/queue/"
    api_client.force_authenticate(users["ml_engineer"])
    assert api_client.post(url, {"images": [queued.pk]}, format="json").status_code == 403
    assert api_client.post(url, {"top": "x"}, format="json").status_code == 403  # role before body
    api_client.force_authenticate(users["manager"])
    response = api_client.post(url, {"images": [queued.pk, 999999]}, format="json")
    assert response.status_code == 400 and "999999" in response.json()["images"][0]
    assert api_client.post(url, {"top": 3}, format="json").json()["model"]
    target.refresh_from_db()
    assert target.priority == 0  # nothing changed on refusal

    response = api_client.post(url, {"images": [queued.pk, bare.pk, done.pk]}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["raised"] == 1 and body["priority"] == 2 and body["no_free_annotator"] == []
    target.refresh_from_db()
    assert target.priority == 2
    fresh = Assignment.objects.filter(image=bare)
    assert fresh.count() == tworld.project.annotators_per_image == 2
    assert {a.priority for a in fresh} == {2} and {a.status for a in fresh} == {AssignmentStatus.PENDING}
    extra = Assignment.objects.filter(image=done, status=AssignmentStatus.PENDING)
    assert extra.count() == 1 and extra.get().priority == 2
    assert extra.get().annotator.username == "annotator3"  # the only annotator who has not drawn it
    assert body["created"] == 3

    # The annotator's next task is a queued one, although an older assignment waits.
    api_client.force_authenticate(users["annotator"])
    handed = api_client.post(API + "assignments/next/", {}, format="json").json()
    assert handed["priority"] == 2 and handed["id"] != older.pk
    assert np.isin(handed["image"]["id"], [queued.pk, bare.pk, done.pk])


def test_queue_top_uses_the_latest_ranking(tworld, tmodel, api_client, django_capture_on_commit_callbacks):
    fresh = [ImageFactory(project=tworld.project) for _ in range(3)]
    api_client.force_authenticate(tworld.users["manager"])
    url = API + "active-learning/queue/"
    response = api_client.post(url, {"top": 2, "model": tmodel.pk}, format="json")
    assert response.status_code == 400 and "no active-learning ranking" in response.json()["model"][0]
    _rank(api_client, django_capture_on_commit_callbacks, tmodel)
    ranking = api_client.get(API + "active-learning/", {"model": tmodel.pk}).json()
    top2 = [r["image"] for r in ranking["unlabelled"][:2]]
    response = api_client.post(url, {"top": 2, "model": tmodel.pk}, format="json")
    assert response.status_code == 200 and response.json()["images"] == top2
    assert response.json()["ranking_job"] == ranking["job"]
    assert {a.image_id for a in Assignment.objects.filter(priority=2)} == set(top2)
    assert len({im.pk for im in fresh} - set(top2)) == 1
