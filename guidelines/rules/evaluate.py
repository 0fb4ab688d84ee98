"""Evaluate a guideline's rules on a label image into violations an annotator can act on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from guidelines.rules.measure import CellMeasures, require_label_image
from guidelines.rules.spec import validate_rules

#: Cell ids named in a message before "and N more".
_NAMED = 10
_UNIT_TEXT = {"px": "px", "um2": "µm²"}


@dataclass(frozen=True)
class Violation:
    """One rule broken by a mask.

    Attributes
    ----------
    rule : str
        Rule name, one of :data:`guidelines.rules.RULE_NAMES`.
    severity : str
        ``"blocking"`` (the submission is refused) or ``"warning"``.
    cells : tuple of int
        Ids of the offending cells, ascending; empty for an image-level rule.
    message : str
        What is wrong and what to do, in the annotator's words.
    measured : tuple of float
        The measured value per cell, aligned with ``cells`` (area in the rule's unit,
        holes, pieces, solidity); one value for an image-level rule; empty where the
        rule measures nothing numeric.
    limit : float or None
        The guideline's limit the measure was compared with.
    unit : str
        Unit of ``measured`` and ``limit`` (``px``, ``um2``, ``cells``, ...), or ``""``.
    """

    rule: str
    severity: str
    cells: tuple[int, ...]
    message: str
    measured: tuple[float, ...] = ()
    limit: float | None = None
    unit: str = ""

    @property
    def blocking(self) -> bool:
        return self.severity == "blocking"

    def as_dict(self) -> dict:
        """A JSON-ready dict (what is stored with annotations and returned by the API)."""
        return {
            "rule": self.rule, "severity": self.severity, "cells": list(self.cells),
            "message": self.message, "measured": list(self.measured), "limit": self.limit,
            "unit": self.unit,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Violation:
        """The inverse of :meth:`as_dict`."""
        return cls(
            rule=data["rule"], severity=data["severity"],
            cells=tuple(int(c) for c in data.get("cells", ())), message=data["message"],
            measured=tuple(data.get("measured", ())), limit=data.get("limit"),
            unit=data.get("unit", ""),
        )


def _cells_text(cells: list[int]) -> str:
    shown = ", ".join(str(c) for c in cells[:_NAMED])
    more = f" and {len(cells) - _NAMED} more" if len(cells) > _NAMED else ""
    return f"cell {shown}" if len(cells) == 1 else f"cells {shown}{more}"


def _with_values(cells: list[int], values: list[str]) -> str:
    pairs = [f"{c} ({v})" for c, v in zip(cells[:_NAMED], values[:_NAMED], strict=False)]
    more = f" and {len(cells) - _NAMED} more" if len(cells) > _NAMED else ""
    return ("cell " if len(cells) == 1 else "cells ") + ", ".join(pairs) + more


def _fmt(x: float) -> str:
    """A measure as people write it: 12, 2.25, 0.75, 1234.5 -> 1234.5, 0.0123 -> 0.0123."""
    if float(x).is_integer():
        return str(int(x))
    if abs(x) >= 1:
        return f"{x:.2f}".rstrip("0").rstrip(".")
    return f"{x:.3g}"


def _noted(message: str, params: Mapping) -> str:
    return f"{message} Guideline note: {params['note']}" if "note" in params else message


def _violation(rule: str, params: Mapping, cells, message: str, **extra) -> Violation:
    return Violation(rule=rule, severity=params["severity"], cells=tuple(int(c) for c in cells),
                     message=_noted(message, params), **extra)


def _area_rule(rule: str, params: Mapping, measures: CellMeasures,
               pixel_size_um: float | None) -> Violation | None:
    unit = params["unit"]
    if unit == "um2":
        if pixel_size_um is None:
            return Violation(
                rule=rule, severity="warning", cells=(),
                message=f"Not checked: the {rule.replace('_', ' ')} of this guideline is in µm² "
                "but the image has no pixel size.",
            )
        areas = measures.areas * pixel_size_um**2
    else:
        areas = measures.areas.astype(np.float64)
    limit = params["value"]
    bad = areas < limit if rule == "min_area" else areas > limit
    if not bad.any():
        return None
    cells, values = measures.ids[bad].tolist(), areas[bad].tolist()
    shown = _UNIT_TEXT[unit]
    word = "smaller than the minimum" if rule == "min_area" else "larger than the maximum"
    advice = ("Remove debris or redraw the cell completely." if rule == "min_area"
              else "Check for merged cells and split them.")
    count = "1 cell is" if len(cells) == 1 else f"{len(cells)} cells are"
    message = (f"{count} {word} of {_fmt(limit)} {shown}: "
               f"{_with_values(cells, [f'{_fmt(v)} {shown}' for v in values])}. {advice}")
    return _violation(rule, params, cells, message, measured=tuple(values), limit=limit, unit=unit)


def _count_rule(rule: str, params: Mapping, ids: np.ndarray, counts: np.ndarray, *,
                what: str, advice: str) -> Violation | None:
    limit = params["value"]
    bad = counts > limit
    if not bad.any():
        return None
    cells, values = ids[bad].tolist(), counts[bad].tolist()
    count = "1 cell has" if len(cells) == 1 else f"{len(cells)} cells have"
    message = (f"{count} more than {limit} {what}{'' if limit == 1 else 's'}: "
               f"{_with_values(cells, [str(v) for v in values])}. {advice}")
    return _violation(rule, params, cells, message, measured=tuple(float(v) for v in values),
                      limit=limit, unit=what + "s")


def _max_instances(params, measures, _pixel, _classes) -> Violation | None:
    limit, n = params["value"], len(measures)
    if n <= limit:
        return None
    return _violation(
        "max_instances", params, (),
        f"The mask has {n} cells; this guideline allows at most {limit} per image. "
        "Check for debris or cells split into fragments.",
        measured=(float(n),), limit=limit, unit="cells",
    )


def _min_area(params, measures, pixel, _classes):
    return _area_rule("min_area", params, measures, pixel)


def _max_area(params, measures, pixel, _classes):
    return _area_rule("max_area", params, measures, pixel)


def _max_pieces(params, measures, _pixel, _classes):
    return _count_rule(
        "max_pieces", params, measures.ids, measures.pieces, what="piece",
        advice="Each cell must be one connected region (pixels touching only at a corner do "
        "not connect): join the pieces or give each its own id.",
    )


def _max_holes(params, measures, _pixel, _classes):
    return _count_rule(
        "max_holes", params, measures.ids, measures.holes, what="hole",
        advice="Fill the holes inside these cells.",
    )


def _min_solidity(params, measures, _pixel, _classes):
    limit = params["value"]
    bad = measures.solidity < limit - 1e-12
    if not bad.any():
        return None
    cells, values = measures.ids[bad].tolist(), measures.solidity[bad].tolist()
    count = "1 cell is" if len(cells) == 1 else f"{len(cells)} cells are"
    message = (f"{count} less convex than the minimum solidity of {limit:.2f}: "
               f"{_with_values(cells, [f'{v:.2f}' for v in values])}. A ragged or "
               "concave outline often means two cells drawn as one: split them or smooth "
               "the outline.")
    return _violation("min_solidity", params, cells, message, measured=tuple(values),
                      limit=limit, unit="solidity")


def _border(params, measures, _pixel, _classes):
    if params["allowed"]:
        return None
    touching = [(int(i), e) for i, e in zip(measures.ids, measures.border_edges, strict=True) if e]
    if not touching:
        return None
    cells = [i for i, _ in touching]
    edges = sorted({e for _, es in touching for e in es},
                   key=["top", "bottom", "left", "right"].index)
    count = "1 cell touches" if len(cells) == 1 else f"{len(cells)} cells touch"
    message = (f"{count} the image border ({', '.join(edges)} edge"
               f"{'' if len(edges) == 1 else 's'}), which this guideline does not allow: "
               f"{_cells_text(cells)}. Remove cells cut by the border.")
    return _violation("border", params, cells, message)


def _required_classes(params, measures, _pixel, classes: Mapping[int, str] | None):
    classes = classes or {}
    allowed = params["classes"]
    missing = [int(i) for i in measures.ids if not classes.get(int(i))]
    wrong = [int(i) for i in measures.ids if classes.get(int(i)) and allowed
             and classes[int(i)] not in allowed]
    if not missing and not wrong:
        return None
    choice = f" one of {', '.join(allowed)}" if allowed else " a class"
    parts = []
    if missing:
        parts.append(f"{_cells_text(missing)} {'has' if len(missing) == 1 else 'have'} no class")
    if wrong:
        names = sorted({classes[i] for i in wrong})
        parts.append(f"{_cells_text(wrong)} {'has' if len(wrong) == 1 else 'have'} class "
                     f"{', '.join(names)}")
    message = f"{'; '.join(parts)}. Give every cell{choice}."
    return _violation("required_classes", params, sorted(missing + wrong), message)


_EVALUATORS = {
    "max_instances": _max_instances, "min_area": _min_area, "max_area": _max_area,
    "max_pieces": _max_pieces, "max_holes": _max_holes, "min_solidity": _min_solidity,
    "border": _border, "required_classes": _required_classes,
}


def evaluate_rules(labels: np.ndarray, rules: Mapping, *, pixel_size_um: float | None = None,
                   cell_classes: Mapping[int, str] | None = None) -> list[Violation]:
    """Check a label image against a guideline's rules.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image; 0 is background, ids need not be contiguous.
    rules : mapping
        The rules JSON (validated here with :func:`~guidelines.rules.validate_rules`,
        so raw, legacy or normalised rules are all accepted).
    pixel_size_um : float, optional
        Edge length of one pixel in µm; needed by area rules in ``um2`` (without it such
        a rule yields a "not checked" warning). For anisotropic pixels pass
        ``sqrt(size_y * size_x)``, which gives the exact pixel area.
    cell_classes : mapping of int to str, optional
        Class of each classified cell id; cells absent from it are unclassified.

    Returns
    -------
    list of Violation
        At most one per rule, in :data:`~guidelines.rules.RULE_NAMES` order; each names
        all offending cells ascending. Empty when the mask follows every rule (and always
        for an all-background image, except ``required_classes`` which has nothing to
        check either).

    Raises
    ------
    RulesError
        The rules are not valid (the error names the rule).
    ValueError
        ``labels`` is not a 2-D non-negative integer array, or ``pixel_size_um`` is not a
        positive finite number.

    Notes
    -----
    Pieces are 4-connected regions of one id; holes are 8-connected regions of other
    pixels that a cell encloses (the dual connectivity, so each closed ring has exactly
    one hole). Solidity is area / area of the convex hull of the cell's pixel squares.
    A cell touches the border when any of its pixels lies in the first or last row or
    column. Areas in µm² are pixel counts times ``pixel_size_um**2``.
    """
    labels = require_label_image(labels)
    normalised = validate_rules(rules)
    if pixel_size_um is not None and (
        isinstance(pixel_size_um, bool) or not isinstance(pixel_size_um, int | float)
        or not math.isfinite(pixel_size_um) or pixel_size_um <= 0
    ):
        raise ValueError(f"pixel_size_um must be a positive number of µm, got {pixel_size_um!r}")
    if not normalised:
        return []
    measures = CellMeasures(labels)
    out = []
    for name, params in normalised.items():
        found = _EVALUATORS[name](params, measures, pixel_size_um, cell_classes)
        if found is not None:
            out.append(found)
    return out
