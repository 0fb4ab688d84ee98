"""training.evaluate on hand-made label images with hand-computed scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.evaluate import evaluate, format_table

TRUTH = np.zeros((4, 6), np.uint16)
TRUTH[0:2, 0:2] = 1
TRUTH[0:2, 3:5] = 2
PRED = np.zeros((4, 6), np.uint16)
PRED[0:2, 0:2] = 7  # IoU 1 with cell 1
PRED[0:2, 3:6] = 3  # 4 px of 6: IoU 2/3 with cell 2
PRED[3, 0:2] = 9  # spurious
EMPTY = np.zeros((4, 6), np.uint16)


def test_one_image_values():
    r = evaluate([TRUTH], [PRED])
    img = r["model"]["per_image"][0]
    assert img["ap"] == pytest.approx([2 / 3] * 4 + [1 / 4] * 6)
    assert img["f1"] == pytest.approx([0.8] * 4 + [0.4] * 6)
    assert img["mean_matched_iou"] == pytest.approx((1 + 2 / 3) / 2)
    assert img["panoptic_quality"] == pytest.approx((1 + 2 / 3) / 2.5)
    assert (img["tp"][0], img["fp"][0], img["fn"][0]) == (2, 1, 0)
    assert (img["n_true"], img["n_pred"]) == (2, 3)
    assert r["base"] is None and r["delta"] is None


def test_pooled_over_images_and_base_side_by_side():
    r = evaluate([TRUTH, EMPTY], [PRED, EMPTY], base_predictions=[TRUTH, EMPTY],
                 names=["a.tif", "b.tif"])
    pooled = r["model"]["pooled"]
    assert pooled["ap"][0] == pytest.approx(2 / 3)
    assert pooled["ap"][-1] == pytest.approx(1 / 4)
    assert pooled["mean_image_ap"][0] == pytest.approx((2 / 3 + 1) / 2)  # empty pair agrees
    assert pooled["mean_matched_iou"] == pytest.approx(5 / 6)
    assert (pooled["tp"][0], pooled["fp"][0], pooled["fn"][0]) == (2, 1, 0)
    assert r["base"]["pooled"]["ap"] == [1.0] * 10
    assert r["delta"]["ap"][0] == pytest.approx(2 / 3 - 1)
    assert r["delta"]["mean_matched_iou"] == pytest.approx(5 / 6 - 1)
    assert [row["image"] for row in r["model"]["per_image"]] == ["a.tif", "b.tif"]
    assert json.loads(json.dumps(r)) == r  # ready to store


def test_nothing_true_nothing_predicted_is_perfect_and_misses_are_zero():
    r = evaluate([EMPTY], [EMPTY])
    assert r["model"]["pooled"]["ap"] == [1.0] * 10
    assert r["model"]["pooled"]["panoptic_quality"] == 1.0
    r = evaluate([TRUTH], [EMPTY])
    assert r["model"]["pooled"]["ap"] == [0.0] * 10
    assert r["model"]["pooled"]["mean_matched_iou"] == 0.0


def test_label_permutation_does_not_change_scores():
    perm = np.array([0, 5, 1, 9, 2, 3, 4, 6, 7, 8], np.uint16)
    a = evaluate([TRUTH], [PRED])["model"]["pooled"]
    b = evaluate([TRUTH], [perm[PRED]])["model"]["pooled"]
    assert a == b


def test_table_lists_model_base_and_delta():
    text = format_table(evaluate([TRUTH], [PRED], base_predictions=[TRUTH]))
    lines = text.splitlines()
    assert lines[0].startswith("| model | AP@0.50 | AP@0.75 | AP@0.90 |")
    assert lines[2].startswith("| model | 0.667 | 0.250 | 0.250 |")
    assert lines[3].startswith("| base | 1.000 | 1.000 | 1.000 |")
    assert lines[4].startswith("| delta | -0.333 | -0.750 | -0.750 |")


def test_inputs_checked():
    with pytest.raises(ValueError, match="predictions: 1 label images for 2"):
        evaluate([TRUTH, TRUTH], [PRED])
    with pytest.raises(ValueError, match="no images"):
        evaluate([], [])
    with pytest.raises(ValueError, match="image x.tif"):
        evaluate([TRUTH], [PRED[:3]], names=["x.tif"])
