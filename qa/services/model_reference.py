"""Use cases: a trained model's prediction as a non-human reference of a QA run.

A QA run may take a registered model version (asked for with the run, or the project's
``reference_model`` QA setting). The model predicts the image
(:func:`training.services.predict.model_version_predict`), the prediction is compared with
the run's consensus (:func:`qa.noise.flag_model_disagreement`), and the result is stored
with the run as an immutable :class:`~qa.models.QaModelReference`. The model is never an
annotator: it takes no part in the consensus, agreement, scores, gating or reliability.
A model that cannot predict the image leaves an ``error`` on the reference, not a failed run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from annotation.models import Image, Project
from config.errors import InvalidInput
from qa.models import QaModelReference, QaRun, QaSettings
from qa.noise import flag_model_disagreement
from qa.services.masks import mask_encode
from training.models import ModelVersion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelReference:
    """A model's view of one image against a consensus, before it is stored."""

    model_version: ModelVersion
    labels: np.ndarray | None
    flags: list[dict]
    iou_threshold: float
    error: str
    duration_ms: int


def reference_model_get(*, project: Project, model_version_id: int | None) -> ModelVersion | None:
    """The model a QA run compares with: the one asked for, else the project's setting.

    Preconditions: an id asked for names a model version of this project (400 otherwise).
    """
    if model_version_id is None:
        setting = QaSettings.objects.filter(project=project).select_related("reference_model").first()
        return setting.reference_model if setting is not None else None
    model_version = ModelVersion.objects.filter(pk=model_version_id, project=project).first()
    if model_version is None:
        raise InvalidInput(f"project {project.slug!r} has no model version {model_version_id}",
                           field="reference_model")
    return model_version


def model_reference_compute(*, model_version: ModelVersion, image: Image, consensus_labels: np.ndarray,
                            iou_threshold: float) -> ModelReference:
    """Predict the image with the model and list where it disagrees with the consensus."""
    from training.services.predict import model_version_predict  # training sits beside qa

    started = time.perf_counter()
    try:
        predicted = model_version_predict(model_version=model_version, image=image)
        found = flag_model_disagreement(consensus_labels, predicted, iou_threshold=iou_threshold)
    except Exception as exc:
        # The run's own evidence stands; the reference records why it is missing.
        logger.exception("model %s could not serve as QA reference of image %s", model_version.pk, image.pk)
        return ModelReference(model_version, None, [], iou_threshold, f"{type(exc).__name__}: {exc}",
                              int((time.perf_counter() - started) * 1000))
    flags = [
        {"kind": str(d.kind), "score": round(float(d.score), 6),
         "cell": int(d.consensus_labels[0]) if d.consensus_labels else None,
         "consensus_cells": [int(c) for c in d.consensus_labels],
         "predicted_cells": [int(c) for c in d.predicted_labels]}
        for d in found
    ]
    return ModelReference(model_version, predicted, flags, iou_threshold, "",
                          int((time.perf_counter() - started) * 1000))


def model_reference_store(*, qa_run: QaRun, reference: ModelReference, staged) -> QaModelReference:
    """Store the reference with its run (inside the run's transaction and file staging)."""
    name, sha256, n_cells = "", "", 0
    if reference.labels is not None:
        encoded = mask_encode(reference.labels)
        image = qa_run.image
        name = staged.save(
            f"projects/{image.project_id}/qa/{image.pk}/model{reference.model_version.pk}-"
            f"{encoded.sha256[:16]}.{encoded.ext}", encoded.content,
        )
        sha256, n_cells = encoded.sha256, encoded.n_cells
    return QaModelReference.objects.create(
        qa_run=qa_run, model_version=reference.model_version, prediction=name,
        prediction_sha256=sha256, n_cells=n_cells, iou_threshold=reference.iou_threshold,
        flags=reference.flags, n_flags=len(reference.flags), error=reference.error,
        duration_ms=reference.duration_ms,
    )
