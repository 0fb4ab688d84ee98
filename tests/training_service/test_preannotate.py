"""Pre-annotation: a model's predictions become marked drafts, and so do the annotations made from them."""

from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from annotation.enums import AnnotationSource, AssignmentStatus, JobStatus
from annotation.masks import read_label_image
from annotation.models import Annotation, AnnotationDraft, Job
from annotation.services.annotations import annotation_submit_labels
from annotation.services.drafts import draft_discard, draft_save
from tests.factories import AssignmentFactory, ImageFactory, ProjectFactory, png_bytes
from training.services.predict import model_version_predict

API = "/api/v1/projects/train/"


def _draft_labels(draft) -> np.ndarray:
    with default_storage.open(draft.labels.name, "rb") as fh:
        return read_label_image(fh.read(), max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS)


def _new_images(world):
    users = world.users
    lease = {"status": AssignmentStatus.IN_PROGRESS, "lease_expires_at": timezone.now() + timedelta(hours=1)}
    fresh = ImageFactory(project=world.project, batch="new")  # two open assignments
    a1 = AssignmentFactory(image=fresh, annotator=users["annotator"], **lease)
    a2 = AssignmentFactory(image=fresh, annotator=users["annotator2"], status=AssignmentStatus.PENDING)
    started = ImageFactory(project=world.project, batch="new")  # the annotator already saved a draft
    own = AssignmentFactory(image=started, annotator=users["annotator"], **lease)
    mine = np.zeros((started.height, started.width), np.uint16)
    mine[2:6, 3:9] = 1
    draft_save(actor=users["annotator"], assignment=own, labels_data=png_bytes(mine))
    done = ImageFactory(project=world.project, batch="new")  # nothing open
    AssignmentFactory(image=done, annotator=users["annotator"], status=AssignmentStatus.SKIPPED)
    return fresh, (a1, a2), started, own, done


def test_refusals_create_no_job(tworld, tmodel, api_client):
    fresh, *_ = _new_images(tworld)
    other = ImageFactory(project=ProjectFactory(slug="elsewhere"))
    url = API + f"models/{tmodel.pk}/predict/"
    api_client.force_authenticate(tworld.users["annotator"])
    assert api_client.post(url, {"images": [fresh.pk]}, format="json").status_code == 403
    api_client.force_authenticate(tworld.users["ml_engineer"])
    response = api_client.post(url, {"images": [fresh.pk, other.pk]}, format="json")
    assert response.status_code == 400 and str(other.pk) in response.json()["images"][0]
    response = api_client.post(url, {"images": [fresh.pk], "filter": {"batch": "new"}}, format="json")
    assert response.status_code == 400 and "either" in response.json()["images"][0]
    response = api_client.post(url, {"filter": {"batch": "no-such-batch"}}, format="json")
    assert response.status_code == 400 and "no image" in response.json()["filter"][0]
    assert api_client.post(API + "models/999999/predict/", {"images": [fresh.pk]}, format="json").status_code == 404
    assert not Job.objects.filter(kind="training.model_preannotate").exists()
    assert not AnnotationDraft.objects.filter(model_assisted=True).exists()


def test_prediction_becomes_marked_drafts_and_the_submission_carries_the_mark(
        tworld, tmodel, api_client, django_capture_on_commit_callbacks):
    fresh, (a1, a2), started, own, done = _new_images(tworld)
    before = AnnotationDraft.objects.get(assignment=own)
    api_client.force_authenticate(tworld.users["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(API + f"models/{tmodel.pk}/predict/", {"filter": {"batch": "new"}},
                                   format="json")
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "training.model_preannotate" and job.status == JobStatus.SUCCEEDED, job.error
    assert (job.progress_done, job.progress_total) == (3, 3)
    assert job.result == {"model_version": tmodel.pk, "images": 3, "predicted": 2, "drafts_written": 2,
                          "drafts_kept": 1, "no_open_assignment": [done.pk], "failed": []}

    expected = model_version_predict(model_version=tmodel, image=fresh)
    for assignment in (a1, a2):
        draft = AnnotationDraft.objects.get(assignment=assignment)
        assert draft.model_assisted and draft.model_version_id == tmodel.pk
        assert draft.saves == 0 and draft.base_revision == 0
        assert np.array_equal(_draft_labels(draft), expected)
        assert draft.instance_count == len(np.unique(expected[expected > 0]))
    kept = AnnotationDraft.objects.get(assignment=own)  # the annotator's own work is untouched
    assert (kept.sha256, kept.saves, kept.model_assisted) == (before.sha256, 1, False)
    assert not AnnotationDraft.objects.filter(assignment__image=done).exists()

    # The workspace sees the mark through the drafts API.
    api_client.force_authenticate(tworld.users["annotator"])
    got = api_client.get(API + f"assignments/{a1.pk}/draft/").json()
    assert got["model_assisted"] is True and got["model_version"] == tmodel.pk

    # The annotator corrects the draft (an autosave keeps the mark) and submits: model-assisted.
    corrected = expected.copy()
    corrected[0:4, 0:4] = corrected.max() + 1
    draft_save(actor=tworld.users["annotator"], assignment=a1, labels_data=png_bytes(corrected.astype(np.uint16)))
    assert AnnotationDraft.objects.get(assignment=a1).model_assisted
    result = annotation_submit_labels(actor=tworld.users["annotator"], assignment=a1, labels=corrected)
    annotation = result.annotation
    assert annotation.source == AnnotationSource.MODEL_ASSISTED and annotation.model_version_id == tmodel.pk
    # A revision of a model-assisted mask stays model-assisted.
    draft_discard(actor=tworld.users["annotator"], assignment=a1)
    again = annotation_submit_labels(actor=tworld.users["annotator"], assignment=a1, labels=corrected,
                                     base_revision=1).annotation
    assert (again.revision, again.source, again.model_version_id) == (2, "model_assisted", tmodel.pk)

    # Discarding the model's draft and drawing from scratch is manual work.
    draft_discard(actor=tworld.users["annotator2"], assignment=a2)
    manual = annotation_submit_labels(actor=tworld.users["annotator2"], assignment=a2, labels=corrected).annotation
    assert manual.source == AnnotationSource.MANUAL and manual.model_version_id is None
    assert Annotation.objects.filter(model_version=tmodel).count() == 2


def test_an_untouched_model_draft_is_replaced_by_a_newer_prediction(
        tworld, tmodel, api_client, django_capture_on_commit_callbacks):
    fresh, (a1, a2), *_ = _new_images(tworld)
    api_client.force_authenticate(tworld.users["ml_engineer"])
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client.post(API + f"models/{tmodel.pk}/predict/", {"images": [fresh.pk]}, format="json")
        assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.result["drafts_written"] == 2 and job.result["drafts_kept"] == 0
    assert AnnotationDraft.objects.filter(assignment__in=[a1, a2], model_assisted=True).count() == 2
