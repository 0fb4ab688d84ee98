"""The editor's assist: one cell's mask from a box or points, by SAM or a classical fallback.

With SAM weights (a registered SAM model version, or ``ASSIST_SAM_WEIGHTS``) the image is
embedded once per image and model and the embedding cached in training storage
(``training/embeddings/<image sha256>/<weights sha256>.pt``), so each prompt after the
first runs the prompt encoder and mask decoder only.  Without weights (none can be
downloaded) :func:`training.assist.segment_in_box` answers.  The answer says which did.

When an annotator leases an image (``assignments/next/``) and ``ASSIST_SAM_WEIGHTS`` is
set, :func:`assist_precompute_schedule` queues the embedding as a task, so the first
prompt in the editor is already decoder-only.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from annotation.models import Image, Project
from annotation.selectors import image_get
from config.errors import InvalidInput
from training.assist import METHOD as CLASSICAL
from training.assist import check_box, segment_in_box
from training.enums import Backbone
from training.models import ModelVersion
from training.services.data import sha256_file, training_storage
from training.services.predict import image_pixels, weights_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssistOutcome:
    mask: np.ndarray  # bool (H, W)
    method: str
    score: float
    embedding_cached: bool | None  # None for the classical method

    def as_dict(self) -> dict:
        ys, xs = np.nonzero(self.mask)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if len(xs) else None
        return {"method": self.method, "score": round(self.score, 4), "area": int(self.mask.sum()),
                "bbox": bbox, "embedding_cached": self.embedding_cached, "rle": mask_rle(self.mask)}


def mask_rle(mask: np.ndarray) -> dict:
    """Uncompressed run lengths in row-major order, starting with a background run."""
    flat = np.asarray(mask, bool).ravel()
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "order": "C", "counts": counts}


def _check_prompts(box, points, point_labels, shape) -> tuple:
    if box is None and not points:
        raise InvalidInput("give a box or at least one point", field="box")
    pts = lab = None
    if points:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
            raise InvalidInput("points must be a list of [x, y] pairs", field="points")
        lab = np.ones(len(pts), int) if point_labels is None else np.asarray(point_labels, int)
        if lab.shape != (len(pts),) or not np.isin(lab, (0, 1)).all():
            raise InvalidInput("point_labels must be one 0 or 1 per point", field="point_labels")
    if box is not None:
        try:
            check_box(box, shape)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="box") from exc
    elif pts is not None:
        if not (lab == 1).any():
            raise InvalidInput("without a box at least one point must be positive", field="point_labels")
    return pts, lab


def _sam_weights(project: Project, model_id: int | None) -> tuple[str, Path] | None:
    """(label, local weights file) of the SAM to use, or None for the classical fallback."""
    if model_id is not None:
        model = ModelVersion.objects.filter(project=project, pk=model_id).first()
        if model is None:
            raise InvalidInput(f"model {model_id} not found in this project", field="model")
        if model.backbone != Backbone.SAM:
            raise InvalidInput(f"model {model} is not a SAM model", field="model")
        return f"sam:{model.name}:v{model.version}", weights_file(model.weights, model.weights_sha256)
    configured = _configured_sam()
    return None if configured is None else ("sam:" + configured[0].name, configured[0])


@lru_cache(maxsize=8)
def _weights_digest(path: Path, mtime_ns: int) -> str:
    return sha256_file(path)


@lru_cache(maxsize=2)
def _load_sam(path: Path, mtime_ns: int):
    from training.backbones import sam as sam_backbone

    return sam_backbone.load_model(path, device=settings.TRAINING_DEVICE)


def embedding_name(image: Image, weights_sha: str) -> str:
    return f"training/embeddings/{image.sha256}/{weights_sha[:32]}.pt"


def _configured_sam() -> tuple[Path, int] | None:
    """The configured SAM weights file and its mtime, or None (unset or unreadable)."""
    if not settings.ASSIST_SAM_WEIGHTS:
        return None
    path = Path(settings.ASSIST_SAM_WEIGHTS)
    try:
        return path, path.stat().st_mtime_ns
    except OSError as exc:
        logger.warning("ASSIST_SAM_WEIGHTS %s is unreadable: %s", path, exc)
        return None


def assist_precompute_schedule(*, image: Image) -> bool:
    """Queue the embedding of a just-leased image for the configured SAM; whether it was queued.

    Nothing is queued without ``ASSIST_SAM_WEIGHTS`` or when the embedding is cached.
    Called by the ``assignments/next/`` view after the lease is taken.
    """
    configured = _configured_sam()
    if configured is None:
        return False
    path, mtime = configured
    if training_storage().exists(embedding_name(image, _weights_digest(path, mtime))):
        return False
    from training.tasks import assist_embed_task

    transaction.on_commit(lambda: assist_embed_task.delay(image.pk))
    return True


def assist_embed(*, image_id: int) -> bool:
    """Compute and cache an image's embedding for the configured SAM; whether it was computed now."""
    configured = _configured_sam()
    image = Image.objects.filter(pk=image_id).first()
    if configured is None or image is None:
        return False
    path, mtime = configured
    _, cached = embedding_get(sam=_load_sam(path, mtime), image=image, pixels=image_pixels(image),
                              weights_sha=_weights_digest(path, mtime))
    return not cached


def embedding_get(*, sam, image: Image, pixels: np.ndarray, weights_sha: str) -> tuple[tuple, bool]:
    """The image's SAM embedding, from the storage cache or computed and cached; (it, was_cached)."""
    import torch

    from training.backbones.sam_model import embed

    storage = training_storage()
    name = embedding_name(image, weights_sha)
    if storage.exists(name):
        with storage.open(name, "rb") as fh:
            obj = torch.load(io.BytesIO(fh.read()), map_location=sam.device, weights_only=True)
        return (obj["embedding"], tuple(obj["input_size"]), tuple(obj["original"])), True
    emb, input_size, original = embed(sam, [pixels], None, sam.device)[0]
    buf = io.BytesIO()
    torch.save({"embedding": emb.cpu(), "input_size": list(input_size), "original": list(original)}, buf)
    storage.save(name, ContentFile(buf.getvalue()))
    return (emb, input_size, original), False


def sam_segment(sam, embedding: tuple, *, box=None, points=None, point_labels=None) -> tuple[np.ndarray, float]:
    """Decoder only: the best of SAM's masks for one prompt, and its predicted IoU."""
    import torch

    from training.backbones.sam_model import decode

    emb, input_size, original = embedding
    kw = {}
    if box is not None:
        kw["boxes"] = np.asarray(box, dtype=np.float64).reshape(1, 4)
    if points is not None:
        kw["points"] = np.asarray(points, dtype=np.float64)[None]
        kw["labels"] = np.asarray(point_labels)[None]
    with torch.inference_mode():  # the mask leaves as numpy; no autograd bookkeeping at all
        logits, iou = decode(sam, emb, input_size, original, multimask=box is None, **kw)
    best = int(iou[0].argmax())
    return (logits[0, best] > sam.mask_threshold).cpu().numpy(), float(iou[0, best])


def assist_segment(*, actor, project: Project, image_id: int, box=None, points=None, point_labels=None,
                   channel: int | None = None, model_id: int | None = None) -> AssistOutcome:
    """One cell's mask for a prompt on an image the user may see (any role that sees it)."""
    image = image_get(user=actor, project=project, image_id=image_id)
    pixels = image_pixels(image)
    shape = pixels.shape[:2] if pixels.ndim == 2 or pixels.shape[-1] <= 4 else pixels.shape[1:]
    pts, lab = _check_prompts(box, points, point_labels, shape)
    chosen = _sam_weights(project, model_id)
    if chosen is None:
        if box is None:
            raise InvalidInput("without SAM weights the classical assist needs a box", field="box")
        try:
            result = segment_in_box(pixels, box, points=pts, point_labels=lab, channel=channel)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="channel") from exc
        return AssistOutcome(mask=result.mask, method=CLASSICAL, score=result.score, embedding_cached=None)
    label, path = chosen
    mtime = path.stat().st_mtime_ns
    sam = _load_sam(path, mtime)
    embedding, cached = embedding_get(sam=sam, image=image, pixels=pixels,
                                      weights_sha=_weights_digest(path, mtime))
    mask, score = sam_segment(sam, embedding, box=box, points=pts, point_labels=lab)
    return AssistOutcome(mask=mask, method=label, score=score, embedding_cached=cached)
