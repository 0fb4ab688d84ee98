"""Group-aware splits: no group in two splits, seeded, stratified, edge cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datasets.splits import check_fractions, check_leaks, split_items


def test_groups_never_cross_splits_and_sizes_follow_fractions():
    groups = [f"plate{i // 4}" for i in range(80)]  # 20 plates of 4 images
    plan = split_items(groups, fractions=(0.8, 0.1, 0.1), seed=3)
    report = check_leaks(plan.splits, groups)
    assert report.ok and report.leaked_groups == ()
    assert report.groups_per_split == {"train": 16, "val": 2, "test": 2}
    assert plan.counts() == {"train": 64, "val": 8, "test": 8}
    assert plan.method == "GroupShuffleSplit"


def test_same_seed_same_split_other_seed_other_split():
    groups = [f"g{i % 30}" for i in range(90)]
    a = split_items(groups, seed=1)
    assert split_items(groups, seed=1).splits == a.splits
    assert split_items(groups, seed=2).splits != a.splits


def test_split_of_a_group_does_not_depend_on_row_order():
    groups = [f"g{i % 12}" for i in range(48)]
    plan = split_items(groups, seed=5)
    by_group = dict(zip(groups, plan.splits, strict=True))
    order = np.random.default_rng(0).permutation(48)
    shuffled = [groups[i] for i in order]
    plan2 = split_items(shuffled, seed=5)
    assert dict(zip(shuffled, plan2.splits, strict=True)) == by_group


def test_stratified_split_keeps_each_stratum_in_every_split():
    groups, strata = [], []
    for plate in range(40):
        modality = "fluorescence" if plate % 2 else "brightfield"
        for _ in range(3):
            groups.append(f"p{plate}")
            strata.append(modality)
    plan = split_items(groups, strata=strata, fractions=(0.6, 0.2, 0.2), seed=0)
    assert plan.method == "StratifiedGroupKFold"
    assert check_leaks(plan.splits, groups).ok
    for split in ("train", "val", "test"):
        kinds = {m for s, m in zip(plan.splits, strata, strict=True) if s == split}
        assert kinds == {"fluorescence", "brightfield"}, split
    assert plan.counts() == {"train": 72, "val": 24, "test": 24}


def test_impossible_stratification_falls_back_to_groups_and_says_so():
    plan = split_items(["g0", "g1"], strata=["a", "b"], seed=0)  # found by hypothesis
    assert plan.method == "GroupShuffleSplit"
    assert sorted(plan.splits) == ["test", "train"]
    assert plan.warnings[0].startswith("stratification impossible")


def test_one_group_goes_to_train_with_a_warning():
    plan = split_items(["p1"] * 5, seed=0)
    assert plan.splits == ("train",) * 5
    assert "one group only" in plan.warnings[0]


def test_two_groups_fill_train_and_test_and_say_val_is_empty():
    plan = split_items(["a", "a", "b"], seed=0)
    assert sorted(set(plan.splits)) == ["test", "train"]
    assert any("val is empty" in w for w in plan.warnings)


def test_no_items_is_an_empty_plan():
    plan = split_items([], seed=0)
    assert plan.splits == () and plan.counts() == {"train": 0, "val": 0, "test": 0}


def test_zero_val_fraction_puts_no_item_in_val():
    groups = [f"g{i}" for i in range(20)]
    plan = split_items(groups, fractions=(0.75, 0.0, 0.25), seed=0)
    assert plan.counts() == {"train": 15, "val": 0, "test": 5}


@pytest.mark.parametrize("fractions, message", [
    ((0.5, 0.5), "train, val, test"),
    ((0.8, 0.3, -0.1), ">= 0"),
    ((0.8, 0.1, 0.2), "sum to 1"),
    ((0.0, 0.5, 0.5), "train fraction"),
    ((float("nan"), 0.5, 0.5), "finite"),
])
def test_bad_fractions_are_refused_with_a_reason(fractions, message):
    with pytest.raises(ValueError, match=message):
        check_fractions(fractions)


def test_empty_group_keys_and_length_mismatch_are_refused():
    with pytest.raises(ValueError, match="empty key"):
        split_items(["a", ""], seed=0)
    with pytest.raises(ValueError, match="3 entries for 2 items"):
        split_items(["a", "b"], strata=["x", "y", "z"], seed=0)


def test_leak_check_names_the_leaked_group():
    report = check_leaks(["train", "test", "train", "val"], ["p1", "p1", "p2", "p3"])
    assert not report.ok
    assert report.leaked_groups == ("p1",)
    assert report.items_per_split == {"train": 2, "val": 1, "test": 1}


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=40),
    strata_on=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
    fractions=st.sampled_from([(0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.7, 0.0, 0.3), (0.5, 0.25, 0.25)]),
)
def test_no_group_layout_leaks(sizes, strata_on, seed, fractions):
    groups = [f"g{g}" for g, n in enumerate(sizes) for _ in range(n)]
    strata = [("a" if (g * 7 + i) % 3 else "b") for g, n in enumerate(sizes) for i in range(n)] if strata_on else None
    plan = split_items(groups, strata=strata, fractions=fractions, seed=seed)
    assert len(plan.splits) == len(groups)
    assert check_leaks(plan.splits, groups).ok
    if len(sizes) >= 2:
        assert plan.counts()["train"] > 0
        assert plan.counts()["train"] < len(groups)  # something is held out
    assert split_items(groups, strata=strata, fractions=fractions, seed=seed).splits == plan.splits
