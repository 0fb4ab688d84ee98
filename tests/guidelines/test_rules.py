"""guidelines.rules: every rule on tiny hand-made label images, with exact violations."""

import numpy as np
import pytest

from guidelines.rules import (
    RULE_NAMES,
    RulesError,
    Violation,
    describe_rules,
    evaluate_rules,
    pixel_size_from_metadata,
    usable_rules,
    validate_rules,
)
from guidelines.rules.measure import CellMeasures


def grid(text: str) -> np.ndarray:
    """A label image from rows of digits ('.' is background)."""
    rows = [r.strip() for r in text.strip().splitlines()]
    return np.array([[0 if ch == "." else int(ch) for ch in row] for row in rows], dtype=np.uint16)


def by_rule(violations):
    return {v.rule: v for v in violations}


# 1: ring with one hole; 2: three pixels touching only at corners (3 pieces);
# 3: ring around cell 4 (one hole, filled by another cell); 5: L of 3 pixels.
SHAPES = grid("""
    111....
    1.1.2.2
    111..2.
    .......
    3333.55
    3443.5.
    3333...
""")


def test_measures_of_hand_made_shapes():
    m = CellMeasures(SHAPES)
    assert m.ids.tolist() == [1, 2, 3, 4, 5]
    assert m.areas.tolist() == [8, 3, 10, 2, 3]
    assert m.pieces.tolist() == [1, 3, 1, 1, 1]
    assert m.holes.tolist() == [1, 0, 1, 0, 0]
    # Hull of pixel squares: ring 3x3 -> 9; diagonal trio -> 5; ring 3x4 -> 12; L -> 3.5.
    np.testing.assert_allclose(m.solidity, [8 / 9, 3 / 5, 10 / 12, 1.0, 3 / 3.5])
    assert m.border_edges == [("top", "left"), ("right",), ("bottom", "left"), (), ("right",)]


def test_ring_closed_only_at_corners_has_two_pieces_and_no_hole():
    labels = grid("""
        .....
        .11..
        .1.1.
        ..11.
        .....
    """)
    m = CellMeasures(labels)
    assert (m.pieces.tolist(), m.holes.tolist()) == ([2], [0])


def test_min_area_in_pixels_names_the_small_cells_and_their_areas():
    found = evaluate_rules(SHAPES, {"min_area": {"value": 4, "unit": "px", "severity": "blocking"}})
    assert found == [Violation(
        rule="min_area", severity="blocking", cells=(2, 4, 5),
        message="3 cells are smaller than the minimum of 4 px: cells 2 (3 px), 4 (2 px), "
        "5 (3 px). Remove debris or redraw the cell completely.",
        measured=(3.0, 2.0, 3.0), limit=4, unit="px",
    )]


def test_max_area_in_pixels():
    (v,) = evaluate_rules(SHAPES, {"max_area": {"value": 8, "severity": "warning"}})
    assert (v.rule, v.severity, v.cells, v.measured) == ("max_area", "warning", (3,), (10.0,))
    assert v.message.startswith("1 cell is larger than the maximum of 8 px: cell 3 (10 px).")


def test_area_in_square_micrometres_uses_the_pixel_size():
    # 0.5 µm pixels: one pixel is 0.25 µm²; cells of 8, 3, 10, 2, 3 px are 2, 0.75, 2.5, 0.5, 0.75 µm².
    rules = {"min_area": {"value": 1, "unit": "um2"}, "max_area": {"value": 2.2, "unit": "µm²"}}
    found = by_rule(evaluate_rules(SHAPES, rules, pixel_size_um=0.5))
    assert found["min_area"].cells == (2, 4, 5)
    assert found["min_area"].measured == (0.75, 0.5, 0.75)
    assert found["min_area"].unit == "um2"
    assert "0.75 µm²" in found["min_area"].message
    assert found["max_area"].cells == (3,)
    # Same rules, coarser pixels (1 µm): 8, 3, 10, 2, 3 µm² -> nobody is too small.
    coarse = by_rule(evaluate_rules(SHAPES, rules, pixel_size_um=1.0))
    assert "min_area" not in coarse
    assert coarse["max_area"].cells == (1, 2, 3, 5)


def test_area_in_square_micrometres_without_a_pixel_size_is_reported_not_checked():
    (v,) = evaluate_rules(SHAPES, {"min_area": {"value": 1, "unit": "um2", "severity": "blocking"}})
    assert (v.rule, v.severity, v.cells) == ("min_area", "warning", ())
    assert v.message.startswith("Not checked")


@pytest.mark.parametrize(
    ("row", "col", "edge"),
    [(0, 2, "top"), (5, 2, "bottom"), (2, 0, "left"), (2, 5, "right")],
)
def test_border_rule_at_each_edge(row, col, edge):
    labels = np.zeros((6, 6), dtype=np.uint16)
    labels[2:4, 2:4] = 1            # inside, one pixel away from every edge
    labels[row, col] = 2            # touches exactly one edge
    (v,) = evaluate_rules(labels, {"border": {"allowed": False, "severity": "warning"}})
    assert (v.rule, v.cells, v.severity) == ("border", (2,), "warning")
    assert f"({edge} edge)" in v.message
    assert evaluate_rules(labels, {"border": {"allowed": True}}) == []


def test_border_cell_in_a_corner_touches_two_edges():
    labels = np.zeros((4, 4), dtype=np.uint16)
    labels[3, 3] = 7
    (v,) = evaluate_rules(labels, {"border": {}})
    assert v.cells == (7,)
    assert "(bottom, right edges)" in v.message


def test_max_holes():
    (v,) = evaluate_rules(SHAPES, {"max_holes": {"value": 0}})
    assert (v.cells, v.measured, v.limit) == ((1, 3), (1.0, 1.0), 0)
    assert v.message.startswith("2 cells have more than 0 holes: cells 1 (1), 3 (1).")
    assert evaluate_rules(SHAPES, {"max_holes": {"value": 1}}) == []


def test_max_pieces_flags_the_split_instance():
    (v,) = evaluate_rules(SHAPES, {"max_pieces": {"value": 1, "severity": "blocking"}})
    assert (v.rule, v.cells, v.measured) == ("max_pieces", (2,), (3.0,))
    assert "1 cell has more than 1 piece: cell 2 (3)" in v.message
    assert evaluate_rules(SHAPES, {"max_pieces": {"value": 3}}) == []


def test_min_solidity():
    (v,) = evaluate_rules(SHAPES, {"min_solidity": {"value": 0.85, "severity": "warning"}})
    assert v.cells == (2, 3)
    np.testing.assert_allclose(v.measured, [0.6, 10 / 12])
    # A rectangle is exactly convex: a limit of 1 keeps only cell 4 out.
    (strict,) = evaluate_rules(SHAPES, {"min_solidity": {"value": 1.0}})
    assert strict.cells == (1, 2, 3, 5)


def test_max_instances_is_an_image_level_violation():
    (v,) = evaluate_rules(SHAPES, {"max_instances": {"value": 4}})
    assert (v.rule, v.cells, v.measured, v.limit) == ("max_instances", (), (5.0,), 4)
    assert v.message.startswith("The mask has 5 cells; this guideline allows at most 4 per image.")
    assert evaluate_rules(SHAPES, {"max_instances": {"value": 5}}) == []


def test_required_classes_lists_unclassified_and_wrongly_classified_cells():
    classes = {1: "nucleus", 2: "mitotic", 3: "debris", 5: ""}
    rule = {"required_classes": {"classes": ["nucleus", "mitotic"], "severity": "blocking"}}
    (v,) = evaluate_rules(SHAPES, rule, cell_classes=classes)
    assert v.cells == (3, 4, 5)
    assert v.message == ("cells 4, 5 have no class; cell 3 has class debris. "
                         "Give every cell one of nucleus, mitotic.")
    (any_class,) = evaluate_rules(SHAPES, {"required_classes": {}}, cell_classes=classes)
    assert any_class.cells == (4, 5)
    (none_given,) = evaluate_rules(SHAPES, {"required_classes": {}})
    assert none_given.cells == (1, 2, 3, 4, 5)


def test_all_rules_together_keep_rule_order_and_severities():
    rules = {
        "border": {"allowed": False, "severity": "warning"},
        "min_area": {"value": 3, "severity": "blocking"},
        "max_pieces": {"value": 1, "severity": "blocking"},
        "max_holes": {"value": 0, "severity": "warning"},
    }
    found = evaluate_rules(SHAPES, rules)
    assert [(v.rule, v.severity, v.cells) for v in found] == [
        ("min_area", "blocking", (4,)),
        ("max_pieces", "blocking", (2,)),
        ("max_holes", "warning", (1, 3)),
        ("border", "warning", (1, 2, 3, 5)),
    ]


def test_empty_image_and_empty_rules_give_no_violations():
    empty = np.zeros((5, 5), dtype=np.uint16)
    rules = {name: {"value": 1} for name in ("max_instances", "min_area", "max_pieces")}
    assert evaluate_rules(empty, {**rules, "border": {}, "min_solidity": {"value": 0.9}}) == []
    assert evaluate_rules(SHAPES, {}) == []


def test_results_do_not_depend_on_id_values_or_dtype():
    """Relabelling (sparse ids, ids above the dense limit, uint32/int64) changes only the ids."""
    rules = {"min_area": {"value": 4}, "max_pieces": {"value": 1}, "max_holes": {"value": 0},
             "min_solidity": {"value": 0.85}, "border": {}}
    base = evaluate_rules(SHAPES, rules)
    mapping = {1: 9_000_001, 2: 17, 3: 5_000_000, 4: 3, 5: 8}
    relabelled = np.zeros(SHAPES.shape, dtype=np.uint32)
    for old, new in mapping.items():
        relabelled[SHAPES == old] = new
    for labels in (relabelled, relabelled.astype(np.int64)):
        moved = evaluate_rules(labels, rules)
        assert [v.rule for v in moved] == [v.rule for v in base]
        for a, b in zip(base, moved, strict=True):
            assert sorted(mapping[c] for c in a.cells) == list(b.cells)
            assert sorted(a.measured) == sorted(b.measured)


def test_the_issue_examples_speck_two_part_instance_and_blob():
    labels = np.zeros((80, 80), dtype=np.uint16)
    labels[10:12, 10:12] = 1                 # a 4-pixel speck
    labels[20:26, 20:26] = 2
    labels[20:26, 30:36] = 2                 # one instance in two parts
    labels[30:80, 20:80] = 3                 # a 3,000-pixel blob
    rules = validate_rules({"min_area_px": 30, "max_area_px": 2000, "max_components_per_instance": 1})
    found = by_rule(evaluate_rules(labels, rules))
    assert {k: v.cells for k, v in found.items()} == {
        "min_area": (1,), "max_area": (3,), "max_pieces": (2,),
    }
    assert found["max_area"].measured == (3000.0,)
    assert all(v.severity == "warning" for v in found.values())  # legacy keys warn


# ------------------------------------------------------------------ validation


def test_validate_fills_defaults_orders_rules_and_is_idempotent():
    raw = {"border": {}, "min_area": {"value": 30}, "max_holes": {"value": 0, "note": " fill "}}
    normalised = validate_rules(raw)
    assert normalised == {
        "min_area": {"value": 30, "unit": "px", "severity": "blocking"},
        "max_holes": {"value": 0, "severity": "blocking", "note": "fill"},
        "border": {"allowed": False, "severity": "blocking"},
    }
    assert list(normalised) == [n for n in RULE_NAMES if n in normalised]
    assert validate_rules(normalised) == normalised


def test_legacy_keys_are_read_as_warning_rules():
    legacy = {"min_area_px": 30, "max_area_px": 2000, "allow_holes": False,
              "max_components_per_instance": 1, "border_cells": "label", "max_instances": 500}
    assert validate_rules(legacy) == {
        "max_instances": {"value": 500, "severity": "warning"},
        "min_area": {"value": 30, "unit": "px", "severity": "warning"},
        "max_area": {"value": 2000, "unit": "px", "severity": "warning"},
        "max_pieces": {"value": 1, "severity": "warning"},
        "max_holes": {"value": 0, "severity": "warning"},
        "border": {"allowed": True, "severity": "warning"},
    }
    assert validate_rules({"allow_holes": True, "border_cells": "exclude"}) == {
        "border": {"allowed": False, "severity": "warning"},
    }


@pytest.mark.parametrize(
    ("rules", "field", "message"),
    [
        ({"min_aera": {"value": 3}}, "min_aera", "min_aera is not a rule (did you mean 'min_area'?)"),
        ({"min_area": {"value": -3}}, "min_area", "min_area.value must be greater than 0, got -3"),
        ({"min_area": {"value": "ten"}}, "min_area", "min_area.value must be a number, got 'ten'"),
        ({"min_area": {}}, "min_area", "min_area.value is required"),
        ({"min_area": {"value": 3, "unit": "cm"}}, "min_area", "min_area.unit must be 'px' or 'um2'"),
        ({"min_area": 30}, "min_area", "min_area must be an object such as"),
        ({"max_holes": {"value": 1.5}}, "max_holes", "max_holes.value must be a whole number"),
        ({"max_pieces": {"value": 0}}, "max_pieces", "max_pieces.value must be at least 1, got 0"),
        ({"min_solidity": {"value": 1.5}}, "min_solidity", "min_solidity.value must be at most 1.0"),
        ({"border": {"allowed": "no"}}, "border", "border.allowed must be true or false"),
        ({"border": {"severity": "fatal"}}, "border", "border.severity must be one of blocking, warning"),
        ({"border": {"alowed": False}}, "border", "border has unknown parameter 'alowed'"),
        ({"required_classes": {"classes": "nucleus"}}, "required_classes",
         "required_classes.classes must be a list of class names"),
        ({"required_classes": {"classes": ["x" * 101]}}, "required_classes",
         "required_classes.classes takes at most 200 names"),
        ({"min_area": {"value": 50}, "max_area": {"value": 20}}, "max_area",
         "max_area (20 px) is smaller than min_area (50 px)"),
        ({"min_area_px": 10, "min_area": {"value": 5}}, "min_area", "min_area is given twice"),
        ({"min_area_px": -1}, "min_area_px", "min_area_px (read as the rule min_area)"),
        ({"border_cells": "maybe"}, "border_cells", "border_cells must be 'label' or 'exclude'"),
        ([1, 2], "rules", "rules must be a JSON object, got list"),
    ],
)
def test_bad_rules_are_refused_naming_the_rule(rules, field, message):
    with pytest.raises(RulesError) as info:
        validate_rules(rules)
    assert info.value.field == field
    assert message in info.value.message


def test_required_classes_are_checked_against_the_project_classes():
    rule = {"required_classes": {"classes": ["nucleus", "mitosis"]}}
    with pytest.raises(RulesError, match=r"names \['mitosis'\], which are not cell classes"):
        validate_rules(rule, known_classes=["nucleus", "mitotic"])
    with pytest.raises(RulesError, match="the project defines no cell classes"):
        validate_rules({"required_classes": {}}, known_classes=[])


def test_evaluate_refuses_bad_rules_and_bad_inputs():
    with pytest.raises(RulesError, match="max_pieces.value"):
        evaluate_rules(SHAPES, {"max_pieces": {"value": -1}})
    with pytest.raises(ValueError, match="2-D"):
        evaluate_rules(np.zeros((2, 2, 2), dtype=np.uint16), {})
    with pytest.raises(ValueError, match="integers"):
        evaluate_rules(np.zeros((2, 2)), {})
    with pytest.raises(ValueError, match=">= 0"):
        evaluate_rules(np.full((2, 2), -1), {})
    with pytest.raises(ValueError, match="pixel_size_um"):
        evaluate_rules(SHAPES, {}, pixel_size_um=0)


def test_usable_rules_keeps_the_good_rules_of_a_broken_set():
    good, problems = usable_rules({"min_area": {"value": 3}, "a": 1, "max_pieces": {"value": 0}})
    assert good == {"min_area": {"value": 3, "unit": "px", "severity": "blocking"}}
    assert [p.field for p in problems] == ["a", "max_pieces"]


def test_violation_round_trips_through_its_dict():
    (v,) = evaluate_rules(SHAPES, {"max_holes": {"value": 0, "note": "Fill holes."}})
    assert v.message.endswith("Guideline note: Fill holes.")
    assert Violation.from_dict(v.as_dict()) == v
    assert v.as_dict()["cells"] == [1, 3]


# ------------------------------------------------------------------ pixel size


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"pixel_size_um": 0.65}, 0.65),
        ({"pixel_size_um": [0.5, 2.0]}, 1.0),
        ({"pixel_size_um": {"y": 0.25, "x": 0.25}}, 0.25),
        ({"PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3}, 0.3),
        ({"ome": {"PhysicalSizeX": 300, "PhysicalSizeY": 300, "PhysicalSizeXUnit": "nm"}}, 0.3),
        ({"physical_size_x": 0.2, "physical_size_unit": "µm"}, 0.2),
        ({"pixel_size_um": 0}, None),
        ({"pixel_size_um": "abc"}, None),
        ({"plate": "P1"}, None),
        (None, None),
    ],
)
def test_pixel_size_from_metadata(metadata, expected):
    found = pixel_size_from_metadata(metadata)
    assert found == (pytest.approx(expected) if expected is not None else None)


def test_rules_described_in_plain_sentences():
    text = describe_rules({
        "min_area_px": 30, "max_area": {"value": 400.5, "unit": "um2"}, "max_holes": {"value": 0},
        "border": {"allowed": True, "severity": "warning"},
        "required_classes": {"classes": ["nucleus"], "note": "Use the class picker."},
    })
    assert text == [
        "Every cell covers at least 30 px. (warning)",
        "No cell covers more than 400.5 µm². (blocking)",
        "Cells have no holes. (blocking)",
        "Cells touching the image border are labelled. (warning)",
        "Every cell gets one of the classes nucleus. (blocking) Use the class picker.",
    ]
