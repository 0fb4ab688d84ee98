"""Benchmark of qa.noise on simulated data with injected, reported errors.

Prints, for panels of 3 and 5 simulated annotators (one careless; every annotation
may be heavily corrupted with the simulator's ``corruption_rate``):

- AUROC of ``score_annotations(...).quality`` for telling corrupted annotations from clean
  ones (sklearn.metrics.roc_auc_score), with the default first-pass weights and with
  weights from ``annotator_reliability``, next to plain F1 against the others and an
  oracle that scores each annotation against the ground truth (panoptic quality): no
  quality measure of the annotations themselves can be expected to beat the oracle;
- AUROC of ``relative_quality`` (each annotation against its own annotator's typical
  level): from ``annotator_reliability(...).relative_quality`` (reliability-weighted
  references, typical levels from the same images), and from
  ``score_annotations(masks, expected=AnnotatorExpectation.from_scores(...))`` with the
  default first-pass weights and typical levels from the first-pass scores of all images;
- precision at recall >= 0.8 of the ``missed``, ``spurious`` (simulated spurious blobs
  and debris labelled as cells) and ``merged`` flags of ``flag_instances`` (with the
  image, ``min_score=0``) against the simulator's error reports, on the annotations
  that are not corrupted (inside a corrupted one every cell is wrong and the reports do
  not say which error each cell carries); a second flag on the same injected error
  counts as a false one;
- the ranking from ``annotator_reliability`` and where the careless annotator lands.

Run:  .venv/bin/python bench/noise_bench.py [--images 60] [--seed 7] [--annotators 3 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from qa.metrics import match_instances
from qa.noise import (
    AnnotatorExpectation,
    annotator_reliability,
    flag_instances,
    score_annotations,
)
from qa.simulate import simulate_dataset

KINDS = ("missed", "spurious", "merged")


def precision_at_recall(scores, hits, n_true, *, recall=0.8):
    """Best precision over score thresholds whose recall is >= ``recall`` (ties kept)."""
    if n_true == 0:
        return float("nan"), float("nan"), 0
    scores = np.asarray(scores, float)
    hits = np.asarray(hits, bool)
    best = (float("nan"), 0.0)
    for t in np.unique(scores)[::-1]:
        sel = scores >= t
        tp = int(hits[sel].sum())
        r = tp / n_true
        p = tp / int(sel.sum())
        if r >= recall and (np.isnan(best[0]) or p > best[0]):
            best = (p, r)
    max_recall = hits.sum() / n_true
    return best[0], max_recall, len(scores)


def gt_of_cells(gt: np.ndarray, masks, others) -> int:
    """Ground-truth id under most of the other annotators' cells behind a flag."""
    votes = np.zeros(int(gt.max()) + 1)
    for j, lab in others:
        votes += np.bincount(gt[masks[j] == lab], minlength=votes.size)
    votes[0] = 0
    return int(votes.argmax()) if votes.sum() else 0


def run_panel(k: int, n_images: int, seed: int) -> None:
    data = simulate_dataset(n_images, k, seed=seed, n_cells=(30, 70),
                            modality=("fluorescence", "cytoplasm", "brightfield"))
    names = [a.profile.name for a in data[0].annotations]
    t0 = time.perf_counter()
    rel = annotator_reliability([[a.labels for a in s.annotations] for s in data])
    t_rel = time.perf_counter() - t0
    weights = np.clip(rel.reliability, 0.05, 1.0)
    t0 = time.perf_counter()
    y, quality, weighted, f1, oracle, first_pass = [], [], [], [], [], []
    flag_rows = {kind: ([], []) for kind in KINDS}
    n_true = dict.fromkeys(KINDS, 0)
    for sample in data:
        masks = [a.labels for a in sample.annotations]
        gt = sample.image.labels
        scores = score_annotations(masks)
        first_pass.append(scores)
        for a, s in zip(sample.annotations, scores, strict=True):
            y.append(a.corrupted)
            quality.append(s.quality)
            f1.append(s.f1)
            oracle.append(match_instances(gt, a.labels).panoptic_quality)
        weighted += [s.quality for s in score_annotations(masks, weights=weights)]
        # min_score=0: every candidate, so that the whole precision-recall curve is seen
        flags = flag_instances(masks, image=sample.image.image, min_score=0.0)
        for i, a in enumerate(sample.annotations):
            if a.corrupted:
                continue
            truth = {
                "missed": {g for e in a.errors_of("missed") for g in e.gt_ids},
                "spurious": {c for kind in ("spurious", "debris") for e in a.errors_of(kind)
                             for c in e.annotation_ids},
                "merged": {c for e in a.errors_of("merged") for c in e.annotation_ids},
            }
            for kind in KINDS:
                n_true[kind] += len(truth[kind])
            seen = set()  # a second flag on the same injected error counts as false
            for f in flags:  # sorted by descending score within each kind
                if f.annotator != i or f.kind not in KINDS:
                    continue
                if f.kind != "missed":
                    key = (f.kind, f.labels[0])
                elif f.others:
                    key = (f.kind, gt_of_cells(gt, masks, f.others))
                else:  # a cell nobody drew, found in the image: the cell at that pixel
                    key = (f.kind, int(gt[f.where]))
                hit = key[1] in truth[f.kind] and key not in seen
                seen.add(key)
                flag_rows[f.kind][0].append(f.score)
                flag_rows[f.kind][1].append(hit)
    t_score = time.perf_counter() - t0
    expected = AnnotatorExpectation.from_scores(first_pass)
    names_ = ("recall_sure", "plausible", "iou_sure", "registration", "shift_px")
    relative_fp = np.concatenate([
        expected.relative_quality(range(k), [[getattr(s, f) for f in names_] for s in scores])
        for scores in first_pass])
    relative_em = rel.relative_quality.ravel()

    y = np.asarray(y)
    print(f"\n== {k} annotators ({', '.join(names)}), {n_images} images, seed {seed}: "
          f"{y.size} annotations, {int(y.sum())} corrupted ==")
    auc = {name: roc_auc_score(y, -np.asarray(v)) for name, v in (
        ("quality", quality), ("weighted", weighted), ("f1", f1), ("oracle", oracle))}
    print(f"AUROC corrupted vs clean: quality {auc['quality']:.4f} (first-pass weights), "
          f"{auc['weighted']:.4f} (weights from annotator_reliability); "
          f"F1 vs others {auc['f1']:.4f}; oracle PQ vs ground truth {auc['oracle']:.4f}")
    rel_auc = {name: roc_auc_score(y, -np.asarray(v)) for name, v in (
        ("em", relative_em), ("fp", relative_fp))}
    print(f"AUROC corrupted vs clean by relative_quality (vs the annotator's typical level): "
          f"{rel_auc['em']:.4f} (annotator_reliability(...).relative_quality), "
          f"{rel_auc['fp']:.4f} (score_annotations(masks, expected=...), first-pass weights)")
    modes = np.asarray([next((e.detail for e in a.errors if e.kind == "corruption"), "")
                        for sample in data for a in sample.annotations])
    parts = []
    for mode in ("shift", "dropout", "blobs", "smear"):
        sel = ~y | (modes == mode)
        if (modes == mode).any():
            parts.append(f"{mode} ({int((modes == mode).sum())}) quality "
                         f"{roc_auc_score(y[sel], -np.asarray(quality)[sel]):.3f} relative "
                         f"{roc_auc_score(y[sel], -relative_em[sel]):.3f}")
    print("  AUROC by corruption mode: " + "; ".join(parts))
    all_scores, all_hits = [], []
    for kind in KINDS:
        scores, hits = flag_rows[kind]
        all_scores += scores
        all_hits += hits
        p, max_r, n = precision_at_recall(scores, hits, n_true[kind])
        p7 = precision_at_recall(scores, hits, n_true[kind], recall=0.7)[0]
        print(f"flags {kind:9s} injected {n_true[kind]:4d}  flagged {n:4d}  "
              f"recall (all flags) {max_r:.3f}  precision at recall>=0.8 {p:.3f}  "
              f"(at recall>=0.7 {p7:.3f})")
    p, max_r, n = precision_at_recall(all_scores, all_hits, sum(n_true.values()))
    print(f"flags {'combined':9s} injected {sum(n_true.values()):4d}  flagged {n:4d}  "
          f"recall (all flags) {max_r:.3f}  precision at recall>=0.8 {p:.3f}")
    order = [f"{names[j]} {rel.reliability[j]:.3f}" for j in rel.ranking]
    careless = [j for j, name in enumerate(names) if name.startswith("careless")]
    last = all(j in rel.ranking[-len(careless):] for j in careless)
    print(f"reliability ranking (best first): {' > '.join(order)}   careless ranked last: {last}"
          f"   ({rel.n_iterations} EM iterations)")
    print(f"time: reliability {t_rel:.1f} s; scores (twice) + flags {t_score:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--annotators", type=int, nargs="+", default=[3, 5])
    args = parser.parse_args()
    for k in args.annotators:
        run_panel(k, args.images, args.seed)


if __name__ == "__main__":
    main()
