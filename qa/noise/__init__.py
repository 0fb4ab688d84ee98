"""Noisy-label detection for multi-annotator instance masks (pure numpy/scipy/sklearn; no Django).

Every annotation is judged *leave-one-out*: against the fused annotations of the other
annotators (:func:`qa.consensus.fuse`), never against a consensus it took part in. An
annotation that is an outlier on an image (it agrees with nobody, or most of its cells
overlap nobody's) is left out of the others' references (:mod:`qa.noise.reference`),
and the doubts of :mod:`qa.noise.doubt` keep another annotator's split, debris left out
on purpose and blobs drawn on blank background from counting as errors.

Public API
----------
- :func:`score_annotations` -> list of :class:`AnnotationScore`: F1, mean IoU, counts of
  missed, spurious, merged, split and boundary-shifted cells and one ``quality`` in 0..1
  per annotation of one image; with ``expected=`` (an :class:`AnnotatorReliability` or
  :class:`AnnotatorExpectation`) also ``relative_quality``: the annotation against its own
  annotator's typical level, the better detector of one heavily damaged annotation.
- :func:`flag_instances` -> list of :class:`InstanceFlag`: per annotator and cell, a
  :class:`FlagKind` (missed, spurious, merged, split, boundary, outlier) and a score.
  With an image it also flags, as ``missed`` for every annotator, cells the image shows
  that no annotator drew (:mod:`qa.noise.undrawn`; ``image_evidence=False`` turns it off).
- :func:`annotator_reliability` -> :class:`AnnotatorReliability`: reliability of each
  annotator over many images (EM over agreement with the evolving consensus; gold images
  with known truth where given).
- :func:`flag_model_disagreement` -> list of :class:`ModelDisagreement`: cells where a
  model's prediction and the consensus disagree.
"""

from qa.noise.disagreement import ModelDisagreement, flag_model_disagreement
from qa.noise.expectation import AnnotatorExpectation
from qa.noise.flags import FlagKind, InstanceFlag, flag_instances
from qa.noise.reliability import AnnotatorReliability, annotator_reliability
from qa.noise.scores import AnnotationScore, score_annotations

__all__ = [
    "AnnotationScore",
    "AnnotatorExpectation",
    "AnnotatorReliability",
    "FlagKind",
    "InstanceFlag",
    "ModelDisagreement",
    "annotator_reliability",
    "flag_instances",
    "flag_model_disagreement",
    "score_annotations",
]
