"""Consensus vs the obvious baselines on simulated multi-annotator data, plus fuse timing.

For several panels of simulated annotators (each annotation may be heavily corrupted at
its profile's rate) over several seeds, prints AP@0.5, AP@0.75, mean matched IoU and the
area ratio to the truth (summed area of matched cells over their true area) for:

- every annotator, and the best single one (highest mean AP@0.5 in that seed's images);
  also that annotator on its uncorrupted annotations only (a stricter outline reference),
- per-pixel majority vote + connected components (``qa.consensus.majority_vote``),
- ``qa.consensus.fuse`` unweighted,
- ``fuse`` weighted by a first-pass reliability: each annotator's mean F1 against the
  unweighted consensus over the same images (what a QA lead has at hand),
- ``fuse`` weighted and anchored to gold: ``boundary_bias=`` each annotator's outline bias
  measured by ``qa.consensus.estimate_boundary_bias`` on separate gold images (same panel,
  own seed) with known truth.

Mean matched IoU compares different sets of cells (the consensus finds more, often the
hard ones), so each method's outlines are also compared with the best single
annotator's like for like: mean IoU over the true cells both matched.

Panels (profiles from ``qa.simulate``; the last three are built here from the presets'
parameters):

- ``3 good+average+careless``: ``annotator_panel(3)`` = expert, average (-1 px), careless,
- ``3 similar``: three expert-like annotators, outline habits 0, +0.3, -0.3 px,
- ``3 best slightly better``: expert, good (+0.6 px), good with -0.6 px,
- ``5 dilating majority``: ``annotator_panel(5)`` = expert, average (-1), good (+0.6),
  average_dilating (+1), careless (+1.5): three of five draw too large (the gating case).

Then times ``fuse`` on five annotations of 384 x 384 images with 70 cells, per modality:
median CPU time of this process (``time.process_time``; other jobs on a shared machine
inflate wall time, not CPU time), and median / max wall time.

Usage::

    python bench/consensus_bench.py [--seeds 3] [--images 8] [--gold-images 4] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.consensus import estimate_boundary_bias, fuse, majority_vote  # noqa: E402
from qa.metrics import match_instances  # noqa: E402
from qa.simulate import EXPERT, GOOD, annotator_panel, simulate_dataset  # noqa: E402

MODALITIES = ("fluorescence", "cytoplasm", "brightfield")
PANELS = {
    "3 good+average+careless": annotator_panel(3),
    "3 similar": (EXPERT, replace(EXPERT, name="expert_b", boundary_bias_px=0.3),
                  replace(EXPERT, name="expert_c", boundary_bias_px=-0.3)),
    "3 best slightly better": (EXPERT, GOOD,
                               replace(GOOD, name="good_eroding", boundary_bias_px=-0.6)),
    "5 dilating majority": annotator_panel(5),
}
METHODS = ("majority vote + CC", "fuse (unweighted)", "fuse (weighted)",
           "fuse (weighted + gold bias)")


def scores(gts, labels) -> tuple[np.ndarray, list[dict]]:
    """Mean AP@0.5, AP@0.75 and mean matched IoU (at 0.5) over images, area ratio pooled;
    and per image the IoU of every matched true cell (true id -> IoU)."""
    out, cells, pred_area, true_area = [], [], 0, 0
    for gt, lab in zip(gts, labels, strict=True):
        r50 = match_instances(gt, lab, iou_threshold=0.5)
        r75 = match_instances(gt, lab, iou_threshold=0.75)
        out.append((r50.ap, r75.ap, r50.mean_matched_iou))
        cells.append(dict(zip(r50.pairs[:, 0].tolist(), np.asarray(r50.ious).tolist(),
                              strict=True)))
        if len(r50.pairs):
            true_area += int(np.bincount(gt.ravel())[r50.pairs[:, 0]].sum())
            pred_area += int(np.bincount(lab.ravel().astype(np.int64))[r50.pairs[:, 1]].sum())
    if not out:
        return np.full(4, np.nan), cells
    return np.r_[np.mean(out, axis=0), pred_area / true_area if true_area else np.nan], cells


def paired(reference: list[dict], method: list[dict]) -> np.ndarray:
    """(reference, method) mean IoU over the true cells both matched: outlines like for like."""
    a, b = [], []
    for ref, met in zip(reference, method, strict=True):
        for cell in ref.keys() & met.keys():
            a.append(ref[cell])
            b.append(met[cell])
    return np.array([np.mean(a), np.mean(b)]) if a else np.full(2, np.nan)


def run_panel(profiles, seed: int, n_images: int, n_gold: int, shape, n_cells) -> dict:
    kw = dict(profiles=profiles, shape=shape, n_cells=n_cells, modality=MODALITIES)
    data = simulate_dataset(n_images, seed=seed, **kw)
    gold = simulate_dataset(n_gold, seed=seed + 500, **kw)
    k = len(profiles)
    gts = [s.image.labels for s in data]
    masks = [[a.labels for a in s.annotations] for s in data]
    single_runs = [scores(gts, [m[j] for m in masks]) for j in range(k)]
    singles = [s for s, _ in single_runs]
    best = int(np.argmax([s[0] for s in singles]))
    clean = [i for i, s in enumerate(data) if not s.annotations[best].corrupted]
    plain = [fuse(m) for m in masks]
    weights = np.array([[match_instances(c.labels, m[j]).f1 for j in range(k)]
                        for c, m in zip(plain, masks, strict=True)]).mean(axis=0)
    bias = estimate_boundary_bias([[a.labels for a in s.annotations] for s in gold],
                                  [s.image.labels for s in gold])
    labels = {
        "majority vote + CC": [majority_vote(m) for m in masks],
        "fuse (unweighted)": [c.labels for c in plain],
        "fuse (weighted)": [fuse(m, weights=weights).labels for m in masks],
        "fuse (weighted + gold bias)": [fuse(m, weights=weights, boundary_bias=bias).labels
                                        for m in masks],
    }
    out = {}
    for method, labs in labels.items():
        out[method], cells = scores(gts, labs)
        out[method + " paired"] = paired(single_runs[best][1], cells)
    return out | {
        "names": [p.name for p in profiles],
        "singles": singles,
        "best": best,
        "best_clean": scores([gts[i] for i in clean], [masks[i][best] for i in clean])[0],
        "weights": weights,
        "gold_bias": bias,
        "true_bias": [p.boundary_bias_px for p in profiles],
        "corrupted": sum(a.corrupted for s in data for a in s.annotations),
        "n_annotations": n_images * k,
    }


def fmt(v: np.ndarray, pair: np.ndarray | None = None) -> str:
    out = f"{v[0]:7.3f} {v[1]:7.3f} {v[2]:7.3f} {v[3]:7.3f}"
    return out if pair is None else out + f"   {pair[1]:.3f} vs {pair[0]:.3f}"


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


def report_panel(name: str, rows: list[dict]) -> None:
    print(f"\n=== {name}: {', '.join(rows[0]['names'])} ===")
    print(f"{'seed':>4}  {'method':<30}{'AP50':>7} {'AP75':>7} {'mIoU':>7} {'area':>7}"
          "   mIoU on the cells both it and the best single matched (it vs best)")
    for s, r in enumerate(rows):
        best = r["singles"][r["best"]]
        print(f"{s:>4}  {'best single (' + r['names'][r['best']] + ')':<30}{fmt(best)}")
        for method in METHODS:
            print(f"{'':>4}  {method:<30}{fmt(r[method], r[method + ' paired'])}")
        print(f"{'':>4}  weights {np.round(r['weights'], 3).tolist()}; gold bias (px) "
              f"{np.round(r['gold_bias'], 2).tolist()} (profiles "
              f"{r['true_bias']}); {r['corrupted']}/{r['n_annotations']} annotations "
              "heavily corrupted")
    mean = {m: np.mean([r[m] for r in rows], axis=0) for m in METHODS}
    pair = {m: np.mean([r[m + " paired"] for r in rows], axis=0) for m in METHODS}
    best = np.mean([r["singles"][r["best"]] for r in rows], axis=0)
    best_clean = np.mean([r["best_clean"] for r in rows], axis=0)
    each = np.mean([r["singles"] for r in rows], axis=0)
    print(f"mean over seeds ({name}):")
    for n, v in zip(rows[0]["names"], each, strict=True):
        print(f"      {'  annotator ' + n:<30}{fmt(v)}")
    print(f"      {'best single annotator':<30}{fmt(best)}")
    print(f"      {'  same, uncorrupted only':<30}{fmt(best_clean)}")
    for m in METHODS:
        print(f"      {m:<30}{fmt(mean[m], pair[m])}")
    for m in METHODS[1:]:
        print(f"      {m + ' - best':<30}{fmt(mean[m] - best)}")
    for m in METHODS[1:]:
        print(f"      per-seed {m} - best single, AP50 / mIoU / mIoU on shared cells: "
              + ", ".join(f"{r[m][0] - r['singles'][r['best']][0]:+.3f}/"
                          f"{r[m][2] - r['singles'][r['best']][2]:+.3f}/"
                          f"{r[m + ' paired'][1] - r[m + ' paired'][0]:+.3f}" for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--gold-images", type=int, default=4)
    parser.add_argument("--panels", nargs="*", default=list(PANELS),
                        help="panel names (default: all)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 seeds x 4 images")
    args = parser.parse_args()
    seeds, n_images = (2, 4) if args.quick else (args.seeds, args.images)
    shape, n_cells = (256, 256), (40, 70)
    print(f"Simulated {shape[0]}x{shape[1]} images, {n_cells[0]}-{n_cells[1]} cells, modalities "
          f"cycled {'/'.join(MODALITIES)}; {n_images} images x {seeds} seeds per panel, "
          f"{args.gold_images} separate gold images per seed for the gold bias.")
    print("Scores against ground truth: AP@0.5, AP@0.75, mean matched IoU (pairs at IoU>=0.5), "
          "area of matched cells / their true area.")
    for name in args.panels:
        rows = [run_panel(PANELS[name], 1000 + s, n_images, args.gold_images, shape, n_cells)
                for s in range(seeds)]
        report_panel(name, rows)
    if args.no_timing:
        return
    print("\nfuse timing, 5 annotations of a 384x384 image with 70 cells "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):")
    for modality in MODALITIES:
        med, worst, cpu = time_fuse(3 if args.quick else 10, modality)
        print(f"  {modality:<13} CPU time median {cpu * 1000:6.1f} ms; wall median "
              f"{med * 1000:6.1f} ms, max {worst * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
