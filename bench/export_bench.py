"""Export throughput and memory: a 500-image snapshot of 512 x 512 uint16 images to Cellpose.

Builds a throw-away project in a temporary data folder (SQLite + local media, like the
embedded default): N uint16 TIFF images of 512 x 512 with ~120 cells each, and for each an
approved mask with the rows a gate approval leaves (policy, QA run, gate decision,
approved mask, image state; the QA maths itself is benchmarked in ``qa_run_bench.py``).
Then it snapshots them and runs the real export service (``datasets.services.export_run``:
storage reads, sha256 checks of every source file, mask decoding, atomic fsync'ed writes
through the ``exports`` storage, manifest and datasheet), and reports:

- images per second of the export (wall time) and CPU seconds, per format asked for;
- the peak of Python-tracked memory (``tracemalloc``, numpy buffers included) for a
  small and the full snapshot: flat memory means the two peaks are about the same.

Usage::

    python bench/export_bench.py [--images 500] [--small 100] [--formats cellpose]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _setup_django(data_dir: Path) -> None:
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "AWS_STORAGE_BUCKET_NAME"):
        os.environ.pop(key, None)
    os.environ["CELLCURATE_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _cells(rng, size: int, n: int):
    import numpy as np

    labels = np.zeros((size, size), dtype=np.uint16)
    side = int(np.sqrt(n)) + 1
    step = size // side
    k = 0
    for r in range(side):
        for c in range(side):
            if k >= n:
                break
            h, w = rng.integers(step // 3, step - 2, size=2)
            labels[r * step + 1 : r * step + 1 + h, c * step + 1 : c * step + 1 + w] = k + 1
            k += 1
    return labels


def build_project(n_images: int, size: int, small: int):
    """A project with ``n_images`` approved images; the first ``small`` are in batch 'small'."""
    import hashlib
    import io

    import numpy as np
    import tifffile
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile

    from annotation.enums import Role
    from annotation.models import Image, Membership, Project
    from qa.enums import ApprovedMaskSource, GateOutcome, ImageQaStatus, QaRunStatus, QaTrigger
    from qa.models import ApprovedMask, GateDecision, ImageQaState, QaRun
    from qa.services.masks import mask_encode
    from qa.services.policies import policy_current

    user = get_user_model().objects.create(username="bench-ml")
    project = Project.objects.create(name="Bench", slug="bench", cell_classes=["nucleus"])
    Membership.objects.create(user=user, project=project, role=Role.ML_ENGINEER)
    policy = policy_current(project=project)
    rng = np.random.default_rng(0)
    for i in range(n_images):
        pixels = rng.integers(0, 65535, size=(size, size), dtype=np.uint16)
        buf = io.BytesIO()
        tifffile.imwrite(buf, pixels, photometric="minisblack")
        data = buf.getvalue()
        image = Image.objects.create(
            project=project, file=ContentFile(data, name=f"img{i:04d}.tif"), original_name=f"img{i:04d}.tif",
            size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), format="tiff", width=size,
            height=size, dtype="uint16", plate=f"P{i % 20}", batch="small" if i < small else "rest",
        )
        mask = mask_encode(_cells(rng, size, 120))
        name = f"bench/approved/{i}.{mask.ext}"
        stored = ContentFile(mask.content, name=name)
        run = QaRun.objects.create(
            image=image, status=QaRunStatus.COMPLETE, trigger=QaTrigger.ON_DEMAND, algorithm_version="bench",
            consensus=stored, consensus_sha256=mask.sha256, n_cells=mask.n_cells, mean_agreement=0.9,
        )
        gate = GateDecision.objects.create(qa_run=run, image=image, policy=policy, outcome=GateOutcome.APPROVE)
        approved = ApprovedMask.objects.create(
            image=image, file=run.consensus.name, sha256=mask.sha256, height=size, width=size,
            n_cells=mask.n_cells, source=ApprovedMaskSource.CONSENSUS, qa_run=run, gate_decision=gate,
            policy=policy,
        )
        ImageQaState.objects.create(image=image, project=project, status=ImageQaStatus.APPROVED,
                                    latest_run=run, latest_gate=gate, approved_mask=approved)
    return project, user


def export_once(project, user, name: str, fmt: str, filters: dict) -> dict:
    from datasets.services import SnapshotSpec, export_request, export_run, snapshot_create

    t0 = time.perf_counter()
    snap = snapshot_create(actor=user, project=project,
                           spec=SnapshotSpec(name=name, filters=filters, group_by="plate")).snapshot
    t_snap = time.perf_counter() - t0
    export = export_request(actor=user, snapshot=snap, format=fmt, enqueue=False)
    tracemalloc.start()
    tracemalloc.reset_peak()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    outcome = export_run(export_id=export.pk)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"images": snap.n_items, "snapshot_s": t_snap, "export_s": wall, "cpu_s": cpu,
            "images_per_s": snap.n_items / wall, "peak_mib": peak / 2**20,
            "files": outcome.export.n_files, "mib_written": outcome.export.total_bytes / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--formats", default="cellpose", help="comma-separated export formats")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="cellcurate-export-bench-"))
    try:
        _setup_django(data_dir)
        t0 = time.perf_counter()
        project, user = build_project(args.images, args.size, args.small)
        print(f"setup: {args.images} images of {args.size}x{args.size} uint16 in {time.perf_counter() - t0:.1f} s")
        for fmt in args.formats.split(","):
            for label, filters in (("small", {"batch": ["small"]}), ("full", {})):
                r = export_once(project, user, f"bench-{fmt}-{label}", fmt, filters)
                print(f"{fmt:9s} {r['images']:4d} images: export {r['export_s']:6.2f} s "
                      f"= {r['images_per_s']:6.1f} images/s (CPU {r['cpu_s']:.2f} s), "
                      f"peak traced memory {r['peak_mib']:6.1f} MiB, {r['files']} files, "
                      f"{r['mib_written']:.0f} MiB; snapshot {r['snapshot_s']:.2f} s")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
