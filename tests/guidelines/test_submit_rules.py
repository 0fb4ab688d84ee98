"""Rules on submit: blocking violations refuse, warnings are stored, dry runs store nothing."""

import pytest
from django.db import IntegrityError, transaction

from annotation.models import Annotation, Assignment
from annotation.services import annotation_submit_labels
from config.errors import InvalidInput
from guidelines.services import RuleViolationsError
from tests.api.uploads import stored_files, url
from tests.guidelines.helpers import publish_rules, squares, submit

pytestmark = pytest.mark.django_db

RULES = {
    "min_area": {"value": 10, "unit": "px", "severity": "blocking"},
    "max_pieces": {"value": 1, "severity": "blocking"},
    "max_area": {"value": 30, "unit": "px", "severity": "warning"},
    "border": {"allowed": False, "severity": "warning"},
}


def test_blocking_violation_is_a_400_listing_the_cells_and_stores_nothing(world, api_client, media_root):
    publish_rules(world, RULES)
    before = stored_files(media_root)
    labels = squares(4, 3, 2)          # cells of 16, 9 and 4 px: 2 and 3 are too small
    labels[23, 30] = 1                 # and cell 1 a second piece, on the bottom edge
    response = submit(api_client, world, labels)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "rule_violations"
    assert body["guideline_version"] == 2
    assert [(v["rule"], v["severity"], v["cells"]) for v in body["violations"]] == [
        ("min_area", "blocking", [2, 3]),
        ("max_pieces", "blocking", [1]),
        ("border", "warning", [1]),
    ]
    assert "cells 2 (9 px), 3 (4 px)" in body["mask"][0]
    assert "blocking rules of guideline v2" in body["mask"][0]
    assert Annotation.objects.count() == 0
    assert stored_files(media_root) == before
    assert Assignment.objects.get(pk=world.assignments["annotator"].pk).status == "pending"


def test_warnings_are_stored_with_the_annotation_and_returned(world, api_client):
    publish_rules(world, RULES)
    labels = squares(4, 6)             # cell 2 is 36 px: above the max_area warning
    response = submit(api_client, world, labels)
    assert response.status_code == 201
    warnings = response.json()["rule_warnings"]
    assert [(w["rule"], w["severity"], w["cells"], w["measured"]) for w in warnings] == [
        ("max_area", "warning", [2], [36.0]),
    ]
    assert "larger than the maximum of 30 px" in warnings[0]["message"]
    stored = Annotation.objects.get()
    assert stored.rule_warnings == warnings
    api_client.force_authenticate(world.users["qa_lead"])
    again = api_client.get(url("world", "annotations", stored.pk)).json()
    assert again["rule_warnings"] == warnings


def test_a_clean_mask_has_no_warnings(world, api_client):
    publish_rules(world, RULES)
    response = submit(api_client, world, squares(4, 5))
    assert response.status_code == 201
    assert response.json()["rule_warnings"] == []


def test_dry_run_returns_violations_and_stores_nothing(world, api_client, media_root):
    publish_rules(world, RULES)
    before = stored_files(media_root)
    labels = squares(4, 3, 6)
    response = submit(api_client, world, labels, dry_run="true")
    assert response.status_code == 200
    body = response.json()
    assert (body["dry_run"], body["accepted"], body["guideline_version"]) == (True, False, 2)
    assert [(v["rule"], v["cells"]) for v in body["violations"]] == [
        ("min_area", [2]), ("max_area", [3]),
    ]
    assert Annotation.objects.count() == 0
    assert stored_files(media_root) == before
    assignment = Assignment.objects.get(pk=world.assignments["annotator"].pk)
    assert (assignment.status, assignment.submitted_at) == ("pending", None)
    clean = submit(api_client, world, squares(4, 4), dry_run="true").json()
    assert (clean["accepted"], clean["violations"]) == (True, [])
    assert Annotation.objects.count() == 0
    # The real submission afterwards is revision 1, as if the dry runs never happened.
    assert submit(api_client, world, squares(4, 4)).json()["revision"] == 1


def test_dry_run_still_refuses_what_a_submission_would(world, api_client):
    publish_rules(world, RULES, readers=())          # the annotator has not acknowledged v2
    response = submit(api_client, world, squares(4), dry_run="true")
    assert response.status_code == 400
    assert response.json()["code"] == "guideline_not_acknowledged"


def test_dry_run_ignores_the_idempotency_key_of_an_earlier_submission(world, api_client):
    publish_rules(world, RULES)
    key = {"Idempotency-Key": "k-1"}
    assert submit(api_client, world, squares(4), headers=key).status_code == 201
    response = submit(api_client, world, squares(2), headers=key, base_revision=1, dry_run=True)
    assert response.status_code == 200
    assert [v["rule"] for v in response.json()["violations"]] == ["min_area"]
    assert Annotation.objects.count() == 1


def test_area_rule_in_square_micrometres_uses_the_image_metadata(world, api_client):
    image = world.images[0]
    image.metadata = {"pixel_size_um": 0.5}      # a pixel is 0.25 µm²
    image.save(update_fields=["metadata"])
    publish_rules(world, {"min_area": {"value": 3, "unit": "um2", "severity": "blocking"}})
    # 16 px = 4 µm² passes; 9 px = 2.25 µm² does not.
    response = submit(api_client, world, squares(4, 3))
    assert response.status_code == 400
    (violation,) = response.json()["violations"]
    assert (violation["cells"], violation["measured"], violation["unit"]) == ([2], [2.25], "um2")


def test_area_rule_in_square_micrometres_without_pixel_size_warns_not_checked(world, api_client):
    publish_rules(world, {"min_area": {"value": 3, "unit": "um2", "severity": "blocking"}})
    response = submit(api_client, world, squares(3))
    assert response.status_code == 201
    (warning,) = response.json()["rule_warnings"]
    assert (warning["rule"], warning["severity"]) == ("min_area", "warning")
    assert warning["message"].startswith("Not checked")


def test_legacy_rules_of_an_old_published_version_only_warn(world, api_client):
    # The world's published v1 carries {"min_area_px": 10} from before rules were checked.
    response = submit(api_client, world, squares(4, 2))
    assert response.status_code == 201
    (warning,) = response.json()["rule_warnings"]
    assert (warning["rule"], warning["severity"], warning["cells"]) == ("min_area", "warning", [2])


def test_service_checks_required_classes_with_the_instance_classes(world):
    world.project.cell_classes = ["nucleus", "mitotic"]
    world.project.save(update_fields=["cell_classes"])
    publish_rules(world, {"required_classes": {"classes": ["nucleus", "mitotic"]}})
    labels = squares(4, 4, 4)
    with pytest.raises(RuleViolationsError) as info:
        annotation_submit_labels(actor=world.users["annotator"], assignment=world.assignments["annotator"],
                                 labels=labels, instance_classes={1: "nucleus"})
    (violation,) = info.value.violations
    assert (violation.rule, violation.cells) == ("required_classes", (2, 3))
    assert isinstance(info.value, InvalidInput)
    result = annotation_submit_labels(
        actor=world.users["annotator"], assignment=world.assignments["annotator"], labels=labels,
        instance_classes={1: "nucleus", 2: "mitotic", 3: "nucleus"},
    )
    assert (result.created, result.violations, result.annotation.rule_warnings) == (True, (), [])


def test_service_dry_run_returns_no_annotation(world):
    publish_rules(world, {"max_instances": {"value": 1, "severity": "blocking"}})
    result = annotation_submit_labels(actor=world.users["annotator"],
                                      assignment=world.assignments["annotator"],
                                      labels=squares(3, 3), dry_run=True)
    assert (result.annotation, result.created, result.dry_run) == (None, False, True)
    assert [(v.rule, v.measured) for v in result.violations] == [("max_instances", (2.0,))]
    assert Annotation.objects.count() == 0


@pytest.mark.parametrize(
    "change", [{"rule_warnings": []}, {"sha256": "0" * 64}, {"import_report": {"x": 1}}],
    ids=lambda c: next(iter(c)),
)
def test_stored_warnings_are_immutable_like_the_rest_of_the_revision(world, api_client, change):
    # Migration 0008 re-made the trigger; the new column and the old ones are guarded.
    publish_rules(world, RULES)
    created = submit(api_client, world, squares(4, 6)).json()
    before = Annotation.objects.filter(pk=created["id"]).values().get()
    assert before["rule_warnings"] != []
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        Annotation.objects.filter(pk=created["id"]).update(**change)
    assert Annotation.objects.filter(pk=created["id"]).values().get() == before


def test_pixel_size_recorded_by_the_mask_file_is_used_when_the_image_has_none(world):
    # An OME-TIFF mask keeps its physical pixel size in the import report.
    publish_rules(world, {"min_area": {"value": 3, "unit": "um2", "severity": "blocking"}})
    report = {"warnings": [], "skipped": [], "pixel_size": {"y": 0.5, "x": 0.5, "unit": "µm"}}
    with pytest.raises(RuleViolationsError) as info:
        annotation_submit_labels(actor=world.users["annotator"],
                                 assignment=world.assignments["annotator"],
                                 labels=squares(4, 3), import_report=report)
    (violation,) = info.value.violations
    assert (violation.cells, violation.measured) == ((2,), (2.25,))
    # The image's own pixel size wins over the file's: 1 µm pixels make 9 px = 9 µm².
    world.images[0].metadata = {"pixel_size_um": 1.0}
    world.images[0].save(update_fields=["metadata"])
    assignment = world.assignments["annotator"]
    assignment.image.refresh_from_db()
    result = annotation_submit_labels(actor=world.users["annotator"], assignment=assignment,
                                      labels=squares(4, 3), import_report=report)
    assert (result.created, result.violations) == (True, ())
