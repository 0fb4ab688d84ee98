"""One QA run of a 1024 x 1024 image with 3 annotations of ~300 cells, end to end.

Builds a throw-away embedded deployment (SQLite and media in a temporary directory, or
the database named by ``DATABASE_URL``), three simulated annotators' masks
(:mod:`qa.simulate`: expert, good, careless) submitted through the annotation service,
then times :func:`qa.services.image_qa_run` as the worker runs it: load the masks, fuse,
pairwise agreement, leave-one-out scores, flags, guideline rules, store the run and the
consensus file, then reliability, gate, qualification and redundancy. Reports the
median of ``--repeat`` runs and the split between the numeric core and the rest.

Usage: ``.venv/bin/python bench/qa_run_bench.py [--repeat 3] [--size 1024] [--cells 300]
[--profile]``. ``--profile`` also prints the CPU time (``time.process_time``, median of
``--repeat``) of each stage of the numeric core, and a cProfile listing of one run.
Target (issue 13): <= 1 s per run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--profile", action="store_true",
                        help="CPU time per core stage and a cProfile listing of one QA run")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="qa-run-bench-"))
    os.environ.setdefault("CELLCURATE_DATA_DIR", str(data_dir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    logging.getLogger("celery").setLevel(logging.WARNING)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from annotation.enums import Role
    from annotation.models import Assignment, Image, Membership, Project
    from annotation.services.annotations import annotation_submit_labels
    from guidelines.enums import GuidelineStatus
    from guidelines.models import Acknowledgement, GuidelineVersion
    from qa.enums import QaTrigger
    from qa.services import image_qa_run
    from qa.services.masks import mask_read
    from qa.services.qa_run import analyse, annotations_for_qa
    from qa.simulate import CARELESS, EXPERT, GOOD, simulate_annotation, simulate_image

    call_command("migrate", verbosity=0)
    users = get_user_model().objects
    # k = 4 so the three submissions do not set off a run before the timing starts.
    project = Project.objects.create(name="Bench", slug=f"qa-bench-{os.getpid()}", annotators_per_image=4)
    lead = users.create_user(f"lead-{os.getpid()}")
    Membership.objects.create(user=lead, project=project, role=Role.QA_LEAD)
    guideline = GuidelineVersion.objects.create(
        project=project, version=1, title="Bench", body="Outline every cell.",
        rules={"min_area": {"value": 20, "severity": "warning"}},
        status=GuidelineStatus.PUBLISHED, published_at=timezone.now(),
    )
    sim = simulate_image(shape=(args.size, args.size), n_cells=args.cells, seed=1)
    image = Image.objects.create(
        project=project, file="bench/none.png", size_bytes=1, sha256="0" * 64, format="png",
        width=args.size, height=args.size, dtype="uint16",
    )
    for k, profile in enumerate((EXPERT, GOOD, CARELESS)):
        user = users.create_user(f"annotator{k}-{os.getpid()}")
        Membership.objects.create(user=user, project=project, role=Role.ANNOTATOR)
        Acknowledgement.objects.create(user=user, guideline_version=guideline)
        assignment = Assignment.objects.create(image=image, annotator=user)
        annotation_submit_labels(actor=user, assignment=assignment,
                                 labels=simulate_annotation(sim, profile, seed=k).labels)
    annotations = annotations_for_qa(image=image)
    masks = [mask_read(a.mask.name) for a in annotations]
    print(f"image {args.size} x {args.size}, cells per annotation: "
          f"{[int(len(set(m.ravel().tolist())) - 1) for m in masks]}")

    totals, cores, cpu_totals, cpu_cores, cpu_shared = [], [], [], [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        analyse(masks, [1.0, 1.0, 1.0])
        cores.append(time.perf_counter() - t0)
        cpu_cores.append(time.process_time() - c0)
        c0 = time.process_time()
        _analyse_shared(masks, [1.0, 1.0, 1.0])
        cpu_shared.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        run = image_qa_run(image=image, trigger=QaTrigger.ON_DEMAND, actor=lead)
        totals.append(time.perf_counter() - t0)
        cpu_totals.append(time.process_time() - c0)
    total, core = statistics.median(totals), statistics.median(cores)
    print(f"QA run end to end: median {total:.3f} s over {args.repeat} (runs {[round(t, 3) for t in totals]}); "
          f"CPU median {statistics.median(cpu_totals):.3f} s")
    print(f"  numeric core (fuse + agreement + scores + flags): median {core:.3f} s; "
          f"CPU median {statistics.median(cpu_cores):.3f} s")
    print(f"  same core with the consensus and leave-one-out fusions sharing prepare_masks: "
          f"CPU median {statistics.median(cpu_shared):.3f} s "
          f"(ratio {statistics.median(cpu_shared) / statistics.median(cpu_cores):.2f})")
    print(f"  load, rules, store, reliability, gate, redundancy: ~{max(0.0, total - core):.3f} s")
    print(f"  consensus cells {run.n_cells}, flags {run.n_flags}, violations {run.n_violations}, "
          f"stored duration_ms {run.duration_ms}")
    print(f"target <= 1 s: {'met' if total <= 1.0 else 'NOT met'}")
    if args.profile:
        _profile(masks, args.repeat, image_qa_run, dict(image=image, trigger=QaTrigger.ON_DEMAND, actor=lead))


def _analyse_shared(masks, weights):
    """``qa.services.qa_run.analyse`` with one ``prepare_masks`` shared by the consensus and
    the leave-one-out scores (the same results; the call the service could make)."""
    import numpy as np

    from qa.consensus import fuse, prepare_masks
    from qa.metrics import match_instances, pairwise_agreement
    from qa.noise import flag_instances, score_annotations
    from qa.services.qa_run import IOU_THRESHOLD, MIN_FLAG_SCORE

    prepared = prepare_masks(masks)
    consensus = fuse(prepared, iou_threshold=IOU_THRESHOLD, weights=weights)
    pa = pairwise_agreement(masks, iou_threshold=IOU_THRESHOLD)
    pq = [match_instances(a, b, iou_threshold=IOU_THRESHOLD).panoptic_quality
          for n, a in enumerate(masks) for b in masks[n + 1:]]
    scores = score_annotations(masks, weights=weights, iou_threshold=IOU_THRESHOLD,
                               prepared=prepared)
    flags = flag_instances(masks, consensus=consensus, weights=weights,
                           iou_threshold=IOU_THRESHOLD, min_score=MIN_FLAG_SCORE, seed=0)
    return consensus, np.asarray(pa.f1), pq, scores, flags


def _profile(masks, repeat: int, run_qa, run_kwargs: dict) -> None:
    """CPU time of each stage of ``analyse`` (median of ``repeat``), then cProfile of one run."""
    import cProfile
    import pstats

    from qa.consensus import fuse
    from qa.metrics import match_instances, pairwise_agreement
    from qa.noise import flag_instances, score_annotations
    from qa.services.qa_run import IOU_THRESHOLD, MIN_FLAG_SCORE

    w = [1.0] * len(masks)
    consensus = fuse(masks, iou_threshold=IOU_THRESHOLD, weights=w)
    stages = {
        "fuse": lambda: fuse(masks, iou_threshold=IOU_THRESHOLD, weights=w),
        "pairwise agreement + PQ": lambda: (
            pairwise_agreement(masks, iou_threshold=IOU_THRESHOLD),
            [match_instances(a, b, iou_threshold=IOU_THRESHOLD)
             for n, a in enumerate(masks) for b in masks[n + 1:]],
        ),
        "score_annotations": lambda: score_annotations(masks, weights=w, iou_threshold=IOU_THRESHOLD),
        "flag_instances": lambda: flag_instances(masks, consensus=consensus, weights=w,
                                                 iou_threshold=IOU_THRESHOLD,
                                                 min_score=MIN_FLAG_SCORE, seed=0),
    }
    print("CPU time per stage (time.process_time, median of", repeat, "):")
    for name, call in stages.items():
        times = []
        for _ in range(repeat):
            c0 = time.process_time()
            call()
            times.append(time.process_time() - c0)
        print(f"  {name:<26} {statistics.median(times):.3f} s  {[round(t, 3) for t in times]}")
    profiler = cProfile.Profile()
    profiler.enable()
    run_qa(**run_kwargs)
    profiler.disable()
    print("cProfile of one QA run (cumulative; cProfile's overhead inflates every number):")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
