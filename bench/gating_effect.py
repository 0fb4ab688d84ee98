"""Does training on QA-gated consensus beat training on the raw labels? (issue 6, item 6)

For each seed: simulate training images whose annotators make errors tied to the image
content (``qa.simulate``: debris rendered in the image and labelled as cells by the
careless and average annotators, faint cells missed, systematic 1 px erosion / 1-1.5 px
dilation, merged touching cells, whole annotations heavily corrupted), and a separate
test set with ground truth.  Train Cellpose 3 from the same random initialisation, on
the same image order, once per label condition:

(a) ``pooled``  every annotator's raw annotation of every image;
(b) ``random``  one randomly chosen annotator per image;
(c) ``gated``   reliability-weighted consensus (``qa.noise.annotator_reliability`` ->
                ``qa.consensus.fuse(weights=...)``) with per-cell gating: a consensus
                cell is dropped when annotators holding at least half of its members'
                reliability had that member flagged ``outlier`` by
                ``qa.noise.flag_instances`` (shape/brightness unlike the image's cells);
(d) ``truth``   the simulator's ground truth (the ceiling).

Every condition trains on the same list of ``n_train x K`` (image, label) pairs (image
``i`` repeated K times; pooled uses annotation ``j`` for copy ``j``, the others repeat
their one label), so the sampled images, their order and the augmentations are identical
and only the labels differ.  Two annotator settings: 3 (expert, average (1 px erosion),
careless) and 5 (+ good (0.6 px dilation), average_dilating); the careless annotator's
annotations are heavily corrupted with probability 0.3.  Reported per setting: mean ± sd
over seeds and the paired per-seed differences of AP@0.5, AP@0.75 and mean matched IoU
on the test set, the training labels' own quality against the ground truth, matched
predicted/true area ratio, and debris predicted as cells.

    .venv/bin/python bench/gating_effect.py --quick        # a few minutes on 2 cores
    .venv/bin/python bench/gating_effect.py                # full run, <= 45 min
    .venv/bin/python bench/gating_effect.py --device cuda --train-images 48 --steps 2000

Writes ``bench/results/gating_effect[_quick].{json,md}``, ``..._diffs.png`` (per-seed
differences) and ``..._loss.png`` (mean training loss per condition).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.consensus import fuse  # noqa: E402
from qa.metrics import match_instances  # noqa: E402
from qa.noise import annotator_reliability, flag_instances  # noqa: E402
from qa.simulate import PERFECT, annotator_panel, simulate_dataset  # noqa: E402
from training.backbones import cellpose as cp  # noqa: E402
from training.backbones.base import TrainConfig  # noqa: E402
from training.evaluate import evaluate  # noqa: E402

SETTINGS = {"3 annotators": (0, 1, 4), "5 annotators": (0, 1, 2, 3, 4)}
CONDITIONS = ("pooled", "random", "gated", "truth")
DIFFS = (("gated", "pooled"), ("gated", "random"), ("truth", "gated"))
METRICS = (("ap50", "AP@0.5"), ("ap75", "AP@0.75"), ("miou", "mean matched IoU"))


def panel():
    """The five annotators; the careless one corrupts whole annotations 30 % of the time."""
    profiles = list(annotator_panel(5, careless=1))
    profiles[4] = replace(profiles[4], corruption_rate=0.3)
    return tuple(profiles)


def simulate(seed: int, args):
    kw = dict(shape=(args.size, args.size), n_cells=(40, 60), modality="fluorescence")
    train = simulate_dataset(args.train_images, profiles=panel(),
                             seed=np.random.default_rng([seed, 1]), **kw)
    test = simulate_dataset(args.test_images, profiles=(PERFECT,),
                            seed=np.random.default_rng([seed, 2]), **kw)
    return train, test


def gated_labels(train, idx):
    """Reliability-weighted consensus with outlier-flagged cells removed, per image."""
    masks = [[s.annotations[j].labels for j in idx] for s in train]
    rel = annotator_reliability(masks).reliability
    out, unweighted, weighted, dropped = [], [], [], 0
    for s, m in zip(train, masks, strict=True):
        cons = fuse(m, weights=rel)
        flags = flag_instances(m, image=s.image.image, consensus=cons, weights=rel)
        bad = {(f.annotator, lab) for f in flags if f.kind == "outlier" for lab in f.labels}
        labels = cons.labels.copy()
        for i, members in enumerate(cons.members):
            held = [j for j, lab in enumerate(members) if lab]
            share = sum(rel[j] for j in held if (j, int(members[j])) in bad)
            if held and share >= 0.5 * sum(rel[j] for j in held):
                labels[labels == i + 1] = 0
                dropped += 1
        out.append(labels)
        weighted.append(cons.labels)
        unweighted.append(fuse(m).labels)
    return out, {"reliability": [round(float(r), 4) for r in rel], "cells_dropped": dropped,
                 "unweighted": unweighted, "weighted": weighted}


def quality(truth, labels) -> dict:
    p = evaluate(truth, labels)["model"]["pooled"]
    return {"ap50": p["ap"][0], "ap75": p["ap"][5], "miou": p["mean_matched_iou"]}


def test_scores(test, preds) -> dict:
    truth = [s.image.labels for s in test]
    scores = quality(truth, preds)
    pred_area = true_area = 0
    debris = 0
    for s, pred in zip(test, preds, strict=True):
        m = match_instances(s.image.labels, pred)
        if len(m.pairs):
            ta = np.bincount(s.image.labels.ravel())
            pa = np.bincount(pred.ravel().astype(np.int64))
            true_area += int(ta[m.pairs[:, 0]].sum())
            pred_area += int(pa[m.pairs[:, 1]].sum())
        debris += match_instances(s.image.debris, pred).tp
    scores["area_ratio"] = pred_area / true_area if true_area else float("nan")
    scores["debris_as_cells"] = int(debris)
    scores["n_debris"] = int(sum(len(np.unique(s.image.debris)) - 1 for s in test))
    return scores


def run_seed(seed: int, args, log) -> dict:
    train, test = simulate(seed, args)
    truth_imgs = [s.image.labels for s in train]
    test_images = [s.image.image for s in test]
    out = {}
    for setting, idx in SETTINGS.items():
        k = len(idx)
        gated, info = gated_labels(train, idx)
        pick = np.random.default_rng([seed, 3]).integers(k, size=len(train))
        labels = {
            "pooled": [s.annotations[j].labels for s in train for j in idx],
            "random": [s.annotations[idx[pick[i]]].labels for i, s in enumerate(train)
                       for _ in range(k)],
            "gated": [g for g in gated for _ in range(k)],
            "truth": [t for t in truth_imgs for _ in range(k)],
        }
        images = [s.image.image for s in train for _ in range(k)]
        truth_rep = labels["truth"]
        res = {"reliability": info["reliability"], "gate_cells_dropped": info["cells_dropped"],
               "labels_unweighted_consensus": quality(truth_imgs, info["unweighted"]),
               "labels_weighted_consensus": quality(truth_imgs, info["weighted"]),
               "conditions": {}}
        config = TrainConfig(epochs=args.steps // 2, learning_rate=args.learning_rate,
                             batch_size=8, tile_size=args.tile, seed=seed, device=args.device,
                             save_every=args.steps, warmup_epochs=args.warmup_epochs,
                             images_per_epoch=16)
        options = cp.CellposeOptions(nbase=tuple(args.nbase), diam_mean=15.0, min_train_masks=0)
        for cond in CONDITIONS:
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                result = cp.fine_tune(images, labels[cond], config=config, options=options,
                                      checkpoint_dir=tmp)
                preds = cp.predict(test_images, weights=result.weights, tile_size=args.tile,
                                   device=args.device)
            row = test_scores(test, preds)
            row["labels"] = quality(truth_rep, labels[cond])
            row["train_loss"] = [round(v, 5) for v in result.train_loss]
            row["seconds"] = round(time.perf_counter() - t0, 1)
            res["conditions"][cond] = row
            log(f"seed {seed} {setting:12s} {cond:6s} AP50 {row['ap50']:.3f} AP75 "
                f"{row['ap75']:.3f} mIoU {row['miou']:.3f} area {row['area_ratio']:.3f} "
                f"debris {row['debris_as_cells']}/{row['n_debris']} labels AP50 "
                f"{row['labels']['ap50']:.3f} loss {result.train_loss[0]:.3f}->"
                f"{result.train_loss[-1]:.3f} ({row['seconds']} s)")
        out[setting] = res
    return out


def summarise(runs: dict) -> dict:
    summary = {}
    for setting in SETTINGS:
        per = [runs[s][setting] for s in sorted(runs)]
        conds = {}
        for cond in CONDITIONS:
            rows = [p["conditions"][cond] for p in per]
            conds[cond] = {key: _stats([r[key] for r in rows]) for key in
                           ("ap50", "ap75", "miou", "area_ratio", "debris_as_cells")}
            conds[cond]["labels"] = {key: _stats([r["labels"][key] for r in rows])
                                     for key in ("ap50", "ap75", "miou")}
        diffs = {}
        for a, b in DIFFS:
            diffs[f"{a} - {b}"] = {
                key: {"per_seed": [round(p["conditions"][a][key] - p["conditions"][b][key], 4)
                                   for p in per]} for key, _ in METRICS}
            for key, _ in METRICS:
                d = diffs[f"{a} - {b}"][key]
                d.update(_stats(d["per_seed"]))
                d["wins"] = int(sum(v > 0 for v in d["per_seed"]))
        summary[setting] = {"conditions": conds, "differences": diffs,
                            "labels_unweighted_consensus": _stats_dicts(
                                [p["labels_unweighted_consensus"] for p in per]),
                            "labels_weighted_consensus": _stats_dicts(
                                [p["labels_weighted_consensus"] for p in per]),
                            "gate_cells_dropped": [p["gate_cells_dropped"] for p in per],
                            "reliability": [p["reliability"] for p in per]}
    return summary


def _stats(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max())}


def _stats_dicts(rows) -> dict:
    return {k: _stats([r[k] for r in rows]) for k in rows[0]}


def markdown(summary: dict, meta: dict) -> str:
    lines = [f"# Gating experiment{' (quick)' if meta['quick'] else ''}", "",
             f"Seeds {meta['seeds']}; {meta['train_images']} training images x K annotators, "
             f"{meta['test_images']} test images, {meta['size']} px; Cellpose 3 net "
             f"nbase={meta['nbase']}, {meta['steps']} steps of batch 8, tile {meta['tile']}, "
             f"AdamW lr {meta['learning_rate']}; wall time {meta['wall_time_min']:.1f} min "
             f"({meta['device']}). Values: mean ± sd over seeds.", ""]
    fmt = "{mean:.3f} ± {sd:.3f}"
    for setting, s in summary.items():
        lines += [f"## {setting}", "",
                  "| condition | AP@0.5 | AP@0.75 | mean matched IoU | area pred/true | "
                  "debris as cells | labels AP@0.5 | labels AP@0.75 | labels mIoU |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for cond, c in s["conditions"].items():
            lines.append(f"| {cond} | " + " | ".join(
                [fmt.format(**c[k]) for k in ("ap50", "ap75", "miou", "area_ratio")]
                + [f"{c['debris_as_cells']['mean']:.1f}"]
                + [fmt.format(**c["labels"][k]) for k in ("ap50", "ap75", "miou")]) + " |")
        lines += ["", "Paired per-seed differences (seed order as above; wins = seeds > 0):", "",
                  "| difference | " + " | ".join(name for _, name in METRICS) + " |",
                  "|---|---|---|---|"]
        for name, d in s["differences"].items():
            cells = [", ".join(f"{v:+.3f}" for v in d[k]["per_seed"])
                     + f" (mean {d[k]['mean']:+.3f}, {d[k]['wins']}/{len(d[k]['per_seed'])})"
                     for k, _ in METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        u, w = s["labels_unweighted_consensus"], s["labels_weighted_consensus"]
        lines += ["", f"Consensus labels before gating: unweighted AP@0.5 "
                  f"{fmt.format(**u['ap50'])}, AP@0.75 {fmt.format(**u['ap75'])}; "
                  f"reliability-weighted AP@0.5 {fmt.format(**w['ap50'])}, AP@0.75 "
                  f"{fmt.format(**w['ap75'])}. Cells removed by the outlier gate per seed: "
                  f"{s['gate_cells_dropped']}. Estimated reliabilities per seed: "
                  f"{s['reliability']}.", ""]
    return "\n".join(lines)


def plots(runs: dict, summary: dict, stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(SETTINGS), len(METRICS), figsize=(12, 3.4 * len(SETTINGS)),
                             squeeze=False)
    for r, (setting, s) in enumerate(summary.items()):
        for c, (key, name) in enumerate(METRICS):
            ax = axes[r, c]
            for x, d in enumerate(s["differences"].values()):
                vals = d[key]["per_seed"]
                ax.scatter([x] * len(vals), vals, color="C0", zorder=3)
                ax.hlines(d[key]["mean"], x - 0.25, x + 0.25, color="C3")
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xticks(range(len(s["differences"])), list(s["differences"]), fontsize=8)
            ax.set_title(f"{setting}: {name}", fontsize=9)
    fig.suptitle("Paired per-seed differences (dots: seeds, red: mean)")
    fig.tight_layout()
    fig.savefig(f"{stem}_diffs.png", dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(SETTINGS), figsize=(10, 3.5), squeeze=False)
    for c, setting in enumerate(SETTINGS):
        for cond in CONDITIONS:
            curves = np.array([runs[s][setting]["conditions"][cond]["train_loss"]
                               for s in sorted(runs)])
            axes[0, c].plot(np.arange(1, curves.shape[1] + 1) * 2, curves.mean(0), label=cond)
        axes[0, c].set_xlabel("step")
        axes[0, c].set_ylabel("train loss (mean over seeds)")
        axes[0, c].set_title(setting)
        axes[0, c].legend()
    fig.tight_layout()
    fig.savefig(f"{stem}_loss.png", dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes: fewer images/steps")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train-images", type=int, default=None)
    ap.add_argument("--test-images", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps per training")
    ap.add_argument("--tile", type=int, default=96)
    ap.add_argument("--nbase", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--learning-rate", type=float, default=0.005)
    ap.add_argument("--warmup-epochs", type=int, default=10)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (on the shared 2-core machine 1 was 2x faster)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--name", default=None,
                    help="output file stem (default gating_effect[_quick])")
    args = ap.parse_args(argv)
    quick = dict(train_images=6, test_images=4, size=192, steps=60)
    full = dict(train_images=10, test_images=6, size=256, steps=300)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if len(args.seeds) < 3:
        print("note: fewer than 3 seeds; the issue asks for at least 3", file=sys.stderr)
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / (args.name or ("gating_effect_quick" if args.quick
                                     else "gating_effect"))
    t0 = time.perf_counter()
    runs = {}
    for seed in args.seeds:
        runs[seed] = run_seed(seed, args, log=lambda m: print(m, flush=True))
    summary = summarise(runs)
    meta = {"quick": args.quick, "seeds": args.seeds, "train_images": args.train_images,
            "test_images": args.test_images, "size": args.size, "steps": args.steps,
            "tile": args.tile, "nbase": args.nbase, "learning_rate": args.learning_rate,
            "device": args.device, "threads": args.threads, "wall_time_min": (time.perf_counter() - t0) / 60}
    Path(f"{stem}.json").write_text(json.dumps({"meta": meta, "summary": summary,
                                                "runs": {str(k): v for k, v in runs.items()}},
                                               indent=1))
    text = markdown(summary, meta)
    Path(f"{stem}.md").write_text(text + "\n")
    plots(runs, summary, stem)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
