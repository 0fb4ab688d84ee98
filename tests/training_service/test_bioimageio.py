"""bioimage.io export: the package of a registered Cellpose model validates offline with bioimageio.spec."""

import io
import zipfile

import numpy as np
import yaml

from training.services.data import training_storage

API = "/api/v1/projects/train/"


def test_package_validates_and_points_to_the_snapshot_and_parent(
        tworld, tmodel, api_client, tmp_path, django_capture_on_commit_callbacks):
    from bioimageio.spec import load_description
    from bioimageio.spec.model.v0_5 import ModelDescr

    from tests.training_service.conftest import TINY_HYPER, train_model

    child = train_model(tworld, django_capture_on_commit_callbacks, base_model_id=tmodel.pk,
                        hyperparameters={**TINY_HYPER, "epochs": 1})
    api_client.force_authenticate(tworld.users["annotator"])
    assert api_client.get(API + f"models/{child.pk}/bioimageio/").status_code == 403
    api_client.force_authenticate(tworld.users["qa_lead"])
    response = api_client.get(API + f"models/{child.pk}/bioimageio/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert "nuclei-cp-v2.bioimageio.zip" in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    path = tmp_path / "model.zip"
    path.write_bytes(data)

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
        x = np.load(io.BytesIO(zf.read("test_input.npy")))
        y = np.load(io.BytesIO(zf.read("test_output.npy")))
    assert {"rdf.yaml", "weights.torchscript.pt", "test_input.npy", "test_output.npy", "cover.png",
            "README.md"} <= names
    assert rdf["format_version"].startswith("0.5") and rdf["type"] == "model"
    assert rdf["training_data"]["id"] == f"cellcurate/snapshot-{tworld.snapshot.content_hash}"
    assert rdf["parent"]["id"] == "cellcurate/train/nuclei-cp-v1"
    assert rdf["config"]["cellcurate"]["snapshot_content_hash"] == child.snapshot_content_hash
    assert rdf["config"]["cellcurate"]["weights_sha256"] == child.weights_sha256
    assert x.shape == (1, 2, 64, 64) and y.shape == (1, 3, 64, 64) and np.isfinite(y).all()

    descr = load_description(path, perform_io_checks=True)
    assert isinstance(descr, ModelDescr), descr.validation_summary.format()
    assert descr.validation_summary.status != "failed"

    # The TorchScript weights reproduce the test output from the normalised test input.
    import torch

    from training.bioimageio import normalize

    with zipfile.ZipFile(path) as zf:
        net = torch.jit.load(io.BytesIO(zf.read("weights.torchscript.pt")))
    with torch.no_grad():
        again = net(torch.from_numpy(normalize(x))).numpy()
    assert np.allclose(again, y, atol=1e-5)

    # Built once: the second request serves the stored zip.
    stored = f"training/models/train/nuclei-cp/v{child.version}/bioimageio.zip"
    assert training_storage().exists(stored)
    again_response = api_client.get(API + f"models/{child.pk}/bioimageio/")
    assert b"".join(again_response.streaming_content) == data


def test_a_sam_model_is_refused(tworld, api_client):
    from training.models import ModelVersion

    sam = ModelVersion.objects.create(project=tworld.project, name="sam-x", version=1, backbone="sam",
                                      weights="nowhere.pt", weights_sha256="0" * 64, code_version="t")
    api_client.force_authenticate(tworld.users["ml_engineer"])
    response = api_client.get(API + f"models/{sam.pk}/bioimageio/")
    assert response.status_code == 400 and "only Cellpose" in response.json()["model"][0]
