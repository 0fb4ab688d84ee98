"""Export a registered Cellpose model as a bioimage.io model package (built once, kept in storage)."""

from __future__ import annotations

import shutil

from annotation.access import check_project_role
from annotation.models import Project
from config.errors import InvalidInput
from datasets.models import SnapshotItem
from datasets.services.exports import export_item
from training.bioimageio import PackageInfo, build_package
from training.enums import Backbone
from training.models import ModelVersion
from training.services.data import file_upload, local_workdir, training_storage
from training.services.predict import weights_file
from training.services.registry import READ_ROLES, summary


def package_id(model: ModelVersion) -> str:
    return f"cellcurate/{model.project.slug}/{model.name}-v{model.version}".lower()


def _test_image(model: ModelVersion):
    items = SnapshotItem.objects.filter(snapshot_id=model.snapshot_id).order_by("split", "image_sha256")
    item = items.filter(split="test").first() or items.first()
    if item is None:
        raise InvalidInput(f"model {model.pk} has no snapshot image to make a test input from", field="model")
    return export_item(item.row, need_pixels=True).image


def model_bioimageio_package(*, user, project: Project, model: ModelVersion) -> str:
    """Storage name of the model's bioimage.io zip, built (and validated) on first request.

    Preconditions: the user reads models of the project; ``model`` is a Cellpose model of
    it trained on a snapshot (its test split gives the package's test input).
    """
    check_project_role(user=user, project=project, roles=READ_ROLES)
    if model.project_id != project.pk:
        raise InvalidInput(f"model {model.pk} is not a model of this project", field="model")
    if model.backbone != Backbone.CELLPOSE:
        raise InvalidInput(f"model {model} is a {model.backbone} model; only Cellpose models export to "
                           "bioimage.io", field="model")
    name = f"training/models/{project.slug}/{model.name}/v{model.version}/bioimageio.zip"
    if training_storage().exists(name):
        return name
    parent = package_id(model.parent) if model.parent_id else None
    info = PackageInfo(
        model_id=package_id(model), name=f"CellCurate {model.name} v{model.version}",
        description=f"Cellpose 3 model {model.name} v{model.version} of CellCurate project "
                    f"{project.name!r}, fine-tuned on dataset snapshot {model.snapshot_content_hash[:12]}.",
        version=model.version, dataset_id=f"cellcurate/snapshot-{model.snapshot_content_hash}",
        parent_id=parent,
        lineage={"snapshot_content_hash": model.snapshot_content_hash, "code_version": model.code_version,
                 "weights_sha256": model.weights_sha256, "backbone": model.backbone,
                 "parent": parent, "hyperparameters": model.hyperparameters,
                 "metrics": summary(model.metrics)},
    )
    work = local_workdir("cellcurate-bioimageio-")
    try:
        zipped = build_package(weights=weights_file(model.weights, model.weights_sha256), image=_test_image(model),
                               info=info, workdir=work, diam_mean=model.options.get("diam_mean")
                               or model.options.get("training", {}).get("diam_mean"))
        return file_upload(zipped, name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
