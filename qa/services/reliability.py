"""Use cases: annotator reliability per project, kept as sufficient statistics.

Each annotator's row holds sums over the annotations currently counted: for every image,
the scores of its latest QA run. A new run of an image removes the previous run's
contribution and adds its own (:func:`reliability_apply_run`, O(annotations of the
image)), so the estimate never re-reads old masks; :func:`reliability_recompute`
rebuilds every row from the stored runs (the occasional full pass). The estimates:

- ``quality``: mean leave-one-out quality, gold images counting
  :data:`qa.noise.reliability.GOLD_WEIGHT` times (their quality against the truth), as
  in :func:`qa.noise.annotator_reliability`'s M-step;
- ``sensitivity``: mean share of the cells the others agree on that the annotator drew;
- ``false_positive_rate``: mean share of the annotator's cells nobody else drew;
- ``boundary_bias``: mean outline shift in px against the others (+ = draws too large);
- ``gold_score``: mean F1 at IoU 0.5 against the truth on gold images;
- ``gold_boundary_bias``: outline offset in px against the truth (+ = draws too large),
  the cell-weighted mean of each gold image's median over its matched cells; None below
  :data:`qa.consensus.anchoring.MIN_GOLD_CELLS` matched cells. QA runs pass it to
  :func:`qa.consensus.fuse` (``boundary_bias=``) so that consensus outlines sit where the
  truth says, not where most annotators draw.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from django.db import transaction
from django.db.models import F

from annotation.models import Project
from qa.consensus.anchoring import MIN_GOLD_CELLS
from qa.models import (
    TIME_BIN_EDGES,
    AnnotatorReliability,
    AnnotatorReliabilityPoint,
    ImageQaState,
    QaRun,
    QaRunAnnotation,
)
from qa.noise.reference import MIN_RELIABILITY
from qa.noise.reliability import GOLD_WEIGHT

_STAT_FIELDS = ("quality", "recall_sure", "plausible", "shift_px", "gold_f1", "gold_quality",
                "gold_outline_bias", "gold_outline_cells", "time_spent_s")


def _empty_hist() -> list[int]:
    return [0] * len(TIME_BIN_EDGES)


def _add(row: AnnotatorReliability, s: dict, sign: int) -> None:
    """Add (sign=+1) or remove (sign=-1) one annotation's scores from an annotator's sums."""
    if s["quality"] is not None:
        row.n_annotations += sign
        row.sum_quality += sign * s["quality"]
        row.sum_recall += sign * (s["recall_sure"] or 0.0)
        row.sum_implausible += sign * (1.0 - (s["plausible"] if s["plausible"] is not None else 1.0))
        row.sum_shift += sign * (s["shift_px"] or 0.0)
    if s["gold_f1"] is not None:
        row.n_gold += sign
        row.sum_gold_f1 += sign * s["gold_f1"]
        row.sum_gold_quality += sign * (s["gold_quality"] or 0.0)
    if s["gold_outline_bias"] is not None and s["gold_outline_cells"]:
        row.n_gold_outline_cells += sign * s["gold_outline_cells"]
        row.sum_gold_outline += sign * s["gold_outline_cells"] * s["gold_outline_bias"]
    if s["time_spent_s"] is not None:
        hist = list(row.time_histogram) or _empty_hist()
        hist[bisect.bisect_left(TIME_BIN_EDGES, s["time_spent_s"])] += sign
        row.time_histogram = hist


def estimates(row: AnnotatorReliability) -> dict:
    """The reliability figures of one annotator's statistics (None where there is no data)."""
    n, g = row.n_annotations, row.n_gold
    weight = n + GOLD_WEIGHT * g
    quality = (row.sum_quality + GOLD_WEIGHT * row.sum_gold_quality) / weight if weight else None
    return {
        "quality": quality,
        "sensitivity": row.sum_recall / n if n else None,
        "false_positive_rate": row.sum_implausible / n if n else None,
        "boundary_bias": row.sum_shift / n if n else None,
        "gold_score": row.sum_gold_f1 / g if g else None,
        "gold_boundary_bias": (row.sum_gold_outline / row.n_gold_outline_cells
                               if row.n_gold_outline_cells >= MIN_GOLD_CELLS else None),
        "n_gold_outline_cells": row.n_gold_outline_cells,
        "n_annotations": n,
        "n_gold": g,
        "median_time_s": _median_time(row.time_histogram),
    }


def _median_time(hist: list[int]) -> float | None:
    """Median annotation time from the histogram (the upper edge of the median's bin)."""
    total = sum(hist or [])
    if total == 0:
        return None
    seen = 0
    for count, edge in zip(hist, TIME_BIN_EDGES, strict=True):
        seen += count
        if seen * 2 >= total:
            return edge if edge != float("inf") else None
    return None


def reliability_priors(*, project: Project, annotator_ids: Iterable[int]
                       ) -> tuple[dict[int, float], dict[int, float | None]]:
    """What a QA run's consensus takes from each annotator's record, in one query: its
    weight (quality clipped to (MIN_RELIABILITY, 1]; 1 when new) and its outline bias
    against gold truth in px (None where not known yet)."""
    ids = list(annotator_ids)
    rows = {r.annotator_id: estimates(r) for r in
            AnnotatorReliability.objects.filter(project=project, annotator_id__in=ids)}
    weights, biases = {}, {}
    for uid in ids:
        e = rows.get(uid, {})
        q = e.get("quality")
        weights[uid] = 1.0 if q is None else min(1.0, max(MIN_RELIABILITY, q))
        biases[uid] = e.get("gold_boundary_bias")
    return weights, biases


def reliability_weights(*, project: Project, annotator_ids: Iterable[int]) -> dict[int, float]:
    """Consensus weight per annotator: its quality, clipped to (MIN_RELIABILITY, 1]; 1 when new."""
    return reliability_priors(project=project, annotator_ids=annotator_ids)[0]


def _scores(run_id: int) -> list[dict]:
    return list(QaRunAnnotation.objects.filter(qa_run_id=run_id).values("annotator_id", *_STAT_FIELDS))


def _history(project: Project, rows: Iterable[AnnotatorReliability], run: QaRun | None) -> None:
    AnnotatorReliabilityPoint.objects.bulk_create([
        AnnotatorReliabilityPoint(
            project=project, annotator_id=row.annotator_id, qa_run=run,
            **{k: v for k, v in estimates(row).items()
               if k in ("quality", "sensitivity", "false_positive_rate", "boundary_bias", "gold_score",
                        "n_annotations")},
        )
        for row in rows
    ])


@transaction.atomic
def reliability_apply_run(*, qa_run: QaRun) -> list[AnnotatorReliability]:
    """Count ``qa_run`` for its image instead of the image's previously counted run.

    Precondition: ``qa_run`` is the image's newest run. Touches only the annotators of
    the two runs and appends one history point per annotator touched.
    """
    image = qa_run.image
    project = image.project
    state, _ = ImageQaState.objects.select_for_update().get_or_create(image=image, defaults={"project": project})
    if state.counted_run_id is not None and state.counted_run_id >= qa_run.pk:
        return []  # already counted, or a newer run of the image is (two workers raced)
    old = _scores(state.counted_run_id) if state.counted_run_id else []
    new = _scores(qa_run.pk)
    ids = sorted({s["annotator_id"] for s in old + new})
    rows = {r.annotator_id: r for r in AnnotatorReliability.objects.select_for_update().filter(
        project=project, annotator_id__in=ids)}
    for uid in ids:
        if uid not in rows:
            rows[uid] = AnnotatorReliability.objects.create(
                project=project, annotator_id=uid, time_histogram=_empty_hist()
            )
    for s in old:
        _add(rows[s["annotator_id"]], s, -1)
    for s in new:
        _add(rows[s["annotator_id"]], s, +1)
    for row in rows.values():
        row.save()
    state.counted_run = qa_run
    state.save(update_fields=["counted_run", "updated_at"])
    _history(project, rows.values(), qa_run)
    return list(rows.values())


@transaction.atomic
def reliability_recompute(*, project: Project) -> dict:
    """Rebuild every annotator's statistics from the latest QA run of each image."""
    states = ImageQaState.objects.filter(project=project, latest_run__isnull=False)
    run_ids = list(states.values_list("latest_run_id", flat=True))
    rows: dict[int, AnnotatorReliability] = {}
    for start in range(0, len(run_ids), 2000):
        chunk = run_ids[start:start + 2000]
        for s in QaRunAnnotation.objects.filter(qa_run_id__in=chunk).values("annotator_id", *_STAT_FIELDS).iterator():
            row = rows.get(s["annotator_id"])
            if row is None:
                row = rows[s["annotator_id"]] = AnnotatorReliability(
                    project=project, annotator_id=s["annotator_id"], time_histogram=_empty_hist()
                )
            _add(row, s, +1)
    AnnotatorReliability.objects.filter(project=project).delete()
    AnnotatorReliability.objects.bulk_create(list(rows.values()))
    # counted_run follows latest_run for every image, in one UPDATE.
    states.update(counted_run_id=F("latest_run_id"))
    _history(project, rows.values(), None)
    return {"images": len(run_ids), "annotators": len(rows)}
