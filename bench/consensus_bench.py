"""Consensus vs the obvious baselines on simulated multi-annotator data, plus fuse timing.

For panels of 3 and 5 simulated annotators (expert, average, ..., careless; each annotation
may be heavily corrupted at its profile's rate) over several seeds, prints AP@0.5, AP@0.75
and mean matched IoU against the simulated ground truth for:

- the best single annotator (the one with the highest mean AP@0.5 in that seed's images),
- per-pixel majority vote + connected components (``qa.consensus.majority_vote``),
- ``qa.consensus.fuse`` unweighted,
- ``qa.consensus.fuse`` weighted by a first-pass reliability: each annotator's mean F1
  against the unweighted consensus over the same images (what a QA lead has at hand).

Then times ``fuse`` on five annotations of 384 x 384 images with 70 cells, per modality
(cytoplasm cells are the largest, so the slowest).

Usage::

    python bench/consensus_bench.py [--seeds 3] [--images 8] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.consensus import fuse, majority_vote  # noqa: E402
from qa.metrics import match_instances  # noqa: E402
from qa.simulate import simulate_dataset  # noqa: E402

MODALITIES = ("fluorescence", "cytoplasm", "brightfield")


def scores(gts, labels) -> np.ndarray:
    """Mean AP@0.5, AP@0.75 and mean matched IoU (at 0.5) over images."""
    out = []
    for gt, lab in zip(gts, labels, strict=True):
        r50 = match_instances(gt, lab, iou_threshold=0.5)
        r75 = match_instances(gt, lab, iou_threshold=0.75)
        out.append((r50.ap, r75.ap, r50.mean_matched_iou))
    return np.array(out).mean(axis=0)


def run_panel(n_annotators: int, seed: int, n_images: int, shape, n_cells):
    data = simulate_dataset(n_images, n_annotators, seed=seed, shape=shape, n_cells=n_cells,
                            modality=MODALITIES)
    gts = [s.image.labels for s in data]
    masks = [[a.labels for a in s.annotations] for s in data]
    singles = [scores(gts, [m[j] for m in masks]) for j in range(n_annotators)]
    best = int(np.argmax([s[0] for s in singles]))
    plain = [fuse(m) for m in masks]
    weights = np.array([[match_instances(c.labels, m[j]).f1 for j in range(n_annotators)]
                        for c, m in zip(plain, masks, strict=True)]).mean(axis=0)
    weighted = [fuse(m, weights=weights) for m in masks]
    corrupted = sum(a.corrupted for s in data for a in s.annotations)
    return {
        "names": [a.profile.name for a in data[0].annotations],
        "singles": singles,
        "best": best,
        "majority": scores(gts, [majority_vote(m) for m in masks]),
        "fuse": scores(gts, [c.labels for c in plain]),
        "fuse_w": scores(gts, [c.labels for c in weighted]),
        "weights": weights,
        "corrupted": corrupted,
        "n_annotations": n_images * n_annotators,
    }


def fmt(v: np.ndarray) -> str:
    return f"{v[0]:7.3f} {v[1]:7.3f} {v[2]:7.3f}"


def time_fuse(repeats: int, modality: str) -> tuple[float, float, float]:
    """Median and max wall time, and median CPU time of this process, per fuse call."""
    data = simulate_dataset(3, 5, seed=123, shape=(384, 384), n_cells=70, modality=modality)
    wall, cpu = [], []
    for s in data:
        masks = [a.labels for a in s.annotations]
        fuse(masks)  # warm-up
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fuse(masks)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.max(wall)), float(np.median(cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="2 seeds x 4 images")
    args = parser.parse_args()
    seeds, n_images = (2, 4) if args.quick else (args.seeds, args.images)
    shape, n_cells = (256, 256), (40, 70)
    print(f"Simulated {shape[0]}x{shape[1]} images, {n_cells[0]}-{n_cells[1]} cells, modalities "
          f"cycled {'/'.join(MODALITIES)}; {n_images} images x {seeds} seeds per panel.")
    print("Scores against ground truth: AP@0.5, AP@0.75, mean matched IoU (pairs at IoU>=0.5).")
    for k in (3, 5):
        print(f"\n=== {k} annotators ===")
        rows = [run_panel(k, 1000 + s, n_images, shape, n_cells) for s in range(seeds)]
        print("names:", ", ".join(rows[0]["names"]))
        header = f"{'seed':>4}  {'method':<26}{'AP50':>7} {'AP75':>7} {'mIoU':>7}"
        print(header)
        for s, r in enumerate(rows):
            best = r["singles"][r["best"]]
            print(f"{s:>4}  {'best single (' + r['names'][r['best']] + ')':<26}{fmt(best)}")
            print(f"{'':>4}  {'majority vote + CC':<26}{fmt(r['majority'])}")
            print(f"{'':>4}  {'fuse (unweighted)':<26}{fmt(r['fuse'])}")
            print(f"{'':>4}  {'fuse (weighted)':<26}{fmt(r['fuse_w'])}")
            print(f"{'':>4}  weights {np.round(r['weights'], 3).tolist()}; "
                  f"{r['corrupted']}/{r['n_annotations']} annotations heavily corrupted")
        best = np.mean([r["singles"][r["best"]] for r in rows], axis=0)
        each = np.mean([r["singles"] for r in rows], axis=0)
        mv = np.mean([r["majority"] for r in rows], axis=0)
        fu = np.mean([r["fuse"] for r in rows], axis=0)
        fw = np.mean([r["fuse_w"] for r in rows], axis=0)
        print(f"mean over seeds ({k} annotators):")
        for name, v in zip(rows[0]["names"], each, strict=True):
            print(f"      {'  annotator ' + name:<26}{fmt(v)}")
        print(f"      {'best single annotator':<26}{fmt(best)}")
        print(f"      {'majority vote + CC':<26}{fmt(mv)}")
        print(f"      {'fuse (unweighted)':<26}{fmt(fu)}")
        print(f"      {'fuse (weighted)':<26}{fmt(fw)}")
        print(f"      fuse - best single:  unweighted {fmt(fu - best)}")
        print(f"                           weighted   {fmt(fw - best)}")
        print("      per-seed AP50 gain over best single, unweighted / weighted: "
              + ", ".join(f"{r['fuse'][0] - r['singles'][r['best']][0]:+.3f}/"
                          f"{r['fuse_w'][0] - r['singles'][r['best']][0]:+.3f}" for r in rows))
    print("\nfuse timing, 5 annotations of a 384x384 image with 70 cells "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):")
    for modality in MODALITIES:
        med, worst, cpu = time_fuse(3 if args.quick else 10, modality)
        print(f"  {modality:<13} wall median {med * 1000:6.1f} ms, max {worst * 1000:6.1f} ms; "
              f"CPU time median {cpu * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
