"""Seeded simulator of microscopy images, ground truth and erring annotators.

Pure numpy/scipy/scikit-image; no Django. Everything takes a ``seed`` (int or
``numpy.random.Generator``) and is deterministic for a given integer seed.

- :func:`simulate_image` -> :class:`SimulatedImage` (uint16 image, uint16 GT labels,
  uint16 debris labels rendered in the image but not in the GT, per-cell contrast).
- :class:`AnnotatorProfile`, presets ``EXPERT``, ``GOOD``, ``AVERAGE``,
  ``AVERAGE_DILATING``, ``CARELESS``, ``PERFECT`` and :func:`annotator_panel`.
- :func:`simulate_annotation` -> :class:`SimulatedAnnotation` (labels plus the
  :class:`InjectedError` rows that say exactly which errors were injected).
- :func:`simulate_dataset` -> list of :class:`SimulatedSample` ``(image, annotations)``.
"""

from .annotators import SimulatedAnnotation, simulate_annotation, touching_pairs
from .dataset import SimulatedSample, simulate_dataset
from .images import MODALITIES, SimulatedImage, simulate_image
from .profiles import (
    AVERAGE,
    AVERAGE_DILATING,
    CARELESS,
    CORRUPTION_MODES,
    ERROR_KINDS,
    EXPERT,
    GOOD,
    PERFECT,
    AnnotatorProfile,
    InjectedError,
    annotator_panel,
)

__all__ = [
    "AVERAGE",
    "AVERAGE_DILATING",
    "CARELESS",
    "CORRUPTION_MODES",
    "ERROR_KINDS",
    "EXPERT",
    "GOOD",
    "MODALITIES",
    "PERFECT",
    "AnnotatorProfile",
    "InjectedError",
    "SimulatedAnnotation",
    "SimulatedImage",
    "SimulatedSample",
    "annotator_panel",
    "simulate_annotation",
    "simulate_dataset",
    "simulate_image",
    "touching_pairs",
]
