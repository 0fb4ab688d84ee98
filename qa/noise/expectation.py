"""What is typical of each annotator, and annotations judged against it.

An annotation far below its own annotator's usual level is the signature of one badly
damaged annotation (a dropped region, invented blobs, a smeared or shifted mask), whoever
made it; an absolute quality cannot separate a careless annotator's ordinary work from an
expert's damaged work. :class:`AnnotatorExpectation` holds the typical levels and
computes ``relative_quality`` (see :func:`qa.noise.score_annotations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from qa.noise.scores import AnnotationScore

#: In ``relative_quality``, an outline drawn this many px further out (or in) than the
#: annotator usually draws it brings the factor for the outline habit to 0.
SHIFT_SCALE_PX = 4.0

#: Fields of AnnotationScore that make up ``quality`` and ``relative_quality``, in order.
PARTS = ("recall_sure", "plausible", "iou_sure", "registration", "shift_px")


@dataclass(frozen=True)
class AnnotatorExpectation:
    """What is typical of each annotator: the median of each part of ``quality`` over images.

    Made by :func:`annotator_reliability` (its ``expected``) or :meth:`from_scores`, and
    passed to :func:`score_annotations` as ``expected`` to get ``relative_quality``.
    ``k`` is the number of annotators; NaN for an annotator with no annotation.

    Attributes
    ----------
    recall_sure, plausible, iou_sure, registration, shift_px : ndarray of float64, shape (k,)
        Median of the :class:`AnnotationScore` field of the same name over the
        annotator's annotations.
    """

    recall_sure: np.ndarray
    plausible: np.ndarray
    iou_sure: np.ndarray
    registration: np.ndarray
    shift_px: np.ndarray

    @classmethod
    def from_scores(cls, scores: Sequence[Sequence[AnnotationScore | None]]) -> AnnotatorExpectation:
        """Medians over images of per-image scores.

        Parameters
        ----------
        scores : sequence of sequence of (AnnotationScore or None)
            For each image, the scores of its annotations in one annotator order (``None``
            where an annotator did not annotate the image), e.g. ``score_annotations``
            run on every image.

        Returns
        -------
        AnnotatorExpectation
        """
        if isinstance(scores, np.ndarray) or not isinstance(scores, Sequence) or not scores:
            raise TypeError("scores must be a non-empty sequence (one entry per image) of "
                            "sequences of AnnotationScore or None")
        k = len(scores[0])
        table = np.full((len(scores), k, len(PARTS)), np.nan)
        for m, row in enumerate(scores):
            if isinstance(row, np.ndarray) or not isinstance(row, Sequence) or len(row) != k:
                raise ValueError(f"scores[{m}] must be a sequence of {k} entries "
                                 "(AnnotationScore or None)")
            for j, sc in enumerate(row):
                if sc is None:
                    continue
                if not all(hasattr(sc, name) for name in PARTS):
                    raise TypeError(f"scores[{m}][{j}] must be an AnnotationScore or None, "
                                    f"got {type(sc).__name__}")
                table[m, j] = [getattr(sc, name) for name in PARTS]
        return cls.from_table(table)

    @classmethod
    def from_table(cls, table: np.ndarray) -> AnnotatorExpectation:
        """Medians over axis 0 of an (n, k, 5) table of the parts (NaN where absent)."""
        with np.errstate(all="ignore"):
            present = ~np.isnan(table)
            med = np.full(table.shape[1:], np.nan)
            for j in range(table.shape[1]):
                for c in range(table.shape[2]):
                    col = table[present[:, j, c], j, c]
                    if col.size:
                        med[j, c] = float(np.median(col))
        return cls(*(med[:, c] for c in range(len(PARTS))))

    @property
    def n_annotators(self) -> int:
        return int(self.recall_sure.shape[0])

    def subset(self, annotators: Sequence[int]) -> AnnotatorExpectation:
        """The expectation of the given annotators only, in that order."""
        idx = np.asarray(annotators, dtype=np.int64)
        return AnnotatorExpectation(*(getattr(self, name)[idx] for name in PARTS))

    def relative_quality(self, annotators: Sequence[int], parts: np.ndarray) -> np.ndarray:
        """Relative quality of the annotations of one image (see :func:`score_annotations`).

        Parameters
        ----------
        annotators : sequence of int, length a
            Which annotator (index into this expectation) made each annotation.
        parts : ndarray of float, shape (a, 5)
            ``recall_sure, plausible, iou_sure, registration, shift_px`` of each annotation.

        Returns
        -------
        ndarray of float64, shape (a,)
            In 0..1; NaN for an annotator with no expectation.

        Notes
        -----
        With ``x_c`` an annotation's rate ``c`` (recall_sure, plausible, iou_sure,
        registration), ``t_c`` its annotator's typical rate and ``l_c`` the median of
        ``x_c / t_c`` over the other annotations of the image, capped at 1 (1 when alone):
        ``prod_c min(1, (x_c / t_c) / l_c) * max(0, 1 - |shift - typical shift| / 4 px)``.
        A rate whose typical value is 0 is left out (factor 1).
        """
        idx = np.asarray(annotators, dtype=np.int64)
        value = np.asarray(parts, dtype=float).reshape(idx.size, len(PARTS))
        typical = np.stack([getattr(self, name)[idx] for name in PARTS], axis=1)
        usual = np.where(typical[:, :4] > 0, typical[:, :4], np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(np.isnan(usual), 1.0, value[:, :4] / usual)
        # A hard image lowers everyone's rates: judge each annotation against the others'
        # median ratio on this image when that is below 1 (never raise the bar above it).
        level = np.ones_like(ratio)
        for n in range(idx.size):
            others = np.delete(ratio, n, axis=0)
            if others.shape[0]:
                level[n] = np.clip(np.nanmedian(others, axis=0), 1e-6, 1.0)
        rates = np.minimum(ratio / level, 1.0)
        habit = np.clip(1.0 - np.abs(value[:, 4] - typical[:, 4]) / SHIFT_SCALE_PX, 0.0, 1.0)
        out = np.clip(np.prod(rates, axis=1) * habit, 0.0, 1.0)
        return np.where(np.isnan(typical).any(axis=1), np.nan, out)
