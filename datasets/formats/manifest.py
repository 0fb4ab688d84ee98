"""Canonical JSON and content hashes of snapshot manifests.

A snapshot's content hash must depend on its content only: the same items, splits,
selection and provenance give the same hash whatever order the database returned the
rows in and whenever the snapshot was made. Rows are therefore serialised canonically
(sorted keys, no whitespace, no NaN) and hashed as a sorted multiset.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["canonical_json", "content_hash", "sha256_bytes"]


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value!r} has no canonical JSON form; use null")
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: key {k!r} is not a string")
            _check_finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no whitespace; NaN and infinities are refused."""
    _check_finite(value, "value")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def content_hash(header: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]) -> str:
    """The sha256 of a manifest: its header plus its rows in any order.

    Parameters
    ----------
    header : mapping
        What applies to the whole snapshot (selection, split options, policy version).
    rows : iterable of mapping
        One JSON-able mapping per item.

    Returns
    -------
    str
        64 hex digits. Reordering ``rows`` or their keys does not change it; any change
        of a value does. Identical rows count as often as they occur.
    """
    encoded = sorted(canonical_json(dict(r)) for r in rows)
    digest = hashlib.sha256()
    digest.update(b"cellcurate-snapshot-v1\n")
    digest.update(canonical_json(dict(header)))
    digest.update(b"\n")
    for row in encoded:
        digest.update(len(row).to_bytes(8, "big"))
        digest.update(row)
    return digest.hexdigest()
