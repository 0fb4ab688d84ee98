"""Content hashing, datasheets, diffs and the streamed zip (pure parts)."""

import io
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from datasets.diff import diff_rows
from datasets.formats.datasheet import datasheet_build, datasheet_markdown
from datasets.formats.manifest import canonical_json, content_hash
from datasets.formats.zipstream import ZipEntry, stream_zip

REPO_ROOT = Path(__file__).resolve().parents[2]


def _row(sha, *, mask="m1", split="train", ignore=(), classes=None, review=None, policy=1, rev=1,
         gold=False):
    return {
        "image": {"id": int(sha[-1], 16), "sha256": sha, "original_name": f"{sha}.png", "is_gold": gold},
        "mask": {"sha256": mask, "n_cells": 4, "source": "consensus"},
        "split": split,
        "group": "plate:P1",
        "ignore_cells": list(ignore),
        "cell_classes": classes or {},
        "provenance": {
            "policy_version": policy,
            "annotations": [{"id": 10 + rev, "assignment": 7, "revision": rev, "annotator": "ann",
                             "guideline_version": 2}],
            "qa_run": {"id": 5 + rev, "algorithm_version": "qa-1", "params": {}, "mean_agreement": 0.8},
            "decision": review or {"kind": "gate", "id": 3, "outcome": "approve"},
        },
    }


def test_hash_ignores_row_and_key_order_but_not_values():
    rows = [_row(f"a{i:x}") for i in range(10)]
    h = content_hash({"policy": 1}, rows)
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    reordered = [dict(reversed(list(r.items()))) for r in shuffled]
    assert content_hash({"policy": 1}, reordered) == h
    assert content_hash({"policy": 2}, rows) != h
    rows[3] = _row("a3", mask="m2")
    assert content_hash({"policy": 1}, rows) != h


def test_hash_counts_duplicate_rows_and_refuses_nan():
    r = _row("a1")
    assert content_hash({}, [r]) != content_hash({}, [r, r])
    with pytest.raises(ValueError, match="canonical JSON"):
        canonical_json({"x": float("nan")})


def test_diff_names_added_removed_changed_and_why():
    a = [_row("a1"), _row("a2"), _row("a3"), _row("a4")]
    b = [
        _row("a1"),  # unchanged
        _row("a2", mask="m9", review={"kind": "review", "id": 44, "action": "accept_edited", "by": "lead"}),
        _row("a3", mask="m7", policy=2),
        _row("a5"),  # added; a4 removed
    ]
    b[2]["provenance"]["annotations"][0]["revision"] = 2
    d = diff_rows(a, b).as_dict()
    assert d["summary"] == {"added": 1, "removed": 1, "changed": 2, "unchanged": 1}
    assert d["added"][0]["image"]["sha256"] == "a5"
    assert d["removed"][0]["image"]["sha256"] == "a4"
    by = {c["image"]["sha256"]: c for c in d["changed"]}
    assert by["a2"]["changes"] == ["mask_sha256"]
    assert by["a2"]["reasons"] == ["new review decision 44 (accept_edited by lead)"]
    assert by["a3"]["reasons"] == ["gating policy v1 -> v2", "annotation by ann: revision 1 -> 2"]
    assert by["a3"]["before"] == {"mask_sha256": "m1"} and by["a3"]["after"] == {"mask_sha256": "m7"}


def test_diff_reports_split_moves_and_ignore_changes():
    d = diff_rows([_row("a1")], [_row("a1", split="test", ignore=[2])]).as_dict()
    (c,) = d["changed"]
    assert c["changes"] == ["split", "ignore_cells"]
    assert "moved from train to test" in c["reasons"][-1]


def test_datasheet_counts_per_split_and_class_and_renders_markdown():
    rows = [
        _row("a1", classes={"1": "mitotic"}, ignore=[2]),
        _row("a2", split="test", gold=True),
        _row("a3", review={"kind": "review", "id": 9, "action": "accept_consensus", "by": "lead"}),
    ]
    sheet = datasheet_build(
        {"name": "nuclei", "version": 2, "licence": "CC-BY-4.0", "citation": "Doe 2026",
         "default_class": "nucleus", "leak_check": {"ok": True}, "split": {"group_by": "plate"}},
        rows,
    )
    assert sheet["splits"]["train"] == {"images": 2, "cells": 8, "ignored_cells": 1, "gold_images": 0,
                                        "classes": {"mitotic": 1, "nucleus": 7}}
    assert sheet["splits"]["val"]["images"] == 0
    assert sheet["splits"]["test"]["gold_images"] == 1
    assert sheet["classes"] == {"mitotic": 1, "nucleus": 11}
    assert sheet["agreement"]["mean"] == 0.8 and sheet["agreement"]["n"] == 3
    assert sheet["gate_outcomes"] == {"approve": 2}
    assert sheet["review_actions"] == {"accept_consensus": 1}
    assert sheet["annotators"] == [{"name": "ann", "annotations": 3}]
    assert sheet["guideline_versions"] == [2]
    md = datasheet_markdown(sheet)
    assert "| train | 2 | 8 | 1 | 0 | mitotic: 1, nucleus: 7 |" in md
    assert "Licence: CC-BY-4.0" in md and "**passed**" in md
    json.dumps(sheet)  # JSON-able


def test_stream_zip_round_trips_and_refuses_unsafe_paths():
    big = bytes(range(256)) * 4000
    entries = [ZipEntry("train/a.tif", len(big), lambda: (big[i:i + 65536] for i in range(0, len(big), 65536))),
               ZipEntry("manifest.json", 2, lambda: [b"{}"])]
    chunks = list(stream_zip(entries, root="ds-v1"))
    assert len(chunks) > 3  # streamed, not one blob
    zf = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert zf.testzip() is None
    assert zf.read("ds-v1/train/a.tif") == big
    assert zf.getinfo("ds-v1/train/a.tif").compress_type == zipfile.ZIP_STORED
    assert zf.getinfo("ds-v1/manifest.json").compress_type == zipfile.ZIP_DEFLATED
    with pytest.raises(ValueError, match="unsafe path"):
        list(stream_zip([ZipEntry("../x", 1, lambda: [b"x"])]))
    with pytest.raises(ValueError, match="expected 5"):
        list(stream_zip([ZipEntry("x", 5, lambda: [b"x"])]))


@pytest.mark.parametrize("module", ["datasets.splits", "datasets.diff", "datasets.enums",
                                    "datasets.formats.manifest", "datasets.formats.cellpose",
                                    "datasets.formats.coco", "datasets.formats.ome_tiff",
                                    "datasets.formats.ome_zarr", "datasets.formats.datasheet",
                                    "datasets.formats.zipstream"])
def test_pure_modules_never_import_django(module):
    code = (f"import importlib, sys; importlib.import_module({module!r}); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'rest_framework', 'celery'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)})
    assert out.stdout.strip().splitlines()[-1] == "[]"
