"""A SAM fine-tune through the service: a tiny random ViT trains, evaluates with box prompts, registers."""

import pytest

from tests.factories import ImageFactory
from tests.training_service.conftest import train_model
from training.enums import RunStatus
from training.services.data import training_storage
from training.services.predict import model_version_predict

API = "/api/v1/projects/train/"
SAM_HYPER = {"epochs": 2, "learning_rate": 1e-3, "batch_size": 4, "tile_size": 64, "seed": 0,
             "save_every": 1, "warmup_epochs": 0, "images_per_epoch": 2}


def test_tiny_sam_run_completes_and_registers_a_model(tworld, api_client, django_capture_on_commit_callbacks):
    model = train_model(tworld, django_capture_on_commit_callbacks, name="nuclei-sam", backbone="sam",
                        hyperparameters=dict(SAM_HYPER), options={"model_type": "tiny", "box_jitter": 0.0})
    run = model.run
    assert run.status == RunStatus.SUCCEEDED and run.epochs_done == 2 and len(run.train_loss) == 2
    assert all(v is not None and v > 0 for v in run.train_loss)
    assert run.checkpoint_epoch == 2 and training_storage().exists(run.checkpoint)
    assert (model.backbone, model.name, model.version) == ("sam", "nuclei-sam", 1)
    assert model.snapshot_content_hash == tworld.snapshot.content_hash and model.parent is None
    assert model.options["model_type"] == "tiny" and model.hyperparameters["epochs"] == 2
    # Evaluated with the test split's boxes as prompts: every true cell is prompted once.
    metrics = model.metrics
    assert metrics["split"] == "test" and len(metrics["model"]["pooled"]["ap"]) == 10
    assert sum(metrics["model"]["pooled"]["tp"]) + sum(metrics["model"]["pooled"]["fn"]) > 0
    # The registered weights predict an image (point grid, no prompts known) through the service.
    image = tworld.images[0]
    labels = model_version_predict(model_version=model, image=image)
    assert labels.shape == (image.height, image.width) and labels.dtype.name == "uint32"
    api_client.force_authenticate(tworld.users["qa_lead"])
    listed = api_client.get(API + "models/", {"backbone": "sam"}).json()["results"]
    assert [m["id"] for m in listed] == [model.pk]

    # Active learning with a SAM model: unlabelled images ranked by 1 - mean predicted IoU.
    fresh = [ImageFactory(project=tworld.project) for _ in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        queued = api_client.post(API + "active-learning/", {"model": model.pk}, format="json")
    assert queued.status_code == 202
    ranking = api_client.get(API + "active-learning/", {"model": model.pk}).json()
    assert ranking["backbone"] == "sam" and {r["image"] for r in ranking["unlabelled"]} == {f.pk for f in fresh}
    for row in ranking["unlabelled"]:
        assert row["n_masks"] <= 64
        expected = 1.0 if row["n_masks"] == 0 else 1.0 - row["mean_predicted_iou"]
        assert row["score"] == pytest.approx(expected)
    assert len(ranking["labelled"]) == len(tworld.images)
