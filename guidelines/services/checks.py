"""Check a label image against the rules of a guideline version (on submit and in re-checks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from annotation.models import Image
from config.errors import InvalidInput
from guidelines.models import GuidelineVersion
from guidelines.rules import Violation, evaluate_rules, pixel_size_from_metadata, usable_rules


def image_pixel_size_um(image: Image) -> float | None:
    """The image's pixel edge length in µm: its own field if it has one, else its metadata."""
    own = getattr(image, "pixel_size_um", None)
    if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
        return float(own)
    return pixel_size_from_metadata(image.metadata)


def mask_pixel_size_um(*, image: Image, import_report: Mapping | None = None) -> float | None:
    """Pixel size for area rules: the image's, else the one the mask file recorded
    (an OME-TIFF mask's physical size, kept in ``import_report["pixel_size"]``)."""
    own = image_pixel_size_um(image)
    if own is not None:
        return own
    recorded = (import_report or {}).get("pixel_size")
    return pixel_size_from_metadata({"pixel_size_um": recorded}) if recorded else None


def guideline_rules_check(
    *, guideline: GuidelineVersion, labels: np.ndarray, image: Image,
    classes: Mapping[int, str] | None = None, import_report: Mapping | None = None,
) -> list[Violation]:
    """The violations of ``guideline``'s rules by ``labels`` (a mask of ``image``).

    Rules stored before validation existed that cannot be used are reported as
    "not checked" warnings instead of stopping every submission.
    """
    rules, problems = usable_rules(guideline.rules or {})
    found = evaluate_rules(
        labels, rules, pixel_size_um=mask_pixel_size_um(image=image, import_report=import_report),
        cell_classes={int(k): v for k, v in (classes or {}).items()},
    )
    found += [
        Violation(rule=p.field, severity="warning", cells=(),
                  message=f"Not checked: guideline v{guideline.version} has a rule that "
                  f"cannot be used ({p.message}).")
        for p in problems
    ]
    return found


def violations_summary(violations: Sequence[Violation]) -> str:
    """One line per violation: ``min_area (blocking): <message>``."""
    return " ".join(f"[{v.rule}, {v.severity}] {v.message}" for v in violations)


class RuleViolationsError(InvalidInput):
    """A submission breaks blocking guideline rules (HTTP 400 listing rules and cells)."""

    code = "rule_violations"

    def __init__(self, violations: Sequence[Violation], *, guideline: GuidelineVersion):
        self.violations = list(violations)
        self.guideline_version = guideline.version
        blocking = [v for v in self.violations if v.blocking]
        super().__init__(
            f"the mask breaks {len(blocking)} blocking rule{'' if len(blocking) == 1 else 's'} "
            f"of guideline v{guideline.version}: {violations_summary(blocking)}",
            field="mask",
        )

    def as_payload(self) -> dict:
        return {
            **super().as_payload(),
            "guideline_version": self.guideline_version,
            "violations": [v.as_dict() for v in self.violations],
        }
