"""The model registry: register a trained model with its lineage, evaluate, compare two.

A :class:`~training.models.ModelVersion` is immutable; its weights live in training
storage under a name derived from project, model name and version, so registering again
after a crash overwrites the same bytes rather than leaving strays.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
from django.db import transaction
from django.db.models import Max

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.models import Project
from config.errors import InvalidInput
from training.evaluate import evaluate, pooled_scores
from training.models import ModelVersion, TrainingRun
from training.services.data import SplitData, file_upload, sha256_file

READ_ROLES = (Role.ML_ENGINEER, Role.MANAGER, Role.QA_LEAD)
WRITE_ROLES = (Role.ML_ENGINEER, Role.MANAGER)
GROUP_KEYS = ("group", "modality", "batch")


@lru_cache(maxsize=1)
def code_version() -> str:
    """``cellcurate <version>`` plus the git commit when the source is a checkout.

    ``CELLCURATE_CODE_VERSION`` (set by a deployment) wins.  The commit is read from
    ``.git`` without running git, so it works in any process.
    """
    if os.environ.get("CELLCURATE_CODE_VERSION"):
        return os.environ["CELLCURATE_CODE_VERSION"]
    try:
        version = metadata.version("cellcurate")
    except metadata.PackageNotFoundError:
        version = "unknown"
    git = Path(__file__).resolve().parents[2] / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = git / ref
            if ref_file.exists():
                head = ref_file.read_text().strip()
            else:
                packed = (git / "packed-refs").read_text().splitlines()
                head = next(line.split()[0] for line in packed if line.endswith(" " + ref))
        return f"cellcurate {version}+g{head[:12]}"
    except (OSError, StopIteration):
        return f"cellcurate {version}"


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("torch", "cellpose", "segment-anything", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def evaluation_build(truth: SplitData, predictions: list[np.ndarray],
                     base_predictions: list[np.ndarray] | None, *, split: str) -> dict:
    """:func:`training.evaluate.evaluate` plus pooled scores per group, modality and batch."""
    result = evaluate(truth.labels, predictions, base_predictions=base_predictions, names=truth.names)
    thresholds = result["thresholds"]
    groups: dict[str, dict[str, dict]] = {}
    for key in GROUP_KEYS:
        values = sorted({g[key] for g in truth.groups if g[key]})
        if len(values) < 1:
            continue
        groups[key] = {}
        for value in values:
            idx = [i for i, g in enumerate(truth.groups) if g[key] == value]
            entry = {"n_images": len(idx),
                     "model": pooled_scores([result["model"]["per_image"][i] for i in idx], thresholds)}
            if result["base"] is not None:
                entry["base"] = pooled_scores([result["base"]["per_image"][i] for i in idx], thresholds)
            groups[key][value] = entry
    result["groups"] = groups
    result["split"] = split
    return result


def summary(metrics: dict) -> dict:
    """The headline numbers of an evaluation: mean AP over thresholds, AP@0.5, F1@0.5, IoU, PQ."""
    if not metrics or "model" not in metrics:
        return {}

    def head(p):
        return {"ap_50": p["ap"][0], "mean_ap": float(np.mean(p["ap"])), "f1_50": p["f1"][0],
                "mean_matched_iou": p["mean_matched_iou"], "panoptic_quality": p["panoptic_quality"]}

    out = {"split": metrics.get("split"), "n_images": metrics.get("n_images"),
           "model": head(metrics["model"]["pooled"])}
    if metrics.get("base"):
        out["base"] = head(metrics["base"]["pooled"])
    return out


@transaction.atomic
def model_register(*, run: TrainingRun, weights: Path, metrics: dict, meta: dict) -> ModelVersion:
    """Register the run's weights as the next version of ``run.name`` (idempotent per run)."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.model_version_id is not None:
        return run.model_version
    Project.objects.select_for_update().filter(pk=run.project_id).first()
    latest = ModelVersion.objects.filter(project_id=run.project_id, name=run.name).aggregate(v=Max("version"))["v"]
    version = (latest or 0) + 1
    name = f"training/models/{run.project.slug}/{run.name}/v{version}/{weights.name}"
    stored = file_upload(weights, name)
    snapshot = run.snapshot
    model = ModelVersion.objects.create(
        project_id=run.project_id, name=run.name, version=version, backbone=run.backbone,
        weights=stored, weights_sha256=sha256_file(weights), parent=run.base_model,
        snapshot=snapshot, snapshot_content_hash=snapshot.content_hash, code_version=code_version(),
        hyperparameters=run.hyperparameters,
        options={**run.options, "training": meta, "libraries": library_versions(),
                 "base_weights": run.base_weights or None,
                 "splits": {"train": run.train_split, "val": run.val_split, "test": run.test_split}},
        metrics=metrics, created_by=run.created_by,
    )
    TrainingRun.objects.filter(pk=run.pk).update(model_version=model)
    return model


def model_compare(*, user, project: Project, a: ModelVersion, b: ModelVersion) -> dict:
    """Two versions side by side: lineage, headline metrics, and their difference.

    When both were evaluated on the same snapshot and split the numbers are comparable
    (``same_split`` true); otherwise they are shown but flagged.
    """
    check_project_role(user=user, project=project, roles=READ_ROLES)
    if a.project_id != project.pk or b.project_id != project.pk:
        raise InvalidInput("both models must belong to this project", field="model")

    def card(m):
        return {"id": m.pk, "name": m.name, "version": m.version, "backbone": m.backbone,
                "parent": m.parent_id, "snapshot": m.snapshot_id,
                "snapshot_content_hash": m.snapshot_content_hash, "code_version": m.code_version,
                "hyperparameters": m.hyperparameters, "summary": summary(m.metrics)}

    sa, sb = summary(a.metrics), summary(b.metrics)
    same = bool(sa and sb and a.snapshot_content_hash == b.snapshot_content_hash
                and sa.get("split") == sb.get("split"))
    delta = None
    if sa and sb:
        delta = {k: sb["model"][k] - sa["model"][k] for k in sa["model"]}
    per_threshold = None
    if same:
        per_threshold = {"thresholds": a.metrics["thresholds"],
                         "ap_a": a.metrics["model"]["pooled"]["ap"],
                         "ap_b": b.metrics["model"]["pooled"]["ap"]}
    return {"a": card(a), "b": card(b), "same_split": same, "delta_b_minus_a": delta,
            "per_threshold": per_threshold}
