"""The rules JSON of a guideline version: what each rule means and how it is checked.

A guideline version carries ``rules``, a JSON object keyed by rule name. Each rule is an
object with its parameters and a ``severity`` (``"blocking"``: a submission breaking it
is refused; ``"warning"``: it is stored with the annotation and shown to the annotator
and QA). :func:`validate_rules` checks a rules object and returns it normalised (every
default spelled out), raising :class:`RulesError` naming the rule at fault.

Legacy keys written before rules were enforced (``min_area_px``, ``max_area_px``,
``max_components_per_instance``, ``allow_holes``, ``border_cells``, ``max_instances`` as
a bare number) are read as the equivalent rule with severity ``"warning"``: published
versions that carry them never change, and turning their unchecked numbers into
refusals overnight would surprise the annotators working under them.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

#: Severities a rule may have; a blocking violation refuses the submission.
SEVERITIES = ("blocking", "warning")
DEFAULT_SEVERITY = "blocking"
LEGACY_SEVERITY = "warning"
#: Area units: pixels, or square micrometres (needs the image's pixel size).
AREA_UNITS = {"px": "px", "um2": "um2", "µm²": "um2", "µm2": "um2", "um^2": "um2", "μm²": "um2"}
_NOTE_LIMIT = 500
_CLASSES_LIMIT = 200
_CLASS_NAME_LIMIT = 100
_COMMON_FIELDS = ("severity", "note")


class RulesError(ValueError):
    """A rules object that cannot be used; ``field`` names the rule at fault.

    Parameters
    ----------
    field : str
        The rule (top-level key of the rules object) the problem belongs to, or
        ``"rules"`` when the object itself is wrong.
    message : str
        What is wrong, naming the rule and, where relevant, its parameter.
    """

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RuleSpec:
    """One rule: its parameters, what it checks, its unit and an example (for docs)."""

    name: str
    fields: tuple[str, ...]
    summary: str
    unit: str
    example: dict
    parse: Callable[[str, Mapping], dict]


# ------------------------------------------------------------------ value checks


def _number(rule: str, raw: Mapping, key: str, *, positive: bool = True,
            upper: float | None = None) -> int | float:
    if key not in raw:
        raise RulesError(rule, f"{rule}.{key} is required")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RulesError(rule, f"{rule}.{key} must be a number, got {value!r}")
    if positive and value <= 0:
        raise RulesError(rule, f"{rule}.{key} must be greater than 0, got {value!r}")
    if upper is not None and value > upper:
        raise RulesError(rule, f"{rule}.{key} must be at most {upper}, got {value!r}")
    return value


def _integer(rule: str, raw: Mapping, key: str, *, minimum: int) -> int:
    if key not in raw:
        raise RulesError(rule, f"{rule}.{key} is required")
    value = raw[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RulesError(rule, f"{rule}.{key} must be a whole number, got {value!r}")
    if value < minimum:
        raise RulesError(rule, f"{rule}.{key} must be at least {minimum}, got {value!r}")
    return value


def _common(rule: str, raw: Mapping, fields: Iterable[str]) -> dict:
    """Check unknown parameters, severity and note; return ``{"severity": ..., "note"?: ...}``."""
    if not isinstance(raw, Mapping):
        raise RulesError(
            rule, f"{rule} must be an object such as {_example_text(rule)}, got {raw!r}"
        )
    allowed = (*fields, *_COMMON_FIELDS)
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise RulesError(
            rule, f"{rule} has unknown parameter {unknown[0]!r}; it takes {', '.join(allowed)}"
        )
    severity = raw.get("severity", DEFAULT_SEVERITY)
    if severity not in SEVERITIES:
        raise RulesError(
            rule, f"{rule}.severity must be one of {', '.join(SEVERITIES)}, got {severity!r}"
        )
    out: dict = {"severity": severity}
    if "note" in raw:
        note = raw["note"]
        if not isinstance(note, str) or len(note) > _NOTE_LIMIT:
            raise RulesError(rule, f"{rule}.note must be text of at most {_NOTE_LIMIT} characters")
        if note.strip():
            out["note"] = note.strip()
    return out


# ------------------------------------------------------------------ the rules


def _area(rule: str, raw: Mapping) -> dict:
    common = _common(rule, raw, ("value", "unit"))
    unit = raw.get("unit", "px")
    if unit not in AREA_UNITS:
        raise RulesError(rule, f"{rule}.unit must be 'px' or 'um2' (µm²), got {unit!r}")
    return {"value": _number(rule, raw, "value"), "unit": AREA_UNITS[unit], **common}


def _max_holes(rule: str, raw: Mapping) -> dict:
    common = _common(rule, raw, ("value",))
    return {"value": _integer(rule, raw, "value", minimum=0), **common}


def _min_solidity(rule: str, raw: Mapping) -> dict:
    common = _common(rule, raw, ("value",))
    return {"value": _number(rule, raw, "value", upper=1.0), **common}


def _count(rule: str, raw: Mapping) -> dict:
    common = _common(rule, raw, ("value",))
    return {"value": _integer(rule, raw, "value", minimum=1), **common}


def _border(rule: str, raw: Mapping) -> dict:
    common = _common(rule, raw, ("allowed",))
    allowed = raw.get("allowed", False)
    if not isinstance(allowed, bool):
        raise RulesError(rule, f"{rule}.allowed must be true or false, got {allowed!r}")
    return {"allowed": allowed, **common}


def _required_classes(rule: str, raw: Mapping) -> dict:
    common = _common(rule, raw, ("classes",))
    classes = raw.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) and c.strip() for c in classes):
        raise RulesError(rule, f"{rule}.classes must be a list of class names, got {classes!r}")
    if len(classes) > _CLASSES_LIMIT or any(len(c) > _CLASS_NAME_LIMIT for c in classes):
        raise RulesError(rule, f"{rule}.classes takes at most {_CLASSES_LIMIT} names of at most "
                         f"{_CLASS_NAME_LIMIT} characters")
    if len(set(classes)) != len(classes):
        raise RulesError(rule, f"{rule}.classes names a class twice: {classes!r}")
    return {"classes": list(classes), **common}


RULES: dict[str, RuleSpec] = {
    spec.name: spec
    for spec in (
        RuleSpec("max_instances", ("value",),
                 "At most this many cells in one image.", "cells per image",
                 {"value": 500, "severity": "warning"}, _count),
        RuleSpec("min_area", ("value", "unit"),
                 "Every cell covers at least this area (smaller objects are usually debris).",
                 "px (pixels) or um2 (µm², needs the image's pixel size)",
                 {"value": 30, "unit": "px", "severity": "blocking"}, _area),
        RuleSpec("max_area", ("value", "unit"),
                 "No cell covers more than this area (larger ones are usually merged cells).",
                 "px (pixels) or um2 (µm², needs the image's pixel size)",
                 {"value": 400, "unit": "um2", "severity": "warning"}, _area),
        RuleSpec("max_pieces", ("value",),
                 "A cell is drawn in at most this many separate pieces (pixels touching only "
                 "at a corner are separate pieces).", "pieces per cell",
                 {"value": 1, "severity": "blocking"}, _count),
        RuleSpec("max_holes", ("value",),
                 "A cell has at most this many holes (enclosed pixels that are not the cell, "
                 "background or another cell).", "holes per cell",
                 {"value": 0, "severity": "warning"}, _max_holes),
        RuleSpec("min_solidity", ("value",),
                 "Every cell is at least this convex: its area divided by the area of its "
                 "convex hull (1 = convex; low values suggest merged cells or ragged outlines).",
                 "fraction 0..1", {"value": 0.8, "severity": "warning"}, _min_solidity),
        RuleSpec("border", ("allowed",),
                 "Whether cells may touch the image border (any pixel in the first or last row "
                 "or column).", "true / false",
                 {"allowed": False, "severity": "warning"}, _border),
        RuleSpec("required_classes", ("classes",),
                 "Every cell carries a class; with `classes`, one of those.", "class names",
                 {"classes": ["nucleus", "mitotic"], "severity": "blocking"}, _required_classes),
    )
}
#: Rule names in the order they are evaluated and reported.
RULE_NAMES = tuple(RULES)


def _example_text(rule: str) -> str:
    spec = RULES.get(rule)
    return "{...}" if spec is None else str(spec.example).replace("'", '"')


# ------------------------------------------------------------------ legacy keys


def _legacy_border(value) -> dict | None:
    keep = {"label", "include", "keep", "allow", "allowed"}
    drop = {"exclude", "remove", "forbid", "forbidden", "discard"}
    if value in keep or value is True:
        return {"allowed": True}
    if value in drop or value is False:
        return {"allowed": False}
    raise RulesError("border_cells", f"border_cells must be 'label' or 'exclude', got {value!r}")


def _legacy_holes(value) -> dict | None:
    if not isinstance(value, bool):
        raise RulesError("allow_holes", f"allow_holes must be true or false, got {value!r}")
    return None if value else {"value": 0}


#: Legacy key -> (rule, converter from the legacy value to the rule's parameters or None).
LEGACY_KEYS: dict[str, tuple[str, Callable]] = {
    "min_area_px": ("min_area", lambda v: {"value": v, "unit": "px"}),
    "max_area_px": ("max_area", lambda v: {"value": v, "unit": "px"}),
    "max_components_per_instance": ("max_pieces", lambda v: {"value": v}),
    "allow_holes": ("max_holes", _legacy_holes),
    "border_cells": ("border", _legacy_border),
    "max_instances": ("max_instances", lambda v: {"value": v}),
}


def _legacy(key: str, value) -> tuple[str, dict] | None:
    """The (rule, raw parameters) a legacy key stands for, or None when it asks for nothing."""
    rule, convert = LEGACY_KEYS[key]
    params = convert(value)
    if params is None:
        return None
    parsed = RULES[rule].parse(rule, {**params, "severity": LEGACY_SEVERITY})
    return rule, parsed


# ------------------------------------------------------------------ validation


def _parse_one(key: str, value, *, known_classes) -> tuple[str, dict] | None:
    if not isinstance(key, str):
        raise RulesError("rules", f"rule names must be text, got {key!r}")
    if key in LEGACY_KEYS and not (key in RULES and isinstance(value, Mapping)):
        try:
            return _legacy(key, value)
        except RulesError as exc:
            if exc.field == key:
                raise
            raise RulesError(
                key, f"{key} (read as the rule {exc.field}): {exc.message}"
            ) from None
    if key not in RULES:
        close = difflib.get_close_matches(key, [*RULES, *LEGACY_KEYS], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RulesError(
            key, f"{key} is not a rule{hint}; known rules: {', '.join(RULE_NAMES)}"
        )
    parsed = RULES[key].parse(key, value)
    if key == "required_classes" and known_classes is not None and not known_classes:
        raise RulesError(key, "required_classes cannot be met: the project defines no cell classes")
    if key == "required_classes" and known_classes is not None:
        unknown = [c for c in parsed["classes"] if c not in set(known_classes)]
        if unknown:
            raise RulesError(
                key, f"required_classes.classes names {unknown}, which are not cell classes "
                f"of the project ({sorted(known_classes) or 'none defined'})",
            )
    return key, parsed


def _check_pairs(out: dict) -> None:
    low, high = out.get("min_area"), out.get("max_area")
    if low and high and low["unit"] == high["unit"] and low["value"] > high["value"]:
        raise RulesError(
            "max_area", f"max_area ({high['value']} {high['unit']}) is smaller than min_area "
            f"({low['value']} {low['unit']})",
        )


def validate_rules(rules: Mapping, *, known_classes: Iterable[str] | None = None) -> dict:
    """Check a rules object and return it normalised (defaults spelled out, rule order).

    Parameters
    ----------
    rules : mapping of str to dict
        The rules JSON of a guideline version (see :data:`RULES`; legacy keys accepted).
    known_classes : iterable of str, optional
        The project's cell classes; when given, ``required_classes.classes`` must be
        among them.

    Returns
    -------
    dict
        One entry per active rule, keyed and ordered as :data:`RULE_NAMES`. Applying it
        again returns an equal dict.

    Raises
    ------
    RulesError
        The first problem found; ``field`` names the rule.
    """
    if not isinstance(rules, Mapping):
        raise RulesError("rules", f"rules must be a JSON object, got {type(rules).__name__}")
    known = None if known_classes is None else list(known_classes)
    parsed: dict[str, dict] = {}
    origin: dict[str, str] = {}
    for key, value in rules.items():
        found = _parse_one(key, value, known_classes=known)
        if found is None:
            continue
        name, params = found
        if name in parsed:
            raise RulesError(name, f"{name} is given twice (as {origin[name]!r} and {key!r})")
        parsed[name], origin[name] = params, key
    out = {name: parsed[name] for name in RULE_NAMES if name in parsed}
    _check_pairs(out)
    return out


def usable_rules(rules: Mapping) -> tuple[dict, tuple[RulesError, ...]]:
    """The rules that can be checked, and the problems of those that cannot.

    For rules stored before validation existed: each rule is validated on its own, so
    one bad rule does not stop the others from being checked.
    """
    if not isinstance(rules, Mapping):
        return {}, (RulesError("rules", f"rules must be a JSON object, got {type(rules).__name__}"),)
    good: dict = {}
    problems: list[RulesError] = []
    for key, value in rules.items():
        try:
            found = _parse_one(key, value, known_classes=None)
        except RulesError as exc:
            problems.append(exc)
            continue
        if found is not None and found[0] not in good:
            good[found[0]] = found[1]
    try:
        _check_pairs(good)
    except RulesError as exc:
        problems.append(exc)
        good.pop("max_area")
    return {name: good[name] for name in RULE_NAMES if name in good}, tuple(problems)


def _limit_text(params: Mapping) -> str:
    unit = {"px": "px", "um2": "µm²"}.get(params.get("unit", ""), "")
    value = params["value"]
    return f"{value:g} {unit}".strip() if isinstance(value, float) else f"{value} {unit}".strip()


_SENTENCES: dict[str, Callable[[Mapping], str]] = {
    "max_instances": lambda p: f"At most {p['value']} cells per image.",
    "min_area": lambda p: f"Every cell covers at least {_limit_text(p)}.",
    "max_area": lambda p: f"No cell covers more than {_limit_text(p)}.",
    "max_pieces": lambda p: (
        "Each cell is one connected region." if p["value"] == 1
        else f"Each cell is drawn in at most {p['value']} pieces."
    ),
    "max_holes": lambda p: (
        "Cells have no holes." if p["value"] == 0 else f"Cells have at most {p['value']} holes."
    ),
    "min_solidity": lambda p: f"Outlines are convex: solidity at least {p['value']:g}.",
    "border": lambda p: (
        "Cells touching the image border are labelled." if p["allowed"]
        else "Cells touching the image border are not labelled."
    ),
    "required_classes": lambda p: (
        f"Every cell gets one of the classes {', '.join(p['classes'])}." if p["classes"]
        else "Every cell gets a class."
    ),
}


def describe_rules(rules: Mapping) -> list[str]:
    """One plain sentence per rule, with its severity, for people reading a guideline.

    ``rules`` is validated first (:func:`validate_rules`); e.g.
    ``["Every cell covers at least 30 px. (blocking)"]``.
    """
    return [
        f"{_SENTENCES[name](params)} ({params['severity']})"
        + (f" {params['note']}" if "note" in params else "")
        for name, params in validate_rules(rules).items()
    ]
