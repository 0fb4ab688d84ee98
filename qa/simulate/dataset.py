"""Whole simulated datasets: images, ground truth and a panel of annotations per image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .annotators import SimulatedAnnotation, simulate_annotation
from .images import SimulatedImage, simulate_image
from .profiles import AnnotatorProfile, annotator_panel


class SimulatedSample(NamedTuple):
    """One image with its annotations; unpacks as ``(image, annotations)``."""

    image: SimulatedImage
    annotations: tuple[SimulatedAnnotation, ...]


def simulate_dataset(n_images: int, n_annotators: int = 3, *, careless: int = 1,
                     profiles: Sequence[AnnotatorProfile] | None = None,
                     shape: tuple[int, int] = (256, 256), n_cells: int | tuple[int, int] = 50,
                     modality: str | Sequence[str] = "fluorescence",
                     seed: int | np.random.Generator | None = None,
                     **image_options) -> list[SimulatedSample]:
    """Simulate ``n_images`` images, each annotated by every profile of one panel.

    Parameters
    ----------
    n_images : int
        Number of images (>= 0).
    n_annotators : int
        Panel size when ``profiles`` is not given (``annotator_panel(n_annotators,
        careless=careless)``).
    careless : int
        Careless annotators in the default panel.
    profiles : sequence of AnnotatorProfile, optional
        An explicit panel; overrides ``n_annotators`` and ``careless``. Annotation ``j`` of
        every sample comes from ``profiles[j]``.
    shape : tuple of int
        Image shape (H, W).
    n_cells : int or (int, int)
        Cells per image, or an inclusive range drawn per image.
    modality : str or sequence of str
        One modality for all images, or a sequence cycled through image by image.
    seed : int, numpy.random.Generator or None
        One seed for everything; each image and each annotation gets its own child
        stream, so the same seed always gives the same dataset.
    **image_options
        Passed on to :func:`simulate_image` (``n_debris``, ``faint_fraction``, ...).

    Returns
    -------
    list of SimulatedSample
        ``(image, annotations)`` pairs; ``annotations`` has one entry per profile.
    """
    if n_images < 0:
        raise ValueError(f"n_images must be >= 0, got {n_images}")
    panel = tuple(profiles) if profiles is not None else annotator_panel(n_annotators,
                                                                         careless=careless)
    if not panel:
        raise ValueError("profiles must not be empty")
    modalities = (modality,) if isinstance(modality, str) else tuple(modality)
    if not modalities:
        raise ValueError("modality must not be an empty sequence")
    if isinstance(n_cells, int):
        lo = hi = n_cells
    else:
        lo, hi = (int(v) for v in n_cells)
        if lo > hi:
            raise ValueError(f"n_cells range must be (lo, hi) with lo <= hi, got {n_cells!r}")
    root = np.random.default_rng(seed)
    samples = []
    for i in range(n_images):
        img_rng, *ann_rngs = root.spawn(1 + len(panel))
        count = int(img_rng.integers(lo, hi + 1)) if hi > lo else lo
        sim = simulate_image(shape=shape, n_cells=count, modality=modalities[i % len(modalities)],
                             seed=img_rng, **image_options)
        anns = tuple(simulate_annotation(sim, p, seed=r)
                     for p, r in zip(panel, ann_rngs, strict=True))
        samples.append(SimulatedSample(sim, anns))
    return samples
