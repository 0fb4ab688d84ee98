"""The steps of Cellpose's ``train_seg``, one at a time, for our own training loop.

Each function reproduces one part of ``cellpose.train.train_seg`` (3.1.1.3) with
cellpose's own building blocks, so that :mod:`training.backbones.cellpose` can report
progress per epoch, checkpoint the optimiser and resume exactly. torch and cellpose are
imported inside the functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np


@contextlib.contextmanager
def numpy_global_seed(seed: int):
    """Run cellpose code that draws from ``np.random`` with a fixed seed, then restore.

    ``random_rotate_and_resize`` uses the global NumPy RNG; saving and restoring its
    state keeps our determinism from leaking into (or depending on) other code.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def to_network_input(images: Sequence[np.ndarray], *, channels: tuple[int, int],
                      channel_axis: int | None) -> list[np.ndarray]:
    """Images as ``train_seg`` feeds them: (2, H, W) float32, percentile-normalised."""
    from cellpose import transforms

    out = []
    for img in images:
        x = transforms.convert_image(np.asarray(img), list(channels),
                                     channel_axis=channel_axis, nchan=2)
        # train_seg passes its normalize dict as the truthy ``normalize`` flag, which
        # amounts to the defaults: 1st-99th percentile per channel
        out.append(transforms.normalize_img(x.transpose(2, 0, 1), axis=0))
    return out


def flow_targets(masks: Sequence[np.ndarray], device) -> list[np.ndarray]:
    """(cellprob, flow y, flow x) per label image, float32 (3, H, W)."""
    from cellpose import dynamics

    labels = [np.ascontiguousarray(m).astype(np.int32, copy=True) for m in masks]
    flows = dynamics.labels_to_flows(labels, device=device)
    return [f[1:] for f in flows]


def diameters(masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    from cellpose import utils

    diam = np.zeros(len(masks))
    count = np.zeros(len(masks), dtype=np.int64)
    for k, m in enumerate(masks):
        diam[k], per_cell = utils.diameters(np.asarray(m))
        count[k] = len(per_cell)
    diam[diam < 5] = 5.0
    return diam, count


def epoch_loss(net, data, flows, diams, order, *, config, options, optimizer, device) -> float:
    """One pass over ``order`` as ``train_seg`` does it; trains when an optimizer is given."""
    import torch
    from cellpose import train, transforms

    scale_range = options.scale_range if options.scale_range is not None else (
        0.5 if options.rescale else 1.0)
    total = 0.0
    for k in range(0, len(order), config.batch_size):
        inds = order[k:k + config.batch_size]
        imgs = [data[i] for i in inds]
        lbls = [flows[i] for i in inds]
        rsc = (diams[inds] / net.diam_mean.item() if options.rescale
               else np.ones(len(inds), "float32"))
        imgi, lbl = transforms.random_rotate_and_resize(
            imgs, Y=lbls, rescale=rsc, scale_range=scale_range,
            xy=(config.tile_size, config.tile_size))[:2]
        x = torch.from_numpy(imgi).to(device)
        if optimizer is None:
            with torch.no_grad():
                loss = train._loss_fn_seg(lbl, net(x)[0], device)
        else:
            loss = train._loss_fn_seg(lbl, net(x)[0], device)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total += loss.item() * len(imgi)
    return total / len(order)
