"""A trained model as a non-human QA reference: predicted, compared, stored, exposed, never an annotator.

The model is a tiny, randomly initialised Cellpose network fine-tuned for one epoch
through the real training service (see tests/training_service/conftest.py).
"""

import numpy as np
import pytest
from django.db import IntegrityError, transaction

from annotation.models import Job
from qa.models import AuditEvent, ImmutableError, QaModelReference, QaRun, QaSettings
from qa.noise import flag_model_disagreement
from qa.services import image_qa_run
from qa.services.masks import mask_read
from tests.api.uploads import url
from tests.factories import api_client  # noqa: F401
from tests.training_service.conftest import tmodel, tworld  # noqa: F401
from training.services.data import training_storage
from training.services.predict import model_version_predict, weights_file

pytestmark = pytest.mark.django_db


def _qa(world, image):
    return url(world.project.slug, "images", image.pk, "qa")


def test_a_run_asked_with_a_reference_model_stores_and_shows_it(
        tworld, tmodel, api_client, django_capture_on_commit_callbacks):  # noqa: F811
    image = tworld.images[0]
    before = QaRun.objects.filter(image=image).count()
    api_client.force_authenticate(tworld.users["qa_lead"])
    with django_capture_on_commit_callbacks(execute=True):
        posted = api_client.post(_qa(tworld, image), {"reference_model": tmodel.pk}, format="json")
    assert posted.status_code == 202
    assert Job.objects.get(pk=posted.json()["id"]).status == "succeeded"
    run = QaRun.objects.filter(image=image).order_by("-id").first()
    assert QaRun.objects.filter(image=image).count() == before + 1
    ref = run.model_reference
    assert (ref.model_version_id, ref.error) == (tmodel.pk, "")
    # What is stored is the model's prediction and the core's comparison with the consensus.
    predicted = model_version_predict(model_version=tmodel, image=image)
    assert np.array_equal(mask_read(ref.prediction.name), predicted)
    assert ref.n_cells == len(np.unique(predicted[predicted > 0]))
    expected = flag_model_disagreement(mask_read(run.consensus.name), predicted, iou_threshold=0.5)
    assert ref.n_flags == len(expected) > 0
    assert [(f["kind"], f["consensus_cells"], f["predicted_cells"]) for f in ref.flags] == [
        (str(d.kind), list(d.consensus_labels), list(d.predicted_labels)) for d in expected]

    body = api_client.get(_qa(tworld, image)).json()
    shown = body["model_reference"]
    assert shown["model"] == {"id": tmodel.pk, "name": tmodel.name, "version": tmodel.version,
                              "backbone": "cellpose"}
    assert shown["flags"] == ref.flags and shown["error"] is None
    # Never an annotator: the people are the two annotators, in every part of the run.
    people = {tworld.users["annotator"].username, tworld.users["annotator2"].username}
    assert {a["annotator"] for a in body["annotations"]} == people
    assert set(body["agreement"]["annotators"]) == people == set(body["algorithm"]["weights"])
    assert {s["annotator"] for s in body["scores"]} == people
    assert {f["annotator"] for f in body["flags"]} <= people
    # Annotators do not see it.
    api_client.force_authenticate(tworld.users["annotator"])
    assert api_client.get(_qa(tworld, image)).json()["model_reference"] is None

    # Stored immutably, like the rest of the run.
    with pytest.raises(ImmutableError):
        ref.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        QaModelReference.objects.filter(pk=ref.pk).update(n_flags=0)


def test_the_project_setting_applies_to_every_run_and_bad_input_is_refused(
        tworld, tmodel, api_client, django_capture_on_commit_callbacks):  # noqa: F811
    image = tworld.images[1]
    settings_url = url(tworld.project.slug, "qa", "settings")
    api_client.force_authenticate(tworld.users["manager"])
    bad = api_client.patch(settings_url, {"reference_model": tmodel.pk + 1000}, format="json")
    assert bad.status_code == 400 and "reference_model" in bad.json()
    assert not QaSettings.objects.filter(project=tworld.project).exists()
    ok = api_client.patch(settings_url, {"reference_model": tmodel.pk}, format="json")
    assert ok.status_code == 200 and ok.json()["reference_model"] == tmodel.pk
    assert AuditEvent.objects.filter(kind="settings", links__after__reference_model=tmodel.pk).count() == 1

    run = image_qa_run(image=image, actor=tworld.users["qa_lead"])
    assert run.model_reference.model_version_id == tmodel.pk

    # An id that is not one of the project's models: 400 on the field, no job queued.
    jobs = Job.objects.count()
    api_client.force_authenticate(tworld.users["qa_lead"])
    refused = api_client.post(_qa(tworld, image), {"reference_model": tmodel.pk + 1000}, format="json")
    assert refused.status_code == 400 and "reference_model" in refused.json()
    assert Job.objects.count() == jobs

    # Clearing the setting: runs have no model reference again.
    api_client.force_authenticate(tworld.users["manager"])
    assert api_client.patch(settings_url, {"reference_model": None}, format="json").json()["reference_model"] is None
    assert not hasattr(image_qa_run(image=image, actor=tworld.users["qa_lead"]), "model_reference")

    # A model that cannot predict (its weights are gone) leaves an error, not a failed run.
    weights_file.cache_clear()
    training_storage().delete(tmodel.weights)
    try:
        run = image_qa_run(image=tworld.images[2], actor=tworld.users["qa_lead"], reference_model=tmodel.pk)
    finally:
        weights_file.cache_clear()
    assert run.n_cells > 0 and run.status == "complete"
    assert run.model_reference.error and run.model_reference.flags == []
    assert run.model_reference.prediction.name == ""
