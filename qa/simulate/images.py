"""Microscopy-like images with ground-truth instance labels.

Cells are star-convex blobs (a rotated ellipse with a few low-order radial harmonics).
They are placed one by one; a share of them is placed against an earlier cell so that
clumps of touching and overlapping cells form. Where two cells overlap, the image shows
both (their signals add up, as in a widefield image) while the ground truth gives each
pixel to the cell whose boundary is relatively farther away (the smallest normalised
radial distance), the way a careful annotator splits a clump.

Debris (small, irregular, often very bright or dark particles) is rendered in the image
but is not part of the ground truth; it is returned as its own label image so that an
annotator model can label it as a cell and the error can be scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

MODALITIES = ("fluorescence", "cytoplasm", "brightfield")

_DEFAULT_DIAMETER = {
    "fluorescence": (10.0, 20.0),
    "cytoplasm": (16.0, 30.0),
    "brightfield": (14.0, 26.0),
}


@dataclass(frozen=True, eq=False)
class SimulatedImage:
    """One simulated image and its ground truth.

    Attributes
    ----------
    image : ndarray of uint16, shape (H, W)
        Camera counts: offset, uneven illumination, shot and read noise included.
    labels : ndarray of uint16, shape (H, W)
        Ground-truth instance labels, 0 = background, cells numbered 1..N.
    debris : ndarray of uint16, shape (H, W)
        Debris particles rendered in ``image`` but absent from ``labels``; 0 = none,
        particles numbered 1..M. Debris never overlaps a ground-truth cell.
    contrast : ndarray of float64, shape (N,)
        Relative brightness of cell ``i + 1`` in 0..1 (1 = brightest typical cell).
        Faint cells have contrast below about 0.35.
    faint : ndarray of bool, shape (N,)
        Whether cell ``i + 1`` was drawn as a faint cell.
    modality : str
        ``"fluorescence"``, ``"cytoplasm"`` or ``"brightfield"``.
    seed : int or None
        The integer seed when one was given, else None.
    """

    image: np.ndarray
    labels: np.ndarray
    debris: np.ndarray
    contrast: np.ndarray
    faint: np.ndarray
    modality: str
    seed: int | None

    @property
    def n_cells(self) -> int:
        return int(self.contrast.shape[0])

    @property
    def n_debris(self) -> int:
        return int(self.debris.max(initial=0))


@dataclass(frozen=True)
class _Blob:
    cy: float
    cx: float
    r0: float
    aspect: float
    angle: float
    harm_amp: tuple[float, ...]
    harm_phase: tuple[float, ...]

    @property
    def reach(self) -> float:
        return self.r0 * max(self.aspect, 1.0) * (1.0 + sum(abs(a) for a in self.harm_amp)) + 2

    def bbox(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        r = self.reach
        y0, y1 = max(int(self.cy - r), 0), min(int(np.ceil(self.cy + r)) + 1, shape[0])
        x0, x1 = max(int(self.cx - r), 0), min(int(np.ceil(self.cx + r)) + 1, shape[1])
        return slice(y0, y1), slice(x0, x1)

    def norm(self, sl: tuple[slice, slice]) -> np.ndarray:
        """Normalised radial distance (1 on the boundary) over the crop ``sl``."""
        yy, xx = np.mgrid[sl[0], sl[1]]
        dy, dx = yy - self.cy, xx - self.cx
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        u = (dx * ca + dy * sa) / self.aspect
        v = -dx * sa + dy * ca
        theta = np.arctan2(v, u)
        radius = np.full(theta.shape, self.r0)
        for k, (amp, phase) in enumerate(zip(self.harm_amp, self.harm_phase, strict=True)):
            radius = radius * (1.0 + amp * np.cos((k + 2) * theta + phase))
        return np.hypot(u, v) / np.maximum(radius, 0.5)


def _random_blob(rng: np.random.Generator, cy: float, cx: float, diameter: float, *,
                 irregularity: float, max_aspect: float) -> _Blob:
    n_harm = 3
    amps = tuple(float(a) for a in rng.uniform(0, irregularity, n_harm) / np.arange(1, n_harm + 1))
    phases = tuple(float(p) for p in rng.uniform(0, 2 * np.pi, n_harm))
    aspect = float(rng.uniform(1.0, max_aspect))
    r0 = diameter / 2.0 / np.sqrt(aspect)  # keep the area close to the nominal diameter
    return _Blob(cy, cx, r0, aspect, float(rng.uniform(0, np.pi)), amps, phases)


def _place_cells(rng, shape, n_cells, diameter, cluster_fraction, max_steal):
    """Sequential rejection sampling of cells; returns blobs, labels, per-cell norm maps."""
    labels = np.zeros(shape, np.int32)
    best = np.full(shape, np.inf)
    blobs: list[_Blob] = []
    full_area = np.zeros(n_cells + 1, np.int64)  # by id; index 0 unused
    cur_area = np.zeros(n_cells + 1, np.int64)
    attempts = 0
    while len(blobs) < n_cells and attempts < 60 * n_cells:
        attempts += 1
        d = float(rng.uniform(*diameter))
        if blobs and rng.random() < cluster_fraction:
            other = blobs[int(rng.integers(len(blobs)))]
            dist = (other.r0 * np.sqrt(other.aspect) + d / 2) * rng.uniform(0.78, 1.0)
            phi = rng.uniform(0, 2 * np.pi)
            cy, cx = other.cy + dist * np.sin(phi), other.cx + dist * np.cos(phi)
        else:
            cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        margin = d / 2 + 1
        if not (margin <= cy < shape[0] - margin and margin <= cx < shape[1] - margin):
            continue
        blob = _random_blob(rng, cy, cx, d, irregularity=0.18, max_aspect=1.6)
        sl = blob.bbox(shape)
        nm = blob.norm(sl)
        inside = nm < 1.0
        area = int(inside.sum())
        if area < 0.6 * np.pi * (min(diameter) / 2) ** 2:
            continue
        win = inside & (nm < best[sl])
        if win.sum() < 0.75 * area:
            continue
        lost = np.bincount(labels[sl][win], minlength=len(blobs) + 1)
        lost[0] = 0
        hit = np.flatnonzero(lost)
        if np.any(cur_area[hit] - lost[hit] < (1 - max_steal) * full_area[hit]):
            continue
        new_id = len(blobs) + 1
        labels[sl][win] = new_id
        best[sl][win] = nm[win]
        blobs.append(blob)
        full_area[new_id] = area
        cur_area[hit] -= lost[hit]
        cur_area[new_id] = int(win.sum())
    # A cell cut in two by a later neighbour keeps only its largest piece.
    for i in range(1, len(blobs) + 1):
        sl = blobs[i - 1].bbox(shape)
        cell = labels[sl] == i
        lab, n = ndi.label(cell)
        if n > 1:
            sizes = np.bincount(lab.ravel())[1:]
            labels[sl][cell & (lab != 1 + int(np.argmax(sizes)))] = 0
    return blobs, labels


def _place_debris(rng, shape, n_debris, cells, size):
    debris = np.zeros(shape, np.int32)
    blobs: list[_Blob] = []
    forbidden = ndi.binary_dilation(cells > 0, iterations=3)
    attempts = 0
    while len(blobs) < n_debris and attempts < 80 * max(n_debris, 1):
        attempts += 1
        d = float(rng.uniform(*size))
        cy, cx = rng.uniform(d, shape[0] - d), rng.uniform(d, shape[1] - d)
        blob = _random_blob(rng, cy, cx, d, irregularity=0.55, max_aspect=2.5)
        sl = blob.bbox(shape)
        inside = blob.norm(sl) < 1.0
        if inside.sum() < 6 or np.any(inside & (forbidden[sl] | (debris[sl] > 0))):
            continue
        blobs.append(blob)
        debris[sl][inside] = len(blobs)
    return blobs, debris


def _soft(nm: np.ndarray, r0: float, width: float = 0.6) -> np.ndarray:
    """Anti-aliased inside indicator from a normalised distance map."""
    return 1.0 / (1.0 + np.exp(np.clip((nm - 1.0) * r0 / width, -30, 30)))


def _smooth_noise(rng, shape, sigma, amplitude):
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    field /= field.std() + 1e-12
    return amplitude * field


def _render(rng, shape, modality, cells, contrast, debris_blobs, illumination, noise):
    signal = np.zeros(shape)
    texture = _smooth_noise(rng, shape, 1.5, 0.12 if modality == "fluorescence" else 0.2)
    for blob, c in zip(cells, contrast, strict=True):
        sl = blob.bbox(shape)
        nm = blob.norm(sl)
        inside = _soft(nm, blob.r0)
        if modality == "fluorescence":
            profile = inside * (0.75 + 0.25 * np.sqrt(np.clip(1 - nm**2, 0, 1)))
        elif modality == "cytoplasm":
            nucleus = _soft(nm / 0.45, blob.r0 * 0.45)
            profile = inside * (1.0 - 0.45 * nucleus) * (0.7 + 0.3 * np.clip(1 - nm, 0, 1))
        else:  # brightfield: dim interior plus a dark rim and a bright halo just outside
            rim = np.exp(-(((nm - 0.95) * blob.r0) ** 2) / 2.0)
            halo = np.exp(-(((nm - 1.2) * blob.r0) ** 2) / 2.0)
            profile = -0.35 * inside - 0.6 * rim + 0.45 * halo
        signal[sl] += c * profile * (1.0 + texture[sl])
    for blob in debris_blobs:
        sl = blob.bbox(shape)
        inside = _soft(blob.norm(sl), blob.r0, width=0.4)
        strength = rng.uniform(0.5, 1.6)
        if modality == "brightfield":
            strength = -abs(strength) * 0.9
        signal[sl] += strength * inside
    blur = {"fluorescence": 1.0, "cytoplasm": 1.3, "brightfield": 0.8}[modality]
    signal = ndi.gaussian_filter(signal, blur)

    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    cy, cx = rng.uniform(0.2, 0.8, 2)
    tilt = rng.uniform(-1, 1, 2)
    field = 1.0 - illumination * (((yy - cy) ** 2 + (xx - cx) ** 2) / 0.5 + 0.3 * (tilt[0] * yy + tilt[1] * xx))
    field = np.clip(field, 0.25, None)

    offset = 100.0
    if modality == "brightfield":
        level, gain = 6000.0, 1300.0  # bright background, cells a weak modulation of it
        expected = field * (level + gain * signal)
    else:
        level, gain = 300.0, 3200.0
        expected = field * (level + gain * signal)
    expected = np.clip(expected, 0, None)
    counts = rng.poisson(expected * noise) / noise  # shot noise; noise < 1 means fewer photons
    counts = counts + offset + rng.normal(0.0, 6.0, shape)
    return np.clip(np.rint(counts), 0, 65535).astype(np.uint16)


def simulate_image(*, shape: tuple[int, int] = (256, 256), n_cells: int = 50,
                   modality: str = "fluorescence", n_debris: int | None = None,
                   cell_diameter: tuple[float, float] | None = None,
                   faint_fraction: float = 0.15, cluster_fraction: float = 0.4,
                   max_overlap: float = 0.25, debris_diameter: tuple[float, float] = (4.0, 9.0),
                   illumination: float = 0.3, noise: float = 1.0,
                   seed: int | np.random.Generator | None = None) -> SimulatedImage:
    """Simulate one microscopy image with ground-truth cell labels and debris.

    Parameters
    ----------
    shape : tuple of int
        (H, W), each at least 32.
    n_cells : int
        Cells to place (>= 0). In crowded settings fewer may fit; ``SimulatedImage.n_cells``
        says how many were placed.
    modality : {"fluorescence", "cytoplasm", "brightfield"}
        Fluorescent nuclei (bright blobs on a dark background), cytoplasm-like cells
        (larger, with a dimmer nucleus) or low-contrast bright field (dark rim, bright halo).
    n_debris : int, optional
        Debris particles rendered in the image; default ``max(2, n_cells // 8)``.
    cell_diameter : (float, float), optional
        Range of nominal cell diameters in pixels, lower bound >= 8. Default depends on
        the modality: (10, 20), (16, 30), (14, 26).
    faint_fraction : float
        Share of cells drawn faint (contrast 0.08..0.3 instead of 0.55..1).
    cluster_fraction : float
        Probability that a cell is placed against an earlier one (touching or
        overlapping), building clumps.
    max_overlap : float
        Largest share of an earlier cell's area that a later cell may take over.
    debris_diameter : (float, float)
        Range of debris sizes in pixels.
    illumination : float
        Strength of the smooth uneven illumination, 0 (flat) .. 1.
    noise : float
        Relative photon budget divisor: 1 is typical, larger is noisier.
    seed : int, numpy.random.Generator or None
        Source of randomness; the same integer seed always gives the same image.

    Returns
    -------
    SimulatedImage
        uint16 image, uint16 ground-truth labels (1..N, sequential), uint16 debris labels,
        per-cell contrast and faint flags.
    """
    if len(shape) != 2 or min(shape) < 32:
        raise ValueError(f"shape must be (H, W) with both at least 32, got {shape!r}")
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if n_cells < 0:
        raise ValueError(f"n_cells must be >= 0, got {n_cells}")
    diameter = _DEFAULT_DIAMETER[modality] if cell_diameter is None else tuple(cell_diameter)
    if len(diameter) != 2 or diameter[0] < 8 or diameter[1] < diameter[0]:
        raise ValueError(f"cell_diameter must be (lo, hi) with 8 <= lo <= hi, got {cell_diameter!r}")
    if n_debris is None:
        n_debris = max(2, n_cells // 8)
    if n_debris < 0:
        raise ValueError(f"n_debris must be >= 0, got {n_debris}")
    for name, value in (("faint_fraction", faint_fraction), ("cluster_fraction", cluster_fraction),
                        ("max_overlap", max_overlap), ("illumination", illumination)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if noise <= 0:
        raise ValueError(f"noise must be > 0, got {noise}")
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))

    blobs, labels = _place_cells(rng, shape, n_cells, diameter, cluster_fraction, max_overlap)
    faint = rng.random(len(blobs)) < faint_fraction
    contrast = np.where(faint, rng.uniform(0.08, 0.3, len(blobs)), rng.uniform(0.55, 1.0, len(blobs)))
    debris_blobs, debris = _place_debris(rng, shape, n_debris, labels, debris_diameter)
    image = _render(rng, shape, modality, blobs, contrast, debris_blobs, illumination, noise)
    return SimulatedImage(
        image=image,
        labels=labels.astype(np.uint16),
        debris=debris.astype(np.uint16),
        contrast=contrast.astype(np.float64),
        faint=faint,
        modality=modality,
        seed=seed if isinstance(seed, int | np.integer) else None,
    )
