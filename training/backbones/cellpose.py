"""Cellpose 3 backbone: fine-tune its U-Net on curated label images and segment with it.

Training reproduces one step of ``cellpose.train.train_seg`` exactly — the same flow
targets (``dynamics.labels_to_flows``), the same diameter-normalised augmentation
(``transforms.random_rotate_and_resize`` with ``rescale = diam / diam_mean``), the same
loss (``train._loss_fn_seg``: MSE on 5x the flows / 2 plus BCE on cell probability), AdamW
and the same learning-rate schedule — inside a loop of our own.  ``train_seg`` itself
cannot be called because it has no per-epoch callback, saves only weights (no optimiser
state) and cannot start at epoch *k*; with our loop a run reports progress every epoch,
writes a checkpoint with the optimiser state every ``save_every`` epochs and resumes to
the *same* weights as an uninterrupted run (each epoch's randomness is drawn from a seed
derived from ``(config.seed, epoch)``, as ``train_seg`` reseeds per epoch).

Deliberate differences from ``train_seg``: the per-epoch seed also depends on
``config.seed`` (``train_seg`` seeds with the epoch alone); the validation loss is computed
every epoch, not every tenth; the warm-up length is ``config.warmup_epochs`` (10 in
``train_seg``); the global NumPy RNG that cellpose's augmentation draws from is saved and
restored around each epoch, and the net is initialised inside ``torch.random.fork_rng``,
so training neither depends on nor disturbs other code's random state.

The weights file is a plain ``state_dict`` of ``cellpose.resnet_torch.CPnet``, so a net
with the default widths loads in Cellpose itself (``CellposeModel(pretrained_model=...)``).
Prediction uses ``CellposeModel.eval`` with the fine-tuned net in place.

torch and cellpose are imported inside functions: importing this module is cheap.
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
from training.backbones.cellpose_net import (
    BACKBONE,
    DEFAULT_NBASE,
    StylePadded,
    build_net,
    load_state,
    set_diam,
)
from training.backbones.cellpose_steps import (
    diameters,
    epoch_loss,
    epoch_seed,
    flow_targets,
    numpy_global_seed,
    to_network_input,
)

WEIGHTS_NAME = "cellpose_weights.pt"
CHECKPOINT_NAME = "cellpose_checkpoint.pt"


@dataclass(frozen=True)
class CellposeOptions:
    """Cellpose-specific training options.

    Attributes
    ----------
    channels : (int, int)
        Cellpose's channel selection: (channel to segment, optional nuclear channel),
        0 = grayscale/first, 1 = red, 2 = green, 3 = blue.  (0, 0) for one-channel images.
    channel_axis : int or None
        Axis of the channels in multi-channel images (None: Cellpose guesses).
    nbase : tuple of int
        Widths of the U-Net levels for a randomly initialised net; Cellpose's default is
        (32, 64, 128, 256).  Ignored when base weights are given (read from the file).
    diam_mean : float or None
        Diameter cells are rescaled to during training; None takes it from the base
        weights, or 30 (Cellpose's cyto default) for a new net.
    rescale : bool
        Rescale each image by its mean cell diameter during training (``train_seg``).
    scale_range : float or None
        Random zoom range of the augmentation (None: 0.5 when rescaling, else 1.0).
    min_train_masks : int
        Images with fewer cells are left out, as in ``train_seg`` (default 5).
    """

    channels: tuple[int, int] = (0, 0)
    channel_axis: int | None = None
    nbase: tuple[int, ...] = DEFAULT_NBASE
    diam_mean: float | None = None
    rescale: bool = True
    scale_range: float | None = None
    min_train_masks: int = 5

    def __post_init__(self) -> None:
        if len(self.channels) != 2 or any(c not in (0, 1, 2, 3) for c in self.channels):
            raise ValueError(f"channels must be two of 0..3, got {self.channels!r}")
        if len(self.nbase) < 2 or any(int(n) < 1 for n in self.nbase):
            raise ValueError(f"nbase needs at least two positive widths, got {self.nbase!r}")
        if self.diam_mean is not None and not self.diam_mean > 0:
            raise ValueError(f"diam_mean must be positive, got {self.diam_mean!r}")
        if self.min_train_masks < 0:
            raise ValueError(f"min_train_masks must be >= 0, got {self.min_train_masks}")


def fine_tune(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], *,
              config: TrainConfig, base_weights: str | Path | None = None,
              val: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
              progress: ProgressCallback | None = None,
              checkpoint_dir: str | Path | None = None, resume: bool = False,
              options: CellposeOptions | None = None) -> TrainResult:
    """Fine-tune (or train from scratch) a Cellpose 3 network.

    Parameters
    ----------
    images : sequence of ndarray, each (H, W), (H, W, C) or (C, H, W), any real dtype
        8/16-bit or float; channels are selected by ``options.channels``.
    masks : sequence of ndarray of int, each (H, W)
        Instance label images, 0 = background.
    config : TrainConfig
    base_weights : path or None
        A Cellpose 3 weights file (cyto3, nuclei, livecell, tissuenet or one of ours);
        None starts from a randomly initialised net with ``options.nbase``.
    val : (images, masks) or None
        Validation data; its loss is computed every epoch with a fixed augmentation.
    progress : callable or None
        ``progress(epoch, total, {"train_loss", "val_loss", "learning_rate"})``.
    checkpoint_dir : path or None
        Where weights and checkpoints go (a new temporary directory when None).
    resume : bool
        Continue from ``checkpoint_dir``'s checkpoint when one exists (a checkpoint of
        another configuration is an error); without one, start from scratch.
    options : CellposeOptions or None

    Returns
    -------
    TrainResult
        ``weights`` is ``checkpoint_dir / "cellpose_weights.pt"``.

    Raises
    ------
    WeightsError
        ``base_weights`` missing, unreadable or not a Cellpose 3 network (raised before
        any network is built).
    """
    import torch

    options = options or CellposeOptions()
    validate_pairs(images, masks, name="images")
    if val is not None:
        validate_pairs(val[0], val[1], name="val")
    base_state, nbase = (load_state(base_weights) if base_weights is not None
                         else (None, [2, *options.nbase]))
    if nbase[0] != 2:
        raise WeightsError(f"weights file {base_weights} has {nbase[0]} input channels, not 2")
    device = resolve_device(config.device)
    out = output_dir(checkpoint_dir)
    t0 = time.perf_counter()

    data = to_network_input(images, channels=options.channels, channel_axis=options.channel_axis)
    flows = flow_targets(masks, device)
    diams, counts = diameters(masks)
    keep = np.flatnonzero(counts >= options.min_train_masks)
    if keep.size == 0:
        raise ValueError(
            f"no training image has at least min_train_masks={options.min_train_masks} cells"
        )
    data, flows, diams = [data[i] for i in keep], [flows[i] for i in keep], diams[keep]
    if val is not None:
        vdata = to_network_input(val[0], channels=options.channels,
                                  channel_axis=options.channel_axis)
        vflows = flow_targets(val[1], device)
        vdiams = diameters(val[1])[0]

    if options.diam_mean is not None:
        diam_mean = options.diam_mean
    elif base_state is not None and "diam_mean" in base_state:
        diam_mean = float(base_state["diam_mean"].reshape(-1)[0])
    else:
        diam_mean = 30.0
    net = build_net(nbase, diam_mean=diam_mean, seed=config.seed, device=device)
    if base_state is not None:
        try:
            net.load_state_dict(base_state)
        except RuntimeError as exc:
            raise WeightsError(f"weights file {base_weights} does not fit the network: {exc}") \
                from exc
        set_diam(net, "diam_mean", diam_mean)
    set_diam(net, "diam_labels", float(diams.mean()))
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    lr = learning_rate_schedule(config.learning_rate, config.epochs,
                                warmup_epochs=config.warmup_epochs)

    train_loss = [float("nan")] * config.epochs
    val_loss = [float("nan")] * config.epochs
    start = 0
    ckpt_path = out / CHECKPOINT_NAME
    if resume and ckpt_path.exists():
        state = read_weights_file(ckpt_path, what="checkpoint")
        start = check_resume(state, config=config, backbone=BACKBONE, path=ckpt_path)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        train_loss[:start] = state["train_loss"][:start]
        val_loss[:start] = state["val_loss"][:start]

    nimg = len(data)
    per_epoch = config.images_per_epoch or nimg
    for epoch in range(start, config.epochs):
        with numpy_global_seed(epoch_seed(config.seed, epoch)):
            if per_epoch != nimg:
                order = np.random.choice(np.arange(nimg), size=(per_epoch,))
            else:
                order = np.random.permutation(nimg)
            for group in optimizer.param_groups:
                group["lr"] = float(lr[epoch])
            net.train()
            train_loss[epoch] = epoch_loss(net, data, flows, diams, order, config=config,
                                            options=options, optimizer=optimizer, device=device)
        if val is not None:
            net.eval()
            with numpy_global_seed(42):  # the fixed validation draw train_seg uses
                val_loss[epoch] = epoch_loss(net, vdata, vflows, vdiams,
                                              np.arange(len(vdata)), config=config,
                                              options=options, optimizer=None, device=device)
        done = epoch + 1
        if done % config.save_every == 0 or done == config.epochs:
            write_torch_file(ckpt_path, {
                "backbone": BACKBONE, "epoch": done, "config": config.as_dict(),
                "options": asdict(options), "model": net.state_dict(),
                "optimizer": optimizer.state_dict(), "train_loss": train_loss[:done],
                "val_loss": val_loss[:done]})
        if progress is not None:
            progress(done, config.epochs, {"train_loss": train_loss[epoch],
                                           "val_loss": val_loss[epoch],
                                           "learning_rate": float(lr[epoch])})

    weights = write_torch_file(out / WEIGHTS_NAME, net.state_dict())
    return TrainResult(
        weights=weights, train_loss=tuple(train_loss), val_loss=tuple(val_loss),
        wall_time_s=time.perf_counter() - t0, epochs=config.epochs, start_epoch=start,
        checkpoint=ckpt_path,
        meta={"backbone": BACKBONE, "nbase": nbase, "diam_mean": diam_mean,
              "diam_labels": float(diams.mean()), "n_train_images": int(nimg),
              "base_weights": None if base_weights is None else str(base_weights)})


def load_model(weights: str | Path, *, device: str = "auto",
               diam_mean: float | None = None) -> Any:
    """A ``cellpose.models.CellposeModel`` running the net in ``weights``.

    ``diam_mean`` overrides the diameter stored in the file (Cellpose itself does so for
    its built-in nuclei model, 17 px).  Raises :class:`WeightsError` (naming the path)
    before building anything when the file is missing, damaged or not a Cellpose 3 network.
    """
    state, nbase = load_state(weights)
    from cellpose import models

    dev = resolve_device(device)
    if diam_mean is None:
        diam_mean = float(state["diam_mean"].reshape(-1)[0]) if "diam_mean" in state else 30.0
    net = build_net(nbase, diam_mean=diam_mean, seed=0, device=dev)
    net.load_state_dict(state)
    net.eval()
    model = models.CellposeModel(gpu=dev.type == "cuda", pretrained_model=False, device=dev,
                                 nchan=nbase[0], diam_mean=diam_mean)
    model.net = net if nbase[-1] == 256 else StylePadded.wrap(net)
    model.nbase = nbase
    model.diam_mean = diam_mean
    model.diam_labels = float(state["diam_labels"].reshape(-1)[0]) if "diam_labels" in state \
        else diam_mean
    return model


def _as_label_image(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    masks = np.asarray(masks).reshape(shape)
    dtype = np.uint16 if masks.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    return masks.astype(dtype)


def predict(images: Sequence[np.ndarray], *, weights: str | Path,
            channels: tuple[int, int] = (0, 0), channel_axis: int | None = None,
            diameter: float | str | None = None, flow_threshold: float = 0.4,
            cellprob_threshold: float = 0.0, min_size: int = 15, tile_size: int = 224,
            batch_size: int = 8, device: str = "auto",
            diam_mean: float | None = None) -> list[np.ndarray]:
    """Segment images with a Cellpose 3 weights file.

    Parameters
    ----------
    images : sequence of ndarray, each (H, W), (H, W, C) or (C, H, W)
    weights : path
        A Cellpose 3 state dict (ours or a published model).
    channels, channel_axis
        As for training (:class:`CellposeOptions`).
    diameter : float, 'estimate' or None
        A fixed cell diameter in pixels; ``'estimate'`` segments once at the training
        diameter, measures the median diameter of what it found and segments again at
        that diameter; None uses the mean diameter of the training labels.
    flow_threshold, cellprob_threshold, min_size, tile_size, batch_size
        Passed to ``CellposeModel.eval`` (``tile_size`` is its ``bsize``).
    diam_mean : float or None
        Overrides the diameter the net was trained at (see :func:`load_model`).

    Returns
    -------
    list of ndarray of uint16 (uint32 above 65,535 cells), each (H, W)
    """
    from training.backbones.base import image_hw

    if isinstance(diameter, str) and diameter != "estimate":
        raise ValueError(f"diameter must be a number, 'estimate' or None, got {diameter!r}")
    if isinstance(diameter, (int, float)) and not diameter > 0:
        raise ValueError(f"diameter must be positive, got {diameter!r}")
    shapes = [image_hw(np.asarray(img)) for img in images]
    model = load_model(weights, device=device, diam_mean=diam_mean)
    from cellpose import utils

    def run(img, diam):
        return model.eval(np.asarray(img), channels=list(channels), channel_axis=channel_axis,
                          diameter=diam, flow_threshold=flow_threshold,
                          cellprob_threshold=cellprob_threshold, min_size=min_size,
                          bsize=tile_size, batch_size=batch_size)[0]

    out = []
    for img, shape in zip(images, shapes, strict=True):
        if diameter == "estimate":
            first = run(img, None)
            found = utils.diameters(first)[0] if first.max() > 0 else 0.0
            masks = run(img, found) if found >= 5 else first
        else:
            masks = run(img, diameter)
        out.append(_as_label_image(masks, shape))
    return out
