"""Assist latency on a 1024 x 1024 image: SAM decoder only (embedding cached) and the classical fallback.

    .venv/bin/python bench/assist_bench.py [--model vit_b|tiny] [--repeats 20]

The SAM model is randomly initialised (no weights can be downloaded); its size and
compute are those of the real architecture, which is what latency depends on. The
embedding is computed once (timed separately, as the cached-per-image cost) and then
each prompt runs :func:`training.services.assist.sam_segment`, the service's decoder-only
path, exactly as the assist endpoint does after the first request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="vit_b", choices=("vit_b", "tiny"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import torch

    from training.assist import segment_in_box
    from training.backbones.sam_model import arch_of, build, embed
    from training.services.assist import sam_segment

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:1024, :1024]
    cell = (yy - 500) ** 2 + (xx - 520) ** 2 <= 30 ** 2
    image = np.clip(300 + 2500 * cell + rng.normal(0, 40, cell.shape), 0, 65535).astype(np.uint16)
    box = (480, 460, 560, 540)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, image 1024x1024 uint16")

    t = time.perf_counter()
    sam = build(arch_of(args.model), seed=0, device=torch.device("cpu")).eval()
    print(f"SAM {args.model} (random init) built in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    embedding = embed(sam, [image], None, torch.device("cpu"))[0]
    print(f"embedding (once per image and model, then cached): {time.perf_counter() - t:.2f} s")
    sam_segment(sam, embedding, box=box)  # warm-up
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        sam_segment(sam, embedding, box=box)
        times.append((time.perf_counter() - t) * 1000)
    decoder = statistics.median(times)
    print(f"SAM decoder only, box prompt: median {decoder:.1f} ms, "
          f"max {max(times):.1f} ms over {args.repeats} (target <= 150 ms)")
    # Reference in the same process: how fast this CPU is right now (shared machines vary).
    a = torch.randn(1024, 1024)
    ref = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        a @ a
        ref.append((time.perf_counter() - t) * 1000)
    mm = statistics.median(ref)
    print(f"reference 1024^3 float32 matmul: median {mm:.1f} ms ({2 * 1024 ** 3 / mm / 1e6:.1f} GFLOP/s); "
          f"decoder = {decoder / mm:.1f} x reference")
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        segment_in_box(image, box)
        times.append((time.perf_counter() - t) * 1000)
    print(f"classical fallback (otsu + watershed in the box): median {statistics.median(times):.1f} ms, "
          f"max {max(times):.1f} ms")


if __name__ == "__main__":
    main()
