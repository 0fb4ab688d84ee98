"""Group-aware train/val/test splits of dataset items and the leak check run on every split.

Pure (numpy + scikit-learn, never Django): the snapshot service hands in one group key
and, optionally, one stratum per item, in a stable order (sorted by image sha256), and
stores what comes back.

Why groups: images of one plate, well, batch or site share illumination, cell line state
and staining; a model tested on images from a plate it was trained on looks better than
it is. No group may therefore appear in two splits, which :func:`check_leaks` verifies.
"""

from __future__ import annotations

import math
import warnings as warnings_module
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

from datasets.enums import SPLITS, Split

__all__ = ["LeakReport", "SplitPlan", "check_fractions", "check_leaks", "split_items"]

_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SplitPlan:
    """The split of ``n`` items.

    Attributes
    ----------
    splits : tuple of str, length n
        ``'train'``, ``'val'`` or ``'test'`` per item, in input order.
    fractions : tuple of float, length 3
        The requested train, val and test fractions (of groups, not items).
    seed : int
    method : str
        ``'GroupShuffleSplit'`` or ``'StratifiedGroupKFold'``.
    warnings : tuple of str
        Why a split is smaller than asked (too few groups, ...), for people to read.
    """

    splits: tuple[str, ...]
    fractions: tuple[float, float, float]
    seed: int
    method: str
    warnings: tuple[str, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        """Items per split, every split named (zero when empty)."""
        return {s.value: self.splits.count(s.value) for s in SPLITS}


@dataclass(frozen=True)
class LeakReport:
    """What :func:`check_leaks` found.

    Attributes
    ----------
    ok : bool
        True when no group has items in two splits.
    leaked_groups : tuple of str
        Groups present in more than one split (sorted).
    groups_per_split, items_per_split : dict of str to int
        Distinct groups and items in each split.
    """

    ok: bool
    leaked_groups: tuple[str, ...]
    groups_per_split: dict[str, int]
    items_per_split: dict[str, int]

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "leaked_groups": list(self.leaked_groups),
            "groups_per_split": dict(self.groups_per_split),
            "items_per_split": dict(self.items_per_split),
        }


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate train/val/test fractions: three numbers >= 0 summing to 1, train > 0."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3:
        raise ValueError(f"fractions must be (train, val, test), got {len(values)} values")
    if any(not math.isfinite(f) or f < 0 for f in values):
        raise ValueError(f"fractions must be finite and >= 0, got {values}")
    if abs(sum(values) - 1.0) > _TOLERANCE:
        raise ValueError(f"fractions must sum to 1, got {sum(values):.6g}")
    if values[0] <= 0:
        raise ValueError("the train fraction must be > 0")
    return values  # type: ignore[return-value]


def _check_labels(values: Sequence[str], name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray([str(v) for v in values], dtype=object)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries for {n} items")
    if any(v == "" for v in arr):
        raise ValueError(f"{name} holds an empty key; give every item its own key instead")
    return arr


def split_items(
    groups: Sequence[str],
    *,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    strata: Sequence[str] | None = None,
    seed: int = 0,
) -> SplitPlan:
    """Assign each item to train, val or test so that no group is in two splits.

    Parameters
    ----------
    groups : sequence of str, length n
        Group key per item (plate, ``plate/well``, batch, ...); non-empty.
    fractions : sequence of 3 float, optional
        Train, val and test share of the *groups*; >= 0, summing to 1, train > 0.
    strata : sequence of str, length n, optional
        Stratum per item (modality, stain); with it, each split keeps the strata's
        proportions as far as whole groups allow (``StratifiedGroupKFold``).
    seed : int, optional
        Random state; the same input and seed give the same split.

    Returns
    -------
    SplitPlan

    Notes
    -----
    Without strata, ``GroupShuffleSplit`` first separates train from the held-out groups
    (``val + test`` of them, rounded up), then splits the held-out groups into val and
    test in proportion. With strata, ``StratifiedGroupKFold`` with ``K = round(1 / f)``
    folds (``f`` the smallest non-zero of val and test, at most one fold per group)
    deals groups into folds with similar stratum distributions; ``round(test * K)`` folds
    become test, ``round(val * K)`` val, the rest train. Input order does not matter
    beyond ties: scikit-learn orders groups by ``np.unique``.
    """
    train_f, val_f, test_f = check_fractions(fractions)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    group_arr = _check_labels(groups, "groups")
    n = group_arr.shape[0]
    method = "GroupShuffleSplit" if strata is None else "StratifiedGroupKFold"
    if n == 0:
        return SplitPlan((), (train_f, val_f, test_f), seed, method, ("no items to split",))
    strata_arr = None if strata is None else _check_labels(strata, "strata", n)
    unique_groups = np.unique(group_arr)
    warnings: list[str] = []
    out = np.full(n, Split.TRAIN.value, dtype=object)
    if unique_groups.size == 1:
        warnings.append("one group only: every item is in train (val and test are empty)")
    elif val_f + test_f > 0:
        if strata_arr is None:
            _shuffle_split(group_arr, out, val_f, test_f, seed, warnings)
        else:
            try:
                _stratified_split(group_arr, strata_arr, out, val_f, test_f, seed, warnings)
            except ValueError as exc:
                # Too few items per stratum for any fold layout: split by groups alone.
                warnings.append(f"stratification impossible ({exc}); split by groups only")
                method = "GroupShuffleSplit"
                out[:] = Split.TRAIN.value
                _shuffle_split(group_arr, out, val_f, test_f, seed, warnings)
    for s in (Split.VAL, Split.TEST):
        wanted = val_f if s is Split.VAL else test_f
        if wanted > 0 and not np.any(out == s.value) and unique_groups.size > 1:
            warnings.append(f"{s.value} is empty: {unique_groups.size} groups are too few")
    return SplitPlan(tuple(out.tolist()), (train_f, val_f, test_f), seed, method, tuple(warnings))


def _shuffle_split(groups, out, val_f, test_f, seed, warnings) -> None:
    holdout = val_f + test_f
    n_groups = np.unique(groups).size
    n_holdout = min(max(math.ceil(holdout * n_groups), 1), n_groups - 1)
    splitter = GroupShuffleSplit(n_splits=1, test_size=n_holdout, random_state=seed)
    _, held = next(splitter.split(np.zeros(len(groups)), groups=groups))
    if val_f == 0 or test_f == 0:
        out[held] = Split.VAL.value if test_f == 0 else Split.TEST.value
        return
    held_groups = groups[held]
    n_held_groups = np.unique(held_groups).size
    if n_held_groups == 1:
        out[held] = Split.TEST.value
        warnings.append("one held-out group only: it went to test, val is empty")
        return
    n_test = min(max(round(test_f / holdout * n_held_groups), 1), n_held_groups - 1)
    second = GroupShuffleSplit(n_splits=1, test_size=n_test, random_state=seed + 1)
    val_idx, test_idx = next(second.split(np.zeros(len(held)), groups=held_groups))
    out[held[val_idx]] = Split.VAL.value
    out[held[test_idx]] = Split.TEST.value


def _stratified_split(groups, strata, out, val_f, test_f, seed, warnings) -> None:
    n_groups = np.unique(groups).size
    smallest = min(f for f in (val_f, test_f) if f > 0)
    k = max(2, min(round(1.0 / smallest), n_groups))
    n_test = round(test_f * k) if test_f > 0 else 0
    n_val = round(val_f * k) if val_f > 0 else 0
    if test_f > 0:
        n_test = max(n_test, 1)
    if val_f > 0:
        n_val = max(n_val, 1)
    while n_test + n_val > k - 1:  # keep at least one fold for train
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    _, y = np.unique(strata, return_inverse=True)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings_module.catch_warnings(record=True) as caught:
        warnings_module.simplefilter("always")
        folds = list(splitter.split(np.zeros(len(groups)), y, groups=groups))
    # scikit-learn warns when a stratum is rarer than the folds; people should read it.
    warnings.extend(f"stratification: {w.message}" for w in caught)
    for fold, (_, idx) in enumerate(folds):
        if fold < n_test:
            out[idx] = Split.TEST.value
        elif fold < n_test + n_val:
            out[idx] = Split.VAL.value
    if k < round(1.0 / smallest):
        warnings.append(f"{n_groups} groups allow {k} folds only; split sizes are coarse")


def check_leaks(splits: Sequence[str], groups: Sequence[str]) -> LeakReport:
    """Find groups that have items in more than one split.

    Parameters
    ----------
    splits, groups : sequence of str, length n
        Split name and group key per item.

    Returns
    -------
    LeakReport
    """
    if len(splits) != len(groups):
        raise ValueError(f"{len(splits)} splits for {len(groups)} groups")
    unknown = sorted(set(splits) - {s.value for s in SPLITS})
    if unknown:
        raise ValueError(f"unknown split names {unknown}")
    seen: dict[str, set[str]] = {}
    for s, g in zip(splits, groups, strict=True):
        seen.setdefault(str(g), set()).add(str(s))
    leaked = tuple(sorted(g for g, where in seen.items() if len(where) > 1))
    groups_per_split = {
        s.value: sum(1 for where in seen.values() if s.value in where) for s in SPLITS
    }
    items_per_split = {s.value: list(splits).count(s.value) for s in SPLITS}
    return LeakReport(not leaked, leaked, groups_per_split, items_per_split)
