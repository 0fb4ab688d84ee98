"""Benchmark qa.metrics matching against Cellpose and StarDist on one realistic large pair.

Builds a 2048 x 2048 reference label image with ~2,000 cells (Voronoi cells of random seeds,
clipped to a radius and separated by 1-px background gaps) and an annotator-like copy (cells
shifted, grown or shrunk by a few pixels, some dropped, split or merged with a neighbour, a few
spurious blobs, ids shuffled), then times, in this one process and on the same arrays:

- ours: ``qa.metrics.match_at_thresholds`` at the ten thresholds 0.50 ... 0.95 (one overlap
  computation for all ten);
- Cellpose: ``cellpose.metrics.average_precision(ref, cand, threshold=thresholds)``;
- StarDist: ``stardist.matching.matching(ref, cand, thresh=t)`` called once per threshold, and
  also once with all ten thresholds (``thresh=thresholds``, one overlap matrix, ten dense
  assignments).

Each is timed as the best of ``--repeats`` runs after one warm-up run (numba compilation is
excluded). It checks that all three agree (TP/FP/FN exactly, scores to float32 precision,
because both references compute in float32) and prints our time and the speed-up ratios.

Run: ``.venv/bin/python bench/metrics_bench.py [--repeats 5] [--seed 0]``
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.metrics import DEFAULT_THRESHOLDS, match_at_thresholds  # noqa: E402


def voronoi_cells(
    shape: tuple[int, int], n_cells: int, rng: np.random.Generator, radius: float
) -> np.ndarray:
    """Label image of Voronoi cells of random seeds, clipped to ``radius``, with 1-px gaps."""
    seeds = np.zeros(shape, np.int32)
    ys = rng.integers(0, shape[0], n_cells)
    xs = rng.integers(0, shape[1], n_cells)
    seeds[ys, xs] = np.arange(1, n_cells + 1)
    dist, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[iy, ix]
    labels[dist > radius] = 0
    edge = np.zeros(shape, bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    labels[edge] = 0
    labels, _, _ = _sequential(labels)
    return labels


def _sequential(labels: np.ndarray, rng: np.random.Generator | None = None):
    ids = np.unique(labels)
    ids = ids[ids > 0]
    new = np.arange(1, ids.size + 1)
    if rng is not None:
        new = rng.permutation(new)
    lut = np.zeros(int(labels.max()) + 1, np.int64)
    lut[ids] = new
    return lut[labels], ids, new


def annotate_like(
    reference: np.ndarray,
    rng: np.random.Generator,
    *,
    p_drop: float = 0.03,
    p_split: float = 0.03,
    p_merge: float = 0.03,
    n_spurious: int = 40,
    max_shift: int = 3,
    max_morph: int = 2,
) -> np.ndarray:
    """A copy of ``reference`` with the errors a human annotator makes."""
    h, w = reference.shape
    out = np.zeros_like(reference, dtype=np.int64)
    next_id = int(reference.max()) + 1
    disk = {r: _disk(r) for r in range(1, max_morph + 1)}
    slices = ndi.find_objects(reference)
    merged_into: dict[int, int] = {}
    for idx, sl in enumerate(slices, start=1):
        if sl is None or idx in merged_into:
            continue
        u = rng.random()
        if u < p_drop:
            continue
        if u < p_drop + p_merge:
            # give a touching neighbour the same id
            pad = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in sl)
            crop = reference[pad]
            ring = ndi.binary_dilation(crop == idx, iterations=3) & (crop > 0) & (crop != idx)
            if ring.any():
                merged_into[int(np.bincount(crop[ring]).argmax())] = idx
        pad = max_shift + max_morph + 1
        y0, y1 = max(sl[0].start - pad, 0), min(sl[0].stop + pad, h)
        x0, x1 = max(sl[1].start - pad, 0), min(sl[1].stop + pad, w)
        cell = reference[y0:y1, x0:x1] == idx
        for other, target in merged_into.items():
            if target == idx:
                cell |= reference[y0:y1, x0:x1] == other
        morph = int(rng.integers(-max_morph, max_morph + 1))
        if morph > 0:
            cell = ndi.binary_dilation(cell, disk[morph])
        elif morph < 0:
            cell = ndi.binary_erosion(cell, disk[-morph])
        dy, dx = rng.integers(-max_shift, max_shift + 1, 2)
        cell = np.roll(cell, (int(dy), int(dx)), axis=(0, 1))
        ids = np.full(cell.shape, idx, np.int64)
        if rng.random() < p_split:
            yy, xx = np.nonzero(cell)
            if yy.size:
                angle = rng.uniform(0, np.pi)
                side = (np.arange(cell.shape[0])[:, None] - yy.mean()) * np.cos(angle) + (
                    np.arange(cell.shape[1])[None, :] - xx.mean()
                ) * np.sin(angle) > 0
                ids[side] = next_id
                next_id += 1
        region = out[y0:y1, x0:x1]
        free = cell & (region == 0)
        region[free] = ids[free]
    for _ in range(n_spurious):
        y, x = rng.integers(10, h - 10), rng.integers(10, w - 10)
        r = int(rng.integers(3, 8))
        blob = _disk(r)
        region = out[y - r : y + r + 1, x - r : x + r + 1]
        if region.shape == blob.shape:
            free = blob & (region == 0)
            region[free] = next_id
            next_id += 1
    labels, _, _ = _sequential(out, rng)
    return labels


def _disk(r: int) -> np.ndarray:
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return yy * yy + xx * xx <= r * r


def best_time(fn, repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up (numba compilation, caches)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--cells", type=int, default=2000)
    args = parser.parse_args(argv)

    from cellpose.metrics import average_precision as cellpose_average_precision
    from stardist.matching import matching as stardist_matching

    rng = np.random.default_rng(args.seed)
    reference = voronoi_cells((args.size, args.size), args.cells, rng, radius=26.0).astype(
        np.uint16
    )
    candidate = annotate_like(reference, rng).astype(np.uint16)
    thresholds = list(DEFAULT_THRESHOLDS)

    t_ours, ours = best_time(
        lambda: match_at_thresholds(reference, candidate, thresholds=thresholds), args.repeats
    )
    t_cp, cp = best_time(
        lambda: cellpose_average_precision(reference, candidate, threshold=thresholds), args.repeats
    )
    t_sd, sd = best_time(
        lambda: [stardist_matching(reference, candidate, thresh=t) for t in thresholds],
        args.repeats,
    )
    t_sd1, sd1 = best_time(
        lambda: stardist_matching(reference, candidate, thresh=thresholds), args.repeats
    )

    cp_ap, cp_tp, cp_fp, cp_fn = cp
    problems = []
    for k, (r, s, s1) in enumerate(zip(ours, sd, sd1, strict=True)):
        counts = (r.tp, r.fp, r.fn)
        if counts != (s.tp, s.fp, s.fn) or counts != (s1.tp, s1.fp, s1.fn):
            problems.append(f"t={thresholds[k]}: ours {counts} vs StarDist {(s.tp, s.fp, s.fn)}")
        if counts != (int(cp_tp[k]), int(cp_fp[k]), int(cp_fn[k])):
            problems.append(
                f"t={thresholds[k]}: ours {counts} vs Cellpose {(cp_tp[k], cp_fp[k], cp_fn[k])}"
            )
        for mine, theirs, what in (
            (r.precision, s.precision, "precision"),
            (r.recall, s.recall, "recall"),
            (r.f1, s.f1, "f1"),
            (r.ap, s.accuracy, "ap"),
        ):
            if abs(mine - theirs) > 1e-12:
                problems.append(f"t={thresholds[k]}: {what} {mine} vs StarDist {theirs}")
        for mine, theirs, what in (
            (r.mean_matched_iou, s.mean_matched_score, "mean_matched_iou"),
            (r.panoptic_quality, s.panoptic_quality, "panoptic_quality"),
            (r.ap, float(cp_ap[k]), "ap (Cellpose, float32)"),
        ):
            if abs(mine - theirs) > 1e-6:
                problems.append(f"t={thresholds[k]}: {what} {mine} vs {theirs}")

    n_ref = int(np.unique(reference).size - 1)
    n_cand = int(np.unique(candidate).size - 1)
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )
    print(
        f"pair: {reference.shape[0]}x{reference.shape[1]} uint16, {n_ref} reference cells, "
        f"{n_cand} candidate cells, best of {args.repeats}"
    )
    print("threshold  tp    fp   fn   AP     F1     mean IoU  PQ")
    for r in ours:
        print(
            f"{r.iou_threshold:8.2f} {r.tp:5d} {r.fp:4d} {r.fn:4d}  {r.ap:.4f} {r.f1:.4f} "
            f"{r.mean_matched_iou:.4f}    {r.panoptic_quality:.4f}"
        )
    print(f"ours  (match_at_thresholds, 10 thresholds):        {t_ours * 1e3:8.1f} ms")
    print(
        f"cellpose average_precision (10 thresholds):        {t_cp * 1e3:8.1f} ms"
        f"   ratio {t_cp / t_ours:5.1f}x"
    )
    print(
        f"stardist matching, called once per threshold:      {t_sd * 1e3:8.1f} ms"
        f"   ratio {t_sd / t_ours:5.1f}x"
    )
    print(
        f"stardist matching, thresh=all ten in one call:     {t_sd1 * 1e3:8.1f} ms"
        f"   ratio {t_sd1 / t_ours:5.1f}x"
    )
    if problems:
        print("DISAGREEMENT:")
        for p in problems:
            print("  " + p)
        return 1
    print(
        "agreement: TP/FP/FN identical to Cellpose and StarDist at all thresholds; "
        "precision/recall/F1/AP equal to StarDist to 1e-12; mean IoU, PQ and Cellpose's "
        "float32 AP within 1e-6"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
