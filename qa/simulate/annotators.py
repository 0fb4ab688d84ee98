"""Annotator models: the errors real annotators make, tied to image content.

An annotation starts from the ground truth of a :class:`SimulatedImage` and goes through
these steps, each recording what it changed as :class:`InjectedError` rows:

1. ``missed``: a cell is left out with probability
   ``miss_rate + miss_faint_rate * faintness`` where
   ``faintness = clip((0.5 - contrast) / 0.4, 0, 1)`` (0 for normal cells, 1 for the
   faintest), so faint cells are missed far more often.
2. ``merged``: two touching cells (sharing a boundary in the ground truth), both drawn,
   become one instance with probability ``merge_rate`` per touching pair.
3. ``split``: a cell of at least 60 px is cut in two by a straight line through its
   centroid with probability ``split_rate``.
4. ``boundary``: every outline moves outwards (positive) or inwards (negative) by
   ``boundary_bias_px + N(0, boundary_jitter_px)`` px of Euclidean distance, plus a smooth
   random wobble of standard deviation ``outline_noise_px`` (Gaussian noise smoothed over
   2.5 px: a hand tracing an outline). A row is recorded where the systematic shift is at
   least 0.5 px. Where grown instances meet, each pixel goes to the instance it lies
   deepest in, so touching cells keep a shared boundary.
5. ``coarse_outline``: with ``polygon_coarseness > 0`` each outline is replaced by a
   polygon simplified with that tolerance (Douglas–Peucker) and rasterised, like a
   polygon tool used with few clicks. One row per annotation.
6. ``debris``: each debris particle rendered in the image is labelled as a cell with
   probability ``debris_rate``.
7. ``spurious``: ``Poisson(spurious_per_image)`` random blobs in the background.
8. ``corruption``: with probability ``corruption_rate`` the whole annotation is badly
   damaged in one of four ways (``detail``), each far worse than any annotator's
   ordinary work whatever its habits: ``shift`` (mask moved 4..8 px, a mis-registered
   upload), ``dropout`` (50..80 % of the instances deleted, also recorded as
   ``missed``), ``blobs`` (1..1.5 times as many invented blobs as there are instances,
   at least 8, as many as fit; also recorded as ``spurious``) or ``smear`` (a brush as
   wide as a cell: every instance grown by 70..100 % of the median instance radius, at
   least 4 px, painted in random order over its neighbours, then outlined with a 3 px
   polygon).

Finally the instance ids are shuffled (an annotator's ids carry no meaning) and the
rows are rewritten with the final ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as draw_polygon
from skimage.measure import approximate_polygon, find_contours

from .images import SimulatedImage, _random_blob
from .profiles import CORRUPTION_MODES, ERROR_KINDS, PERFECT, AnnotatorProfile, InjectedError


@dataclass(frozen=True, eq=False)
class SimulatedAnnotation:
    """One simulated annotator's mask of one image.

    Attributes
    ----------
    labels : ndarray of uint16, shape (H, W)
        Instance labels, 0 = background; ids are 1..K in shuffled order.
    errors : tuple of InjectedError
        Every error injected, in the order of the steps in the module docstring.
    profile : AnnotatorProfile
        The profile that produced it.
    """

    labels: np.ndarray
    errors: tuple[InjectedError, ...] = field(default=())
    profile: AnnotatorProfile = PERFECT

    @property
    def corrupted(self) -> bool:
        return any(e.kind == "corruption" for e in self.errors)

    def errors_of(self, kind: str) -> tuple[InjectedError, ...]:
        if kind not in ERROR_KINDS:
            raise ValueError(f"kind must be one of {ERROR_KINDS}, got {kind!r}")
        return tuple(e for e in self.errors if e.kind == kind)


def touching_pairs(labels: np.ndarray) -> np.ndarray:
    """Pairs of labels that share an edge (4-connectivity), shape (n, 2), a < b, sorted."""
    pairs = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        m = (a != b) & (a > 0) & (b > 0)
        pairs.append(np.stack([np.minimum(a[m], b[m]), np.maximum(a[m], b[m])], axis=1))
    allp = np.concatenate(pairs).astype(np.int64)
    if allp.size == 0:
        return np.zeros((0, 2), np.int64)
    return np.unique(allp, axis=0)


def _bbox(mask: np.ndarray, pad: int, shape) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    return (slice(max(ys.min() - pad, 0), min(ys.max() + pad + 1, shape[0])),
            slice(max(xs.min() - pad, 0), min(xs.max() + pad + 1, shape[1])))


def _objects(labels: np.ndarray) -> dict[int, tuple[slice, slice]]:
    return {i + 1: sl for i, sl in enumerate(ndi.find_objects(labels)) if sl is not None}


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance to the outline of a boolean mask, > 0 inside, in px.

    The outline lies half-way between an inside and an outside pixel centre, so boundary
    pixels sit at +0.5 (inside) and -0.5 (outside). The mask must not touch the array
    border on a side where the distance matters (pad it first).
    """
    inside = ndi.distance_transform_edt(mask)
    outside = ndi.distance_transform_edt(~mask)
    return np.where(mask, inside - 0.5, 0.5 - outside)


def _reshape(L: np.ndarray, offsets: np.ndarray, field: np.ndarray | None) -> np.ndarray:
    """Move every outline by ``offsets[i]`` px (plus the local ``field``), deepest pixel wins."""
    reach = int(np.ceil(np.abs(offsets).max(initial=0) + (0 if field is None else 3 * field.std())))
    pad = reach + 2
    out = np.zeros_like(L)
    best = np.full(L.shape, -np.inf)
    for inst, sl0 in _objects(L).items():
        sl = (slice(max(sl0[0].start - pad, 0), min(sl0[0].stop + pad, L.shape[0])),
              slice(max(sl0[1].start - pad, 0), min(sl0[1].stop + pad, L.shape[1])))
        mask = np.pad(L[sl] == inst, 1)
        value = signed_distance(mask)[1:-1, 1:-1] + offsets[inst]
        if field is not None:
            value = value + field[sl]
        claim = (value > 0) & (value > best[sl])
        if not claim.any():  # never erase a cell completely: keep its deepest pixel
            claim = value >= value.max()
        out[sl][claim] = inst
        best[sl][claim] = value[claim]
    return out


def _dilate(L: np.ndarray, amounts: np.ndarray) -> None:
    """Grow each instance i by amounts[i] px into the background (nearest instance wins)."""
    if not (amounts > 0).any() or not (L > 0).any():
        return
    dist, (iy, ix) = ndi.distance_transform_edt(L == 0, return_indices=True)
    owner = L[iy, ix]
    grow = (L == 0) & (dist <= amounts[owner])
    L[grow] = owner[grow]


def _smear(L: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Paint every instance grown by ``amount`` px, in random order, over the others.

    A broad brush: each cell spills into the background and into its neighbours, and a
    cell painted later covers part of one painted earlier.
    """
    out = L.copy()
    pad = int(np.ceil(amount)) + 1
    objects = _objects(L)
    for inst in rng.permutation(sorted(objects)):
        sl0 = objects[int(inst)]
        sl = (slice(max(sl0[0].start - pad, 0), min(sl0[0].stop + pad, L.shape[0])),
              slice(max(sl0[1].start - pad, 0), min(sl0[1].stop + pad, L.shape[1])))
        grown = ndi.distance_transform_edt(L[sl] != inst) <= amount
        out[sl][grown] = inst
    return out


def _polygonize(L: np.ndarray, tolerance: float) -> None:
    for inst, sl0 in _objects(L).items():
        sl = (slice(max(sl0[0].start - 2, 0), min(sl0[0].stop + 2, L.shape[0])),
              slice(max(sl0[1].start - 2, 0), min(sl0[1].stop + 2, L.shape[1])))
        mask = L[sl] == inst
        contours = find_contours(np.pad(mask, 1).astype(float), 0.5)
        if not contours:
            continue
        contour = max(contours, key=len)
        poly = approximate_polygon(contour, tolerance=tolerance) - 1.0
        rr, cc = draw_polygon(poly[:, 0], poly[:, 1], shape=mask.shape)
        new = np.zeros_like(mask)
        new[rr, cc] = True
        if new.sum() < 0.5 * mask.sum():
            continue
        crop = L[sl]
        crop[mask & ~new] = 0
        crop[new & (crop == 0)] = inst


def _blob_mask(rng, shape, diameter, occupied):
    for _ in range(30):
        d = float(rng.uniform(*diameter))
        cy, cx = rng.uniform(d, shape[0] - d), rng.uniform(d, shape[1] - d)
        blob = _random_blob(rng, cy, cx, d, irregularity=0.3, max_aspect=1.8)
        sl = blob.bbox(shape)
        inside = blob.norm(sl) < 1.0
        if inside.sum() >= 12 and not np.any(inside & occupied[sl]):
            full = np.zeros(shape, bool)
            full[sl] = inside
            return full
    return None


def simulate_annotation(sim: SimulatedImage, profile: AnnotatorProfile, *,
                        seed: int | np.random.Generator | None = None) -> SimulatedAnnotation:
    """Simulate one annotator's instance mask of ``sim`` and record the injected errors.

    Parameters
    ----------
    sim : SimulatedImage
        The image and its ground truth (``labels`` 1..N, ``debris``, ``contrast``).
    profile : AnnotatorProfile
        Error rates; see the module docstring for the order and the exact model.
    seed : int, numpy.random.Generator or None
        Source of randomness; the same seed, image and profile give the same annotation.

    Returns
    -------
    SimulatedAnnotation
        uint16 labels of shape ``sim.labels.shape`` and the tuple of InjectedError rows.
    """
    if not isinstance(sim, SimulatedImage):
        raise TypeError(f"sim must be a SimulatedImage, got {type(sim).__name__}")
    if not isinstance(profile, AnnotatorProfile):
        raise TypeError(f"profile must be an AnnotatorProfile, got {type(profile).__name__}")
    rng = np.random.default_rng(seed)
    gt = sim.labels.astype(np.int32)
    shape = gt.shape
    n = sim.n_cells
    errors: list[InjectedError] = []

    # 1. missed cells, more often the fainter they are
    faintness = np.clip((0.5 - sim.contrast) / 0.4, 0.0, 1.0)
    p_miss = np.clip(profile.miss_rate + profile.miss_faint_rate * faintness, 0, 1)
    missed = rng.random(n) < p_miss
    for g in np.flatnonzero(missed) + 1:
        errors.append(InjectedError("missed", (int(g),), (), float(faintness[g - 1]),
                                    "faint" if sim.faint[g - 1] else ""))

    # 2. merges of touching pairs, each cell merged at most once
    groups: list[tuple[int, ...]] = []
    used = missed.copy()
    pairs = touching_pairs(gt)
    for k in rng.permutation(len(pairs)):
        a, b = (int(v) for v in pairs[k])
        if rng.random() < profile.merge_rate and not used[a - 1] and not used[b - 1]:
            used[a - 1] = used[b - 1] = True
            groups.append((a, b))
    groups += [(int(g),) for g in np.flatnonzero(~used) + 1]
    groups.sort()

    L = np.zeros(shape, np.int32)
    inst_gt: dict[int, tuple[int, ...]] = {}
    lookup = np.zeros(n + 1, np.int32)
    for group in groups:
        inst_gt[len(inst_gt) + 1] = group
        lookup[list(group)] = len(inst_gt)
    L = lookup[gt]
    for inst, group in inst_gt.items():
        if len(group) == 2:
            errors.append(InjectedError("merged", group, (inst,)))

    # 3. splits along a line through the centroid
    objects = _objects(L)
    for inst, group in list(inst_gt.items()):
        if len(group) != 1 or rng.random() >= profile.split_rate:
            continue
        sl = objects[inst]
        mask = L[sl] == inst
        if mask.sum() < 60:
            continue
        yy, xx = np.nonzero(mask)
        cy, cx = yy.mean(), xx.mean()
        for _ in range(5):
            phi = rng.uniform(0, np.pi)
            side = (yy - cy) * np.cos(phi) - (xx - cx) * np.sin(phi) > 0
            if 0.3 <= side.mean() <= 0.7:
                new = len(inst_gt) + 1
                inst_gt[new] = group
                L[sl][yy[side], xx[side]] = new
                errors.append(InjectedError("split", group, (inst, new)))
                break

    # 4. systematic boundary bias with per-instance jitter and a wobbly hand
    n_inst = len(inst_gt)
    offsets = np.zeros(n_inst + 1)
    if n_inst:
        offsets[1:] = profile.boundary_bias_px + rng.normal(0.0, profile.boundary_jitter_px, n_inst)
        field = None
        if profile.outline_noise_px > 0:
            field = ndi.gaussian_filter(rng.standard_normal(shape), 2.5)
            field *= profile.outline_noise_px / (field.std() + 1e-12)
        if field is not None or np.any(offsets != 0):
            L = _reshape(L, offsets, field)
        for inst in range(1, n_inst + 1):
            if abs(offsets[inst]) >= 0.5:
                errors.append(InjectedError("boundary", inst_gt[inst], (inst,),
                                            float(offsets[inst])))

    # 5. coarse polygon outlines
    if profile.polygon_coarseness > 0 and n_inst:
        _polygonize(L, profile.polygon_coarseness)
        errors.append(InjectedError("coarse_outline", tuple(g for i in inst_gt.values() for g in i),
                                    tuple(inst_gt), float(profile.polygon_coarseness)))

    # 6. debris in the image labelled as cells
    for d in range(1, sim.n_debris + 1):
        if rng.random() < profile.debris_rate:
            region = (sim.debris == d) & (L == 0)
            if region.any():
                new = int(L.max()) + 1
                L[region] = new
                errors.append(InjectedError("debris", (), (new,), 0.0, str(d)))

    # 7. random spurious blobs in the background
    lo = 8.0
    for _ in range(int(rng.poisson(profile.spurious_per_image))):
        blob = _blob_mask(rng, shape, (lo, lo * 1.6), ndi.binary_dilation(L > 0, iterations=2))
        if blob is not None:
            new = int(L.max()) + 1
            L[blob] = new
            errors.append(InjectedError("spurious", (), (new,)))

    # 8. heavy corruption of the whole annotation
    if rng.random() < profile.corruption_rate and L.any():
        mode = CORRUPTION_MODES[int(rng.integers(len(CORRUPTION_MODES)))]
        ids = tuple(int(i) for i in np.unique(L) if i)
        gts = tuple(sorted({g for i in ids if i in inst_gt for g in inst_gt[i]}))
        if mode == "shift":
            mag = float(rng.uniform(4, 8))
            phi = rng.uniform(0, 2 * np.pi)
            dy, dx = int(round(mag * np.sin(phi))), int(round(mag * np.cos(phi)))
            shifted = np.zeros_like(L)
            ys = slice(max(dy, 0), shape[0] + min(dy, 0))
            xs = slice(max(dx, 0), shape[1] + min(dx, 0))
            yd = slice(max(-dy, 0), shape[0] + min(-dy, 0))
            xd = slice(max(-dx, 0), shape[1] + min(-dx, 0))
            shifted[ys, xs] = L[yd, xd]
            L = shifted
        elif mode == "dropout":
            mag = float(rng.uniform(0.5, 0.8))
            drop = [i for i in ids if rng.random() < mag]
            L[np.isin(L, drop)] = 0
            for i in drop:
                if i in inst_gt:
                    errors.append(InjectedError("missed", inst_gt[i], (), 0.0, "dropout"))
        elif mode == "blobs":
            count = max(8, int(round(len(ids) * rng.uniform(1.0, 1.5))))
            mag = float(count)
            for _ in range(count):
                blob = _blob_mask(rng, shape, (lo, lo * 2.0), ndi.binary_dilation(L > 0))
                if blob is not None:
                    new = int(L.max()) + 1
                    L[blob] = new
                    errors.append(InjectedError("spurious", (), (new,), 0.0, "blobs"))
        else:  # smear
            areas = np.bincount(L.ravel())[1:]
            radius = float(np.sqrt(np.median(areas[areas > 0]) / np.pi))
            mag = max(4.0, float(rng.uniform(0.7, 1.0)) * radius)
            L = _smear(L, mag, rng)
            _polygonize(L, 3.0)
        errors.append(InjectedError("corruption", gts, ids, mag, mode))

    # shuffle ids; rewrite the rows with the final ids
    present = np.unique(L)
    present = present[present > 0]
    perm = rng.permutation(len(present)) + 1
    remap = np.zeros(int(L.max(initial=0)) + 1, np.int64)
    remap[present] = perm
    out = remap[L].astype(np.uint16)
    final = []
    for e in errors:
        ids = tuple(int(remap[i]) for i in e.annotation_ids if i < len(remap) and remap[i] > 0)
        final.append(replace(e, annotation_ids=ids))
    return SimulatedAnnotation(labels=out, errors=tuple(final), profile=profile)
