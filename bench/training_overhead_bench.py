"""Service overhead of a training run vs ``training.backbones`` alone, on the same snapshot.

    .venv/bin/python bench/training_overhead_bench.py [--images 12] [--epochs 20] [--repeats 3]

Builds a throw-away project with approved masks and a snapshot (in-memory SQLite, a
temporary media folder), then times, alternately:

* **service**: ``run_create`` + the ``training.run_execute`` task (eager): claim, load the
  split from storage with sha256 checks, train with per-epoch progress rows, checkpoint
  uploads every ``save_every`` epochs and the heartbeat, register the model (weights
  upload). Evaluation is switched off (no val/test split) because the baseline has none.
* **backbone**: ``training.backbones.cellpose.fine_tune`` on the same arrays, already in
  memory, with the same configuration and a local checkpoint folder.

Prints the median of each and the overhead ratio (target: within 5 %).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default); 1 resists a shared CPU's oversubscription")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    media = tempfile.mkdtemp(prefix="cellcurate-bench-media-")
    with override_settings(MEDIA_ROOT=media, TRAINING_DEVICE="cpu"):
        run(args)


def run(args) -> None:
    from tests.datasets.conftest import build_world
    from tests.datasets.helpers import make_snapshot
    from training.backbones import cellpose as cp
    from training.backbones.base import TrainConfig
    from training.models import TrainingRun
    from training.services import RunSpec, run_create
    from training.services.data import split_load

    world = build_world(args.images, slug="bench")
    snapshot = make_snapshot(world, name="bench", fractions=(1.0, 0.0, 0.0))
    hyper = {"epochs": args.epochs, "learning_rate": 0.02, "batch_size": 4, "tile_size": 64, "seed": 1,
             "save_every": 5, "warmup_epochs": 0, "images_per_epoch": 16}
    options = {"nbase": [8, 16, 32], "min_train_masks": 1, "diam_mean": 12.0}
    train = split_load(snapshot=snapshot, split="train")
    import torch

    print(f"torch threads {torch.get_num_threads()}; snapshot: {len(train)} train images of {train.images[0].shape}, {args.epochs} epochs, "
          f"{hyper['images_per_epoch']} images/epoch, checkpoint every {hyper['save_every']}")
    service, backbone = [], []
    for i in range(args.repeats):
        t = time.perf_counter()
        created = run_create(actor=world.users["ml_engineer"], project=world.project,
                             spec=RunSpec(name=f"bench-{i}", snapshot_id=snapshot.pk, hyperparameters=hyper,
                                          options=options, val_split="", test_split=""))
        service.append(time.perf_counter() - t)
        done = TrainingRun.objects.get(pk=created.pk)
        assert done.status == "succeeded", done.error
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            cp.fine_tune(train.images, train.labels, config=TrainConfig(**hyper, device="cpu"),
                         options=cp.CellposeOptions(nbase=(8, 16, 32), min_train_masks=1, diam_mean=12.0),
                         checkpoint_dir=out)
        backbone.append(time.perf_counter() - t)
        print(f"  repeat {i + 1}: service {service[-1]:.2f} s, backbone alone {backbone[-1]:.2f} s")
    s, b = statistics.median(service), statistics.median(backbone)
    print(f"median: service {s:.2f} s, backbone alone {b:.2f} s, overhead {100 * (s / b - 1):+.1f} % "
          "(target within 5 %)")


if __name__ == "__main__":
    main()
