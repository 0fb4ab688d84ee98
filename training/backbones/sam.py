"""Segment Anything backbone: fine-tune SAM's mask decoder on box prompts and segment.

The image encoder stays frozen and every image is embedded once per run (the cache is
what makes CPU fine-tuning possible: ``vit_b`` embeds one image in about 19 s on a 2-core
CPU).  Each optimiser step takes up to ``batch_size`` cells of one image, prompts the
decoder with each cell's bounding box (randomly jittered by ``box_jitter`` of its side)
and minimises BCE + soft Dice between the single-mask output and the cell at the
decoder's low resolution (4x the embedding grid: a quarter of vit_b's input frame), plus
the MSE between the predicted and the actual IoU so the IoU head stays usable for
automatic mode.  Each epoch's image order, cell order and jitter come from
``np.random.default_rng([seed, epoch])``, so a resumed run reaches the same weights.

Architectures (:mod:`training.backbones.sam_model`): ``vit_b``/``vit_l``/``vit_h`` and
``tiny``.  Weights files of ours hold ``{"backbone": "sam", "arch": ..., "model":
state_dict}`` and are self-contained; checkpoints hold only the trained parts and the
optimiser state.

torch and segment_anything are imported inside functions only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.backbones.base import (
    ProgressCallback,
    TrainConfig,
    TrainResult,
    WeightsError,
    check_resume,
    learning_rate_schedule,
    output_dir,
    read_weights_file,
    resolve_device,
    validate_pairs,
    write_torch_file,
)
from training.backbones.sam_model import (
    BACKBONE,
    arch_of,
    build,
    decode,
    embed,
    label_boxes,
    load_state,
)

WEIGHTS_NAME = "sam_weights.pt"
CHECKPOINT_NAME = "sam_checkpoint.pt"
@dataclass(frozen=True)
class SamOptions:
    """SAM-specific training options.

    Attributes
    ----------
    model_type : {'vit_b', 'vit_l', 'vit_h', 'tiny'}
        Architecture of a randomly initialised model (base weights carry their own).
    train_prompt_encoder : bool
        Fine-tune the prompt encoder as well as the mask decoder.
    box_jitter : float
        Each box coordinate moves by up to this fraction of the box side (augmentation).
    channels : tuple of int or None
        Image channels mapped to SAM's RGB input (at most 3); None maps gray to all three.
    """

    model_type: str = "vit_b"
    train_prompt_encoder: bool = False
    box_jitter: float = 0.1
    channels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.model_type not in ("vit_b", "vit_l", "vit_h", "tiny"):
            raise ValueError(f"model_type must be vit_b, vit_l, vit_h or tiny, got "
                             f"{self.model_type!r}")
        if not 0 <= self.box_jitter < 1:
            raise ValueError(f"box_jitter must be in [0, 1), got {self.box_jitter!r}")
        if self.channels is not None and not 1 <= len(self.channels) <= 3:
            raise ValueError(f"channels must name 1 to 3 channels, got {self.channels!r}")


def _targets(sam, label, ids, input_size):
    """Cells as soft masks in the decoder's low-resolution frame, (n, 1, 4h, 4w)."""
    import torch
    import torch.nn.functional as F

    size = sam.image_encoder.img_size
    masks = torch.from_numpy((label[None] == ids[:, None, None]).astype(np.float32))[:, None]
    masks = F.interpolate(masks, input_size, mode="bilinear", align_corners=False)
    masks = F.pad(masks, (0, size - input_size[1], 0, size - input_size[0]))
    low = 4 * sam.prompt_encoder.image_embedding_size[0]  # the decoder upsamples 4x
    return F.interpolate(masks, (low, low), mode="area")


def _loss(logits, iou_pred, target):
    import torch
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (prob * target).sum((1, 2, 3)) + 1) / (prob.sum((1, 2, 3))
                                                          + target.sum((1, 2, 3)) + 1)
    hard, truth = (logits > 0).float(), (target > 0.5).float()
    inter = (hard * truth).sum((1, 2, 3))
    actual = inter / ((hard + truth).clamp(max=1).sum((1, 2, 3))).clamp(min=1)
    return bce + dice.mean() + F.mse_loss(iou_pred[:, 0], actual.detach())


def _epoch(sam, cache, labels, targets, order, rng, *, config, jitter, optimizer) -> float:
    import torch

    total, count = 0.0, 0
    for i in order:
        emb, input_size, original = cache[i]
        ids, boxes = labels[i]
        picks = rng.permutation(len(ids)) if rng is not None else np.arange(len(ids))
        for k in range(0, len(picks), config.batch_size):
            sel = picks[k:k + config.batch_size]
            b = boxes[sel].copy()
            if rng is not None and jitter > 0:
                side = np.tile(b[:, 2:] - b[:, :2] + 1, (1, 2))
                b = b + rng.uniform(-jitter, jitter, size=b.shape) * side
                b = np.clip(b, 0, [original[1] - 1, original[0] - 1] * 2)
            with torch.set_grad_enabled(optimizer is not None):
                logits, iou = decode(sam, emb, input_size, original, boxes=b, low_res=True)
                loss = _loss(logits, iou, targets[i][sel].to(logits.device))
            if optimizer is not None:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total += loss.item() * len(sel)
            count += len(sel)
    return total / max(count, 1)


def fine_tune(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], *,
              config: TrainConfig, base_weights: str | Path | None = None,
              val: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
              progress: ProgressCallback | None = None,
              checkpoint_dir: str | Path | None = None, resume: bool = False,
              options: SamOptions | None = None) -> TrainResult:
    """Fine-tune SAM's mask decoder (optionally its prompt encoder) on box prompts.

    Parameters are those of :func:`training.backbones.cellpose.fine_tune`; ``base_weights``
    is an official SAM checkpoint or a file of ours, ``options`` a :class:`SamOptions`.
    ``config.tile_size`` is unused (SAM sees whole images at its own input size).
    Resuming needs the same ``base_weights``: only the trained parts are checkpointed.

    Returns
    -------
    TrainResult
        ``weights`` is ``checkpoint_dir / "sam_weights.pt"`` (self-contained).
    """
    import torch

    options = options or SamOptions()
    validate_pairs(images, masks, name="images")
    if val is not None:
        validate_pairs(val[0], val[1], name="val")
    if base_weights is not None:
        base_state, arch = load_state(base_weights)
    else:
        base_state, arch = None, arch_of(options.model_type)
    device = resolve_device(config.device)
    out = output_dir(checkpoint_dir)
    t0 = time.perf_counter()
    sam = build(arch, seed=config.seed, device=device)
    if base_state is not None:
        sam.load_state_dict(base_state)
    trained = [sam.mask_decoder] + ([sam.prompt_encoder] if options.train_prompt_encoder else [])
    for p in sam.parameters():
        p.requires_grad_(False)
    params = [p for m in trained for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    lr = learning_rate_schedule(config.learning_rate, config.epochs,
                                warmup_epochs=config.warmup_epochs)

    def prepare(imgs, labs):
        cache = embed(sam, imgs, options.channels, device)
        boxes = [label_boxes(np.asarray(m)) for m in labs]
        targets = [_targets(sam, np.asarray(m), ids, c[1]) for m, (ids, _), c
                   in zip(labs, boxes, cache, strict=True)]
        return cache, boxes, targets

    cache, boxes, targets = prepare(images, masks)
    if sum(len(ids) for ids, _ in boxes) == 0:
        raise ValueError("images: the label images hold no cells to prompt with")
    if val is not None:
        vcache, vboxes, vtargets = prepare(*val)

    train_loss = [float("nan")] * config.epochs
    val_loss = [float("nan")] * config.epochs
    start = 0
    ckpt_path = out / CHECKPOINT_NAME
    base_name = None if base_weights is None else str(base_weights)
    if resume and ckpt_path.exists():
        state = read_weights_file(ckpt_path, what="checkpoint")
        start = check_resume(state, config=config, backbone=BACKBONE, path=ckpt_path)
        if state.get("base_weights") != base_name or state.get("options") != asdict(options):
            raise WeightsError(f"checkpoint {ckpt_path} was started from other base weights "
                               "or options")
        for m, s in zip(trained, state["trained"], strict=True):
            m.load_state_dict(s)
        optimizer.load_state_dict(state["optimizer"])
        train_loss[:start] = state["train_loss"][:start]
        val_loss[:start] = state["val_loss"][:start]

    n = len(images)
    for epoch in range(start, config.epochs):
        rng = np.random.default_rng([config.seed, epoch])
        order = (rng.permutation(n) if not config.images_per_epoch
                 else rng.choice(n, size=config.images_per_epoch))
        for group in optimizer.param_groups:
            group["lr"] = float(lr[epoch])
        sam.mask_decoder.train()
        train_loss[epoch] = _epoch(sam, cache, boxes, targets, order, rng, config=config,
                                   jitter=options.box_jitter, optimizer=optimizer)
        if val is not None:
            sam.mask_decoder.eval()
            val_loss[epoch] = _epoch(sam, vcache, vboxes, vtargets, range(len(vcache)), None,
                                     config=config, jitter=0.0, optimizer=None)
        done = epoch + 1
        if done % config.save_every == 0 or done == config.epochs:
            write_torch_file(ckpt_path, {
                "backbone": BACKBONE, "epoch": done, "config": config.as_dict(),
                "options": asdict(options), "base_weights": base_name,
                "trained": [m.state_dict() for m in trained],
                "optimizer": optimizer.state_dict(), "train_loss": train_loss[:done],
                "val_loss": val_loss[:done]})
        if progress is not None:
            progress(done, config.epochs, {"train_loss": train_loss[epoch],
                                           "val_loss": val_loss[epoch],
                                           "learning_rate": float(lr[epoch])})

    weights = write_torch_file(out / WEIGHTS_NAME, {"backbone": BACKBONE, "arch": arch,
                                                    "model": sam.state_dict()})
    return TrainResult(
        weights=weights, train_loss=tuple(train_loss), val_loss=tuple(val_loss),
        wall_time_s=time.perf_counter() - t0, epochs=config.epochs, start_epoch=start,
        checkpoint=ckpt_path,
        meta={"backbone": BACKBONE, "arch": arch["name"], "base_weights": base_name,
              "train_prompt_encoder": options.train_prompt_encoder})


def load_model(weights: str | Path, *, device: str = "auto") -> Any:
    """A ``segment_anything.modeling.Sam`` in eval mode; :class:`WeightsError` names a bad file."""
    state, arch = load_state(weights)
    sam = build(arch, seed=0, device=resolve_device(device))
    sam.load_state_dict(state)
    return sam.eval()


def predict(images: Sequence[np.ndarray], *, weights: str | Path, mode: str | None = None,
            boxes: Sequence[np.ndarray] | None = None,
            points: Sequence[np.ndarray] | None = None,
            point_labels: Sequence[np.ndarray] | None = None,
            cellpose_weights: str | Path | None = None,
            cellpose_labels: Sequence[np.ndarray] | None = None,
            points_per_side: int = 16, pred_iou_thresh: float = 0.5, min_size: int = 15,
            channels: tuple[int, ...] | None = None, batch_size: int = 64,
            device: str = "auto") -> list[np.ndarray]:
    """Segment with SAM from prompts, a point grid or a Cellpose prediction.

    Parameters
    ----------
    images : sequence of ndarray, each (H, W), (H, W, C) or (C, H, W)
    weights : path
        A SAM weights file (official checkpoint or ours).
    mode : {'boxes', 'points', 'grid', 'cellpose'} or None
        None picks 'boxes' when boxes are given, else 'points' when points are, else 'grid'.
    boxes : per image, ndarray (n, 4) of xyxy pixel coordinates
        One cell per box (interactive assistance).
    points, point_labels : per image, ndarray (n, 2) or (n, k, 2) of xy, and (n,) or (n, k)
        One cell per row; labels 1 = inside, 0 = outside (default all 1).
    cellpose_weights, cellpose_labels
        For mode 'cellpose': boxes come from Cellpose's prediction (run with these
        weights) or from given label images.
    points_per_side, pred_iou_thresh
        Grid mode: a ``points_per_side``² grid of single-point prompts; a mask is kept when
        its predicted IoU reaches ``pred_iou_thresh`` and most of it is not yet claimed.
    min_size : int
        Masks with fewer new pixels are dropped (prompt modes keep any non-empty mask).

    Returns
    -------
    list of ndarray of uint16 (uint32 above 65,535 cells), each (H, W)
        Higher predicted IoU wins where masks overlap; ids follow that order.
    """
    mode = mode or ("boxes" if boxes is not None else "points" if points is not None
                    else "grid")
    if mode not in ("boxes", "points", "grid", "cellpose"):
        raise ValueError(f"mode must be boxes, points, grid or cellpose, got {mode!r}")
    for name, given in (("boxes", boxes), ("points", points)):
        if mode == name and (given is None or len(given) != len(images)):
            raise ValueError(f"mode {name!r} needs {name} for each of the {len(images)} images")
    if mode == "cellpose" and (cellpose_weights is None) == (cellpose_labels is None):
        raise ValueError("mode 'cellpose' needs exactly one of cellpose_weights, cellpose_labels")
    sam = load_model(weights, device=device)
    if mode == "cellpose" and cellpose_labels is None:
        from training.backbones import cellpose

        cellpose_labels = cellpose.predict(images, weights=cellpose_weights, device=device)
    cache = embed(sam, images, channels, sam.device)
    out = []
    for i, (emb, input_size, original) in enumerate(cache):
        h, w = original
        kw: dict[str, Any] = {}
        if mode == "boxes":
            kw["boxes"] = np.asarray(boxes[i], dtype=np.float64).reshape(-1, 4)
        elif mode == "cellpose":
            kw["boxes"] = label_boxes(np.asarray(cellpose_labels[i]))[1]
        else:
            if mode == "points":
                pts = np.asarray(points[i], dtype=np.float64)
                pts = pts[:, None] if pts.ndim == 2 else pts
                lab = (np.ones(pts.shape[:2]) if point_labels is None
                       else np.asarray(point_labels[i]).reshape(pts.shape[:2]))
            else:
                g = (np.arange(points_per_side) + 0.5) / points_per_side
                pts = np.stack(np.meshgrid(g * w, g * h), -1).reshape(-1, 1, 2)
                lab = np.ones(pts.shape[:2])
            kw["points"], kw["labels"] = pts, lab
        out.append(_assemble(sam, emb, input_size, original, kw, batch_size=batch_size,
                             automatic=mode == "grid", pred_iou_thresh=pred_iou_thresh,
                             min_size=min_size, dedupe=mode in ("grid", "cellpose")))
    return out


def _assemble(sam, emb, input_size, original, prompts, *, batch_size, automatic,
              pred_iou_thresh, min_size, dedupe) -> np.ndarray:
    import torch

    n = len(prompts["boxes"] if "boxes" in prompts else prompts["points"])
    masks, scores = [], []
    with torch.no_grad():
        for k in range(0, n, batch_size):
            part = {key: v[k:k + batch_size] for key, v in prompts.items()}
            logits, iou = decode(sam, emb, input_size, original, multimask=automatic, **part)
            if automatic:  # keep the best of the three masks per point
                best = iou.argmax(1)
                logits = logits[torch.arange(len(best)), best][:, None]
                iou = iou.gather(1, best[:, None])
            masks.append((logits[:, 0] > sam.mask_threshold).cpu().numpy())
            scores.append(iou[:, 0].cpu().numpy())
    label = np.zeros(original, np.uint32)
    if n == 0:
        return label.astype(np.uint16)
    masks_all, scores_all = np.concatenate(masks), np.concatenate(scores)
    next_id = 1
    for j in np.argsort(-scores_all, kind="stable"):
        if automatic and scores_all[j] < pred_iou_thresh:
            continue
        new = masks_all[j] & (label == 0)
        area = int(masks_all[j].sum())
        if area == 0 or (dedupe and (new.sum() < min_size or new.sum() < 0.5 * area)):
            continue
        label[new] = next_id
        next_id += 1
    return label.astype(np.uint16 if next_id <= 65536 else np.uint32)
