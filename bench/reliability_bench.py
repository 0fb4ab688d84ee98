"""Annotator reliability: incremental update per new image, and full recomputation.

Builds a throw-away embedded deployment (SQLite in a temporary directory, or the database
named by ``DATABASE_URL``) holding ``--images`` QA runs of 3 annotators each (rows as a
QA run writes them, scores drawn at random; no masks are needed to count them), then:

* **per new image**: :func:`qa.services.reliability_apply_run` for ``--new`` further
  runs (each a new image, every 5th a revision replacing an earlier run), median and
  95th percentile per call;
* **full recomputation**: :func:`qa.services.reliability_recompute` over all images;
* with ``--compare N``: :func:`qa.noise.annotator_reliability` (the all-in-memory EM
  over masks) on N simulated 256 x 256 images, extrapolated linearly to ``--images``.

Usage: ``.venv/bin/python bench/reliability_bench.py [--images 10000] [--new 200] [--compare 10]``.
Targets (issue 13): <= 50 ms per new image; <= 2 min for 10,000 images x 3 annotators.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=200)
    parser.add_argument("--compare", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("CELLCURATE_DATA_DIR", tempfile.mkdtemp(prefix="reliability-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction

    from annotation.models import Annotation, Assignment, Image, Project
    from guidelines.enums import GuidelineStatus
    from guidelines.models import GuidelineVersion
    from qa.models import ImageQaState, QaRun, QaRunAnnotation
    from qa.services import reliability_apply_run, reliability_recompute

    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(0)
    tag = os.getpid()
    project = Project.objects.create(name="Bench", slug=f"rel-bench-{tag}", annotators_per_image=3)
    from django.utils import timezone

    guideline = GuidelineVersion.objects.create(project=project, version=1, title="b", body="b",
                                                status=GuidelineStatus.PUBLISHED, published_at=timezone.now())
    annotators = [get_user_model().objects.create_user(f"rel{k}-{tag}") for k in range(3)]
    quality = [0.9, 0.8, 0.5]

    def make_runs(start: int, n: int) -> list[QaRun]:
        """n images with one QA run each (bulk rows, as image_qa_run stores them)."""
        now = timezone.now()
        images = Image.objects.bulk_create([
            Image(project=project, file="x.png", size_bytes=1, sha256=f"{tag:08d}{start + i:056d}",
                  format="png", width=64, height=64, dtype="uint16") for i in range(n)])
        assignments = Assignment.objects.bulk_create([
            Assignment(image=im, annotator=u, status="submitted") for im in images for u in annotators])
        annotations = Annotation.objects.bulk_create([
            Annotation(assignment=a, guideline_version=guideline, revision=1, mask="m.png", sha256="0",
                       height=64, width=64, dtype="uint16", instance_count=10, submitted_at=now,
                       created_by_id=a.annotator_id, time_spent_s=float(rng.uniform(20, 120)))
            for a in assignments])
        runs = QaRun.objects.bulk_create([
            QaRun(image=im, status="complete", trigger="submission", algorithm_version="bench",
                  consensus="c.png", consensus_sha256="0", n_cells=10) for im in images])
        QaRunAnnotation.objects.bulk_create([
            QaRunAnnotation(
                qa_run=runs[i], annotation=annotations[3 * i + k], annotator=annotators[k], revision=1,
                position=k, weight=1.0, quality=float(np.clip(rng.normal(quality[k], 0.1), 0, 1)),
                recall_sure=float(rng.uniform(0.5, 1)), plausible=float(rng.uniform(0.7, 1)),
                shift_px=float(rng.normal(0, 0.5)), time_spent_s=annotations[3 * i + k].time_spent_s,
                gold_f1=float(rng.uniform(0.6, 1)) if i % 20 == 0 else None,
                gold_quality=float(rng.uniform(0.5, 1)) if i % 20 == 0 else None,
            )
            for i in range(n) for k in range(3)])
        ImageQaState.objects.bulk_create([
            ImageQaState(image=im, project=project, latest_run=r) for im, r in zip(images, runs, strict=True)])
        return runs

    t0 = time.perf_counter()
    for start in range(0, args.images, 2000):
        with transaction.atomic():
            make_runs(start, min(2000, args.images - start))
    print(f"built {args.images} images x 3 annotators of QA rows in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    result = reliability_recompute(project=project)
    full = time.perf_counter() - t0
    print(f"full recomputation, {result['images']} images x 3 annotators: {full:.2f} s (target <= 120 s)")

    new_runs = make_runs(args.images, args.new)
    times = []
    for i, run in enumerate(new_runs):
        run = QaRun.objects.select_related("image__project").get(pk=run.pk)
        t0 = time.perf_counter()
        reliability_apply_run(qa_run=run)
        times.append(time.perf_counter() - t0)
        if i % 5 == 4:  # a revision: a second run of the same image replaces the first
            again = QaRun.objects.create(image=run.image, status="complete", trigger="revision",
                                         algorithm_version="bench", consensus="c.png", consensus_sha256="0",
                                         n_cells=10)
            for m in run.members.all():
                QaRunAnnotation.objects.create(qa_run=again, annotation_id=m.annotation_id, annotator_id=m.annotator_id,
                                               revision=1, position=m.position, weight=1.0, quality=0.5,
                                               recall_sure=0.5, plausible=0.5, shift_px=0.0)
            ImageQaState.objects.filter(image=run.image).update(latest_run=again)
            again = QaRun.objects.select_related("image__project").get(pk=again.pk)
            t0 = time.perf_counter()
            reliability_apply_run(qa_run=again)
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    print(f"incremental update per new image/revision ({len(ms)} calls, {args.images} images in the "
          f"project): median {statistics.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms (target <= 50 ms)")

    if args.compare:
        from qa.noise import annotator_reliability
        from qa.simulate import annotator_panel, simulate_annotation, simulate_image

        panel = annotator_panel(3)
        per_image = []
        for i in range(args.compare):
            sim = simulate_image(shape=(256, 256), n_cells=50, seed=i)
            per_image.append([simulate_annotation(sim, p, seed=10 * i + k).labels for k, p in enumerate(panel)])
        t0 = time.perf_counter()
        annotator_reliability(per_image)
        em = time.perf_counter() - t0
        print(f"qa.noise.annotator_reliability on {args.compare} images of 256 x 256: {em:.1f} s "
              f"(~{em / args.compare * args.images / 60:.0f} min extrapolated to {args.images} images)")


if __name__ == "__main__":
    main()
