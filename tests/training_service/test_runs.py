"""Training runs through the API: a tiny Cellpose net trains, evaluates and registers."""

import pytest

from datasets.models import SnapshotItem
from tests.training_service.conftest import run_body
from training.enums import RunStatus
from training.models import ModelVersion, TrainingRun
from training.services import code_version
from training.services.data import training_storage
from training.tasks import REAP_TASK, RUN_TASK, training_run_task, training_runs_reap_task

API = "/api/v1/projects/train/"


def _post_run(client, user, world, capture, **kw):
    client.force_authenticate(user)
    with capture(execute=True):
        response = client.post(API + "training-runs/", run_body(snapshot=world.snapshot.pk, **kw), format="json")
    return response


def test_task_names_and_queue_are_pinned():
    assert training_run_task.name == RUN_TASK == "training.run_execute"
    assert training_runs_reap_task.name == REAP_TASK == "training.runs_reap"
    from config.celery import app

    route = app.amqp.router.route({}, RUN_TASK)
    assert route["queue"].name == "training"
    assert training_run_task.acks_late is True and training_run_task.reject_on_worker_lost is True
    assert training_run_task.time_limit > training_run_task.soft_time_limit > 0


def test_run_completes_and_registers_a_model_with_lineage(tworld, api_client,
                                                          django_capture_on_commit_callbacks):
    response = _post_run(api_client, tworld.users["ml_engineer"], tworld, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.epochs_done == run.epochs_total == 3
    assert len(run.train_loss) == 3 and all(v > 0 for v in run.train_loss)
    assert run.attempts == 1 and run.resumed_from_epoch == []
    assert run.checkpoint_epoch == 3 and training_storage().exists(run.checkpoint)
    assert run.device == "cpu"

    model = ModelVersion.objects.get(pk=run.model_version_id)
    assert (model.name, model.version, model.backbone) == ("nuclei-cp", 1, "cellpose")
    assert model.snapshot_content_hash == tworld.snapshot.content_hash
    assert model.code_version == code_version() and model.code_version.startswith("cellcurate ")
    assert model.parent is None
    assert model.hyperparameters["epochs"] == 3 and model.hyperparameters["tile_size"] == 64
    assert model.options["nbase"] == [8, 16, 32] and model.options["training"]["nbase"] == [2, 8, 16, 32]
    assert training_storage().exists(model.weights) and len(model.weights_sha256) == 64

    n_test = SnapshotItem.objects.filter(snapshot=tworld.snapshot, split="test").count()
    assert n_test > 0
    m = model.metrics
    assert m["split"] == "test" and m["n_images"] == n_test
    assert len(m["thresholds"]) == 10 and m["thresholds"][0] == 0.5
    pooled = m["model"]["pooled"]
    for key in ("ap", "f1"):
        assert len(pooled[key]) == 10 and all(0.0 <= v <= 1.0 for v in pooled[key])
    assert 0.0 <= pooled["panoptic_quality"] <= 1.0 and 0.0 <= pooled["mean_matched_iou"] <= 1.0
    assert m["base"] is None  # random initialisation: no base model to compare with
    assert set(m["groups"]) >= {"group", "modality"}
    assert sum(g["n_images"] for g in m["groups"]["modality"].values()) == n_test

    detail = api_client.get(API + f"training-runs/{run.pk}/").json()
    assert detail["status"] == "succeeded" and detail["progress"] == 1.0
    assert detail["model_version"] == model.pk and detail["train_loss"] == run.train_loss
    models = api_client.get(API + "models/").json()["results"]
    assert [x["id"] for x in models] == [model.pk]
    got = api_client.get(API + f"models/{model.pk}/").json()
    assert got["snapshot_content_hash"] == tworld.snapshot.content_hash and got["run"] == run.pk


def test_second_run_from_the_first_has_a_parent_a_base_score_and_compares(
        tworld, api_client, django_capture_on_commit_callbacks):
    first = _post_run(api_client, tworld.users["ml_engineer"], tworld, django_capture_on_commit_callbacks)
    parent = TrainingRun.objects.get(pk=first.json()["id"]).model_version
    second = _post_run(api_client, tworld.users["manager"], tworld, django_capture_on_commit_callbacks,
                       base_model=parent.pk)
    assert second.status_code == 202, second.json()
    run = TrainingRun.objects.get(pk=second.json()["id"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    child = run.model_version
    assert child.parent_id == parent.pk and child.version == 2
    assert child.metrics["base"] is not None
    # The base of the second run is the first model: its score there equals the first's own.
    assert child.metrics["base"]["pooled"]["ap"] == parent.metrics["model"]["pooled"]["ap"]
    cmp = api_client.get(API + f"models/{parent.pk}/compare/{child.pk}/").json()
    assert cmp["same_split"] is True
    assert cmp["a"]["id"] == parent.pk and cmp["b"]["parent"] == parent.pk
    assert cmp["per_threshold"]["ap_a"] == parent.metrics["model"]["pooled"]["ap"]
    expected = child.metrics["model"]["pooled"]["panoptic_quality"] - parent.metrics["model"]["pooled"]["panoptic_quality"]
    assert cmp["delta_b_minus_a"]["panoptic_quality"] == pytest.approx(expected)


@pytest.mark.parametrize("role,status", [("qa_lead", 403), ("annotator", 403), ("non_member", 404)])
def test_only_ml_engineers_and_managers_start_runs(tworld, api_client, role, status,
                                                   django_capture_on_commit_callbacks):
    response = _post_run(api_client, tworld.users[role], tworld, django_capture_on_commit_callbacks)
    assert response.status_code == status
    assert TrainingRun.objects.count() == 0


def test_qa_leads_read_runs_annotators_do_not(tworld, api_client, django_capture_on_commit_callbacks):
    _post_run(api_client, tworld.users["ml_engineer"], tworld, django_capture_on_commit_callbacks)
    api_client.force_authenticate(tworld.users["qa_lead"])
    assert api_client.get(API + "training-runs/").json()["count"] == 1
    assert api_client.get(API + "models/").json()["count"] == 1
    api_client.force_authenticate(tworld.users["annotator"])
    assert api_client.get(API + "training-runs/").status_code == 403
    assert api_client.get(API + "models/").status_code == 403


@pytest.mark.parametrize("body,field", [
    ({"hyperparameters": {"epochs": 0}}, "hyperparameters"),
    ({"hyperparameters": {"tile_size": 50}}, "hyperparameters"),
    ({"hyperparameters": {"momentum": 0.9}}, "hyperparameters"),
    ({"options": {"nbase": [8]}}, "options"),
    ({"snapshot": 999999}, "snapshot"),
    ({"base_model": 999999}, "base_model"),
    ({"backbone": "unet"}, "backbone"),
])
def test_bad_input_is_400_naming_the_field_and_nothing_is_queued(tworld, api_client, body, field,
                                                                 django_capture_on_commit_callbacks):
    api_client.force_authenticate(tworld.users["ml_engineer"])
    payload = run_body(snapshot=tworld.snapshot.pk)
    payload.update(body)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.post(API + "training-runs/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert TrainingRun.objects.count() == 0 and callbacks == []
