"""Per-cell shape measurements of a label image, computed only when a rule needs them.

Every measurement is a few whole-image array passes whose per-cell results are gathered
with ``np.bincount`` (or one vectorised GEOS call), never a full-image operation per
cell: a 2048 x 2048 mask with 3,000 cells is measured in a fraction of a second.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import shapely

#: Above this many possible ids the image is relabelled to 1..N first.
_DENSE_ID_LIMIT = 4_000_000
EDGES = ("top", "bottom", "left", "right")


def require_label_image(labels, name: str = "labels") -> np.ndarray:
    """``labels`` as an ndarray if it is a 2-D non-negative integer label image, else ValueError."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{name} must be a 2-D label image, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"{name} must be >= 0 (0 is background), got {labels.min()}")
    return labels


class CellMeasures:
    """Lazy measurements of the cells of one label image.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image; 0 is background, ids need not be contiguous.

    Attributes
    ----------
    ids : ndarray of int64, shape (n,)
        Cell ids present, ascending. Every other array attribute is aligned with it.
    areas : ndarray of int64, shape (n,)
        Pixel count of each cell.
    """

    def __init__(self, labels: np.ndarray):
        self.labels = labels
        top = int(labels.max()) if labels.size else 0
        if top <= _DENSE_ID_LIMIT:
            # Keys are the ids themselves (bincount and friends need no relabelling).
            key = labels if labels.dtype.kind == "u" and labels.itemsize <= 4 else labels.astype(np.int64)
            counts = np.bincount(key.ravel(), minlength=top + 1)
            self.ids = np.flatnonzero(counts[1:]).astype(np.int64) + 1
            self._keys = self.ids
        else:
            ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
            key = inverse.reshape(labels.shape).astype(np.int64)
            if ids[0] != 0:
                key += 1  # no background: ids map to 0..n-1, but keys must be 1..n
                counts = np.concatenate([[0], counts])
                ids = np.concatenate([[0], ids])
            self.ids = ids[1:].astype(np.int64)
            self._keys = np.arange(1, len(ids), dtype=np.int64)
        self._key = key
        self.areas = counts[self._keys].astype(np.int64)

    def __len__(self) -> int:
        return int(self.ids.size)

    def _per_cell(self, keys: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of ``weights`` (or a count) per cell, aligned with ``ids``; key 0 is ignored."""
        size = int(self._keys[-1]) + 1 if len(self) else 1
        return np.bincount(keys.ravel(), weights=None if weights is None else weights.ravel(),
                           minlength=size)[self._keys]

    @cached_property
    def border_edges(self) -> list[tuple[str, ...]]:
        """Image edges each cell touches, a subset of ('top', 'bottom', 'left', 'right')."""
        key = self._key
        touching = [set(np.unique(edge).tolist()) - {0}
                    for edge in (key[0], key[-1], key[:, 0], key[:, -1])]
        return [tuple(e for e, on in zip(EDGES, touching, strict=True) if k in on)
                for k in self._keys.tolist()]

    @cached_property
    def pieces(self) -> np.ndarray:
        """Number of 4-connected pieces of each cell, int64 shape (n,)."""
        from skimage.measure import label  # heavy import; only rules that need it pay

        parts, count = label(self._key, background=0, connectivity=1, return_num=True)
        owner = np.zeros(count + 1, dtype=np.int64)
        owner[parts.ravel()] = self._key.ravel()
        return self._per_cell(owner[1:]).astype(np.int64)

    @cached_property
    def euler(self) -> np.ndarray:
        """Euler number (pieces minus holes) of each cell, int64 shape (n,).

        Gray's bit-quad count for 4-connected objects, E = (Q1 - Q3 + 2 QD) / 4, done for
        every cell at once: each 2 x 2 window contributes to each id it contains, by how
        many of its four pixels carry that id.
        """
        padded = np.pad(self._key, 1)
        a, b = padded[:-1, :-1], padded[:-1, 1:]
        c, d = padded[1:, :-1], padded[1:, 1:]
        # Windows holding one id only (inside a cell or the background) contribute
        # nothing; only the few along outlines are looked at.
        edge = np.flatnonzero(((a != b) | (a != c) | (a != d)).ravel())
        a, b, c, d = (x.ravel()[edge] for x in (a, b, c, d))
        b_a, c_a, d_a, c_b, d_b, d_c = b == a, c == a, d == a, c == b, d == b, d == c
        total = np.zeros(len(self), dtype=np.int64)
        # The id at each corner counts once per window: where it first appears.
        n_a = 1 + b_a.astype(np.int8) + c_a + d_a
        w_a = (n_a == 1).astype(np.int8) - (n_a == 3) + 2 * ((n_a == 2) & d_a)
        n_b = 1 + c_b.astype(np.int8) + d_b
        w_b = ((n_b == 1).astype(np.int8) - (n_b == 3) + 2 * ((n_b == 2) & c_b)) * ~b_a
        w_c = (~c_a & ~c_b & ~d_c).astype(np.int8)
        w_d = (~d_a & ~d_b & ~d_c).astype(np.int8)
        for ids, weights in ((a, w_a), (b, w_b), (c, w_c), (d, w_d)):
            hit = (weights != 0) & (ids != 0)
            total += self._per_cell(ids[hit], weights[hit].astype(np.float64)).astype(np.int64)
        return total // 4

    @cached_property
    def holes(self) -> np.ndarray:
        """Number of holes of each cell, int64 shape (n,).

        A hole is an 8-connected region of pixels that are not the cell (background or
        another cell) and that the cell encloses; with 4-connected pieces, holes =
        pieces - Euler number.
        """
        return self.pieces - self.euler

    @cached_property
    def solidity(self) -> np.ndarray:
        """Area / convex hull area of each cell, float64 shape (n,), in (0, 1].

        The hull is that of the cell's pixel squares, so a rectangle of pixels has
        solidity exactly 1. Only the corners at the ends of each horizontal run of a
        cell can be hull vertices, so those are all that is handed to GEOS.
        """
        if not len(self):
            return np.ones(0)
        key = self._key
        height, width = key.shape
        padded = np.pad(key, ((0, 0), (1, 1)))
        rows, cols = np.nonzero(padded[:, 1:] != padded[:, :-1])  # col = x of the run edge
        starts = padded[rows, cols + 1]  # id of the run starting at x = col
        ends = padded[rows, cols]        # id of the run ending at x = col
        owner = np.concatenate([starts, ends])
        x = np.concatenate([cols, cols])
        y = np.concatenate([rows, rows])
        keep = owner != 0
        owner, x, y = owner[keep], x[keep], y[keep]
        order = np.argsort(owner, kind="stable")
        owner, x, y = owner[order], x[order], y[order]
        # Each run edge gives its top and bottom corner.
        coords = np.column_stack([np.repeat(x, 2), np.stack([y, y + 1], axis=1).ravel()])
        index = np.searchsorted(self._keys, np.repeat(owner, 2))
        # A line string through the corners has their convex hull, and GEOS builds line
        # strings from coordinate arrays far faster than multipoints from point objects.
        lines = shapely.linestrings(coords.astype(np.float64), indices=index)
        hulls = shapely.convex_hull(lines)
        return self.areas / shapely.area(hulls)
