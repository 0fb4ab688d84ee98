"""Active-learning ranking on constructed cases: the most uncertain image comes first."""

import numpy as np
import pytest

from training.active_learning import (
    probability_entropy,
    rank_by_predicted_iou,
    rank_labelled,
    rank_unlabelled,
)


def test_entropy_of_a_confident_map_is_low_and_of_an_undecided_one_is_one_bit():
    confident = np.where(np.arange(64).reshape(8, 8) % 2, 8.0, -8.0)  # logits
    undecided = np.zeros((8, 8))  # p = 0.5 everywhere
    assert probability_entropy(undecided) == pytest.approx(1.0)
    assert probability_entropy(confident) < 0.01
    assert probability_entropy(np.full((4, 4), 0.5), logits=False) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="non-empty"):
        probability_entropy(np.zeros(5))


def test_unlabelled_ranking_puts_the_most_uncertain_first():
    rng = np.random.default_rng(0)
    maps = [np.where(rng.random((16, 16)) > 0.5, 6.0, -6.0),  # confident
            rng.normal(0, 0.3, (16, 16)),                      # undecided everywhere
            np.where(rng.random((16, 16)) > 0.5, 1.5, -1.5)]   # in between
    entropies = [probability_entropy(m) for m in maps]
    ranking = rank_unlabelled(entropies=entropies)
    assert ranking.order.tolist() == [1, 2, 0]
    # Flow error breaks a tie between equally unsure images.
    tied = rank_unlabelled(entropies=[0.5, 0.5, 0.1], flow_errors=[0.1, 0.4, 0.0])
    assert tied.order.tolist() == [1, 0, 2]
    assert tied.scores.tolist() == pytest.approx([0.75, 1.5, 0.1])


def test_sam_ranking_by_predicted_iou_and_empty_proposals_first():
    ranking = rank_by_predicted_iou([[0.95, 0.9], [0.4, 0.6], []])
    assert ranking.order.tolist() == [2, 1, 0]
    assert ranking.scores.tolist() == pytest.approx([0.075, 0.5, 1.0])


def test_labelled_ranking_by_model_consensus_disagreement():
    consensus = np.zeros((20, 20), np.uint16)
    consensus[2:8, 2:8] = 1
    consensus[12:18, 12:18] = 2
    agree = consensus.copy()
    half = consensus.copy()
    half[12:18, 12:18] = 0  # the model misses one of two cells: F1 = 2/3
    none = np.zeros_like(consensus)
    ranking = rank_labelled(model_labels=[agree, half, none], consensus_labels=[consensus] * 3)
    assert ranking.order.tolist() == [2, 1, 0]
    assert ranking.scores.tolist() == pytest.approx([0.0, 1 / 3, 1.0])
