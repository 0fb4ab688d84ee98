"""Tiny synthetic images of bright disks with their label images, for training tests."""

from __future__ import annotations

import numpy as np


def disks(n_images: int, *, size: int = 64, n_cells: int = 6, radius: float = 6.0,
          seed: int = 0, dtype=np.uint16) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Images (size, size) of ``dtype`` with non-touching disks, and uint16 label images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, labels = [], []
    for _ in range(n_images):
        lab = np.zeros((size, size), np.uint16)
        centres: list[tuple[float, float]] = []
        tries = 0
        while len(centres) < n_cells and tries < 1000:
            tries += 1
            r = radius * rng.uniform(0.8, 1.2)
            c = rng.uniform(r + 2, size - r - 2, size=2)
            if all(np.hypot(c[0] - a, c[1] - b) > 2 * radius + 4 for a, b in centres):
                centres.append((c[0], c[1]))
                lab[(yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= r * r] = len(centres)
        img = 200.0 + 1500.0 * (lab > 0) + rng.normal(0, 60, lab.shape)
        images.append(np.clip(img, 0, np.iinfo(np.uint16).max).astype(dtype))
        labels.append(lab)
    return images, labels
