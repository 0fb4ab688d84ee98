"""Machine-checkable guideline rules (pure: numpy and scipy, never Django).

A guideline version carries a rules JSON; :func:`validate_rules` checks and normalises
it (:mod:`guidelines.rules.spec` documents every rule), :func:`evaluate_rules` checks a
label image against it and returns :class:`Violation` records naming the cells.

>>> import numpy as np
>>> labels = np.zeros((6, 6), dtype=np.uint16)
>>> labels[1:3, 1:3] = 1                      # a 4-pixel speck
>>> [v.cells for v in evaluate_rules(labels, {"min_area": {"value": 5}})]
[(1,)]
"""

from guidelines.rules.evaluate import Violation, evaluate_rules
from guidelines.rules.metadata import pixel_size_from_metadata
from guidelines.rules.spec import (
    AREA_UNITS,
    DEFAULT_SEVERITY,
    LEGACY_KEYS,
    LEGACY_SEVERITY,
    RULE_NAMES,
    RULES,
    SEVERITIES,
    RulesError,
    RuleSpec,
    describe_rules,
    usable_rules,
    validate_rules,
)

__all__ = [
    "AREA_UNITS",
    "DEFAULT_SEVERITY",
    "LEGACY_KEYS",
    "LEGACY_SEVERITY",
    "RULES",
    "RULE_NAMES",
    "SEVERITIES",
    "RuleSpec",
    "RulesError",
    "Violation",
    "describe_rules",
    "evaluate_rules",
    "pixel_size_from_metadata",
    "usable_rules",
    "validate_rules",
]
