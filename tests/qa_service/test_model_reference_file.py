"""The stored model-reference prediction as a file: `GET images/<id>/qa/model-reference/`.

Same roles and formats as the consensus file; the model is a tiny Cellpose trained through
the real training service (tests/training_service/conftest.py).
"""

import hashlib
import io

import numpy as np
import pytest
import tifffile
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from qa.models import QaRun
from qa.services import image_qa_run
from qa.services.masks import mask_read
from tests.api.uploads import url
from tests.factories import ImageFactory, api_client  # noqa: F401
from tests.training_service.conftest import tmodel, tworld  # noqa: F401
from training.services.data import training_storage
from training.services.predict import weights_file

pytestmark = pytest.mark.django_db


def _file_url(world, image):
    return url(world.project.slug, "images", image.pk, "qa", "model-reference")


def test_the_stored_prediction_downloads_for_the_consensus_readers(tworld, tmodel, api_client):  # noqa: F811
    image = tworld.images[0]
    run = image_qa_run(image=image, actor=tworld.users["qa_lead"], reference_model=tmodel.pk)
    stored_name = run.model_reference.prediction.name
    stored = mask_read(stored_name)
    # The one-epoch model may find no cell; the consensus has cells, so serving it would fail.
    assert not np.array_equal(mask_read(run.consensus.name), stored)

    # GET images/<id>/qa/ links to it from the model_reference block.
    api_client.force_authenticate(tworld.users["qa_lead"])
    block = api_client.get(url(tworld.project.slug, "images", image.pk, "qa")).json()["model_reference"]
    assert block["prediction_url"] == _file_url(tworld, image)
    assert block["prediction_sha256"] == run.model_reference.prediction_sha256

    for role in ("qa_lead", "manager", "ml_engineer"):
        api_client.force_authenticate(tworld.users[role])
        response = api_client.get(block["prediction_url"])
        assert response.status_code == 200, (role, response.status_code)
        content = b"".join(response.streaming_content)
        with default_storage.open(stored_name, "rb") as fh:
            assert content == fh.read()  # the stored file as it is
        assert hashlib.sha256(content).hexdigest() == block["prediction_sha256"]
        assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(content))), stored)
        assert f"model{tmodel.pk}_reference_run{run.pk}" in response["Content-Disposition"]
        assert response["Cache-Control"] == "private, no-store"

    # Converted like the consensus: ?format=tiff gives the same labels.
    api_client.force_authenticate(tworld.users["qa_lead"])
    tiff = api_client.get(block["prediction_url"] + "?format=tiff")
    assert tiff.status_code == 200
    assert np.array_equal(tifffile.imread(io.BytesIO(tiff.content)), stored)
    bad = api_client.get(block["prediction_url"] + "?format=jpeg")
    assert bad.status_code == 400 and "format" in bad.json()

    # Annotators (blind labelling) and non-members hear 404, and annotators get no link.
    for name in ("annotator", "non_member"):
        api_client.force_authenticate(tworld.users[name])
        assert api_client.get(block["prediction_url"]).status_code == 404
    api_client.force_authenticate(tworld.users["annotator"])
    assert api_client.get(url(tworld.project.slug, "images", image.pk, "qa")).json()["model_reference"] is None


def test_no_reference_is_a_404_that_says_why(tworld, tmodel, api_client):  # noqa: F811
    api_client.force_authenticate(tworld.users["qa_lead"])
    never_run = ImageFactory(project=tworld.project)
    assert api_client.get(_file_url(tworld, never_run)).json()["code"] == "qa_not_run"
    # The world's runs were made without a model: the latest run has no reference.
    image = tworld.images[1]
    assert QaRun.objects.filter(image=image).exists()
    response = api_client.get(_file_url(tworld, image))
    assert response.status_code == 404
    assert response.json()["code"] == "no_model_reference"
    assert "not compared with a model" in response.json()["detail"]
    assert api_client.get(url(tworld.project.slug, "images", image.pk, "qa")).json()["model_reference"] is None

    # A later run with a model that could not predict (its weights are gone): 404 with its error.
    weights_file.cache_clear()
    training_storage().delete(tmodel.weights)
    try:
        run = image_qa_run(image=image, actor=tworld.users["qa_lead"], reference_model=tmodel.pk)
    finally:
        weights_file.cache_clear()
    assert run.model_reference.error
    response = api_client.get(_file_url(tworld, image))
    assert response.status_code == 404 and "could not predict" in response.json()["detail"]
    assert run.model_reference.error in response.json()["detail"]
    block = api_client.get(url(tworld.project.slug, "images", image.pk, "qa")).json()["model_reference"]
    assert block["error"] and block["prediction_url"] is None
