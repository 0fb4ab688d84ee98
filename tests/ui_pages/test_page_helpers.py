"""The pure helpers behind the guideline diff and the model evaluation tables, on hand-made inputs."""

import numpy as np
import pytest

from datasets.model_views import evaluation_tables
from guidelines.views import line_diff
from training.evaluate import evaluate


def test_line_diff_pairs_changed_lines_side_by_side():
    rows = line_diff(["a", "b", "c"], ["a", "B", "c", "d"])
    assert [(r["op"], r["a_no"], r["a"], r["b_no"], r["b"]) for r in rows] == [
        ("equal", 1, "a", 1, "a"),
        ("replace", 2, "b", 2, "B"),
        ("equal", 3, "c", 3, "c"),
        ("insert", None, "", 4, "d"),
    ]
    assert [r["op"] for r in line_diff(["x", "y"], [])] == ["delete", "delete"]
    assert line_diff([], []) == []


def test_evaluation_tables_lay_out_an_evaluation():
    truth = np.zeros((8, 8), dtype=np.int32)
    truth[:4, :4], truth[4:, 4:] = 1, 2
    pred = truth.copy()
    pred[pred == 2] = 0  # one of two cells found
    metrics = evaluate([truth, truth], [truth, pred], names=["good", "half"], thresholds=[0.5, 0.9])
    metrics["split"] = "test"
    tables = evaluation_tables(metrics)
    assert [r["threshold"] for r in tables["per_threshold"]] == [0.5, 0.9]
    assert tables["per_threshold"][0]["tp"] == 3 and tables["per_threshold"][0]["fn"] == 1
    assert tables["model"][1] == pytest.approx(3 / 4)  # AP@0.50 = TP / (TP + FP + FN)
    assert [r["image"] for r in tables["images"]] == ["half", "good"]  # worst first
    assert tables["base"] is None and tables["groups"] == []
    assert evaluation_tables({}) is None
