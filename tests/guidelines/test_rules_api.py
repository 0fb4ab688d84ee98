"""Rules JSON over the API: validated when a draft is saved, stored normalised, documented."""

import pytest
import yaml
from django.core.management import call_command

from guidelines.models import GuidelineVersion
from guidelines.rules import RULE_NAMES
from guidelines.services import InvalidRules, guideline_version_create
from tests.api.uploads import url

pytestmark = pytest.mark.django_db


def test_draft_rules_are_stored_normalised(world, api_client):
    api_client.force_authenticate(world.users["manager"])
    created = api_client.post(url("world", "guidelines"), {
        "title": "v2", "body": "b",
        "rules": {"border": {}, "min_area": {"value": 20, "unit": "µm²", "severity": "warning"}},
    }, format="json")
    assert created.status_code == 201
    expected = {"min_area": {"value": 20, "unit": "um2", "severity": "warning"},
                "border": {"allowed": False, "severity": "blocking"}}
    assert created.json()["rules"] == expected
    assert created.json()["rules_text"] == [
        "Every cell covers at least 20 µm². (warning)",
        "Cells touching the image border are not labelled. (blocking)",
    ]
    assert GuidelineVersion.objects.get(project=world.project, version=2).rules == expected


def test_legacy_rules_in_a_new_draft_are_migrated(world):
    draft = guideline_version_create(actor=world.users["manager"], project=world.project,
                                     title="t", rules={"min_area_px": 12, "allow_holes": False})
    assert draft.rules == {"min_area": {"value": 12, "unit": "px", "severity": "warning"},
                           "max_holes": {"value": 0, "severity": "warning"}}


@pytest.mark.parametrize(
    ("rules", "rule", "message"),
    [
        ({"min_aera": {"value": 3}}, "min_aera", "min_aera is not a rule (did you mean 'min_area'?)"),
        ({"max_holes": {"value": -1}}, "max_holes", "max_holes.value must be at least 0, got -1"),
        ({"required_classes": {"classes": ["cytoplasm"]}}, "required_classes",
         "required_classes.classes names ['cytoplasm'], which are not cell classes of the project"),
    ],
)
def test_bad_rules_are_a_400_naming_the_rule_and_change_nothing(world, api_client, rules, rule, message):
    api_client.force_authenticate(world.users["manager"])
    draft = api_client.post(url("world", "guidelines"),
                            {"title": "v2", "body": "b", "rules": {"max_pieces": {"value": 1}}},
                            format="json")
    assert draft.status_code == 201
    edited = api_client.patch(url("world", "guidelines", 2), {"rules": rules}, format="json")
    assert edited.status_code == 400
    body = edited.json()
    assert (body["code"], body["rule"]) == ("invalid_rules", rule)
    assert message in body["rules"][0]
    assert GuidelineVersion.objects.get(project=world.project, version=2).rules == {
        "max_pieces": {"value": 1, "severity": "blocking"}
    }
    created = api_client.post(url("world", "guidelines"), {"title": "v3", "rules": rules}, format="json")
    assert (created.status_code, created.json()["rule"]) == (400, rule)
    assert not GuidelineVersion.objects.filter(project=world.project, version=3).exists()


def test_service_raises_a_typed_error(world):
    with pytest.raises(InvalidRules) as info:
        guideline_version_create(actor=world.users["manager"], project=world.project, title="t",
                                 rules={"border": {"allowed": "sometimes"}})
    assert (info.value.field, info.value.rule) == ("rules", "border")


def test_every_rule_is_documented_in_the_api_schema(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    doc = schema["components"]["schemas"]["GuidelineRulesDoc"]["properties"]
    assert list(doc) == list(RULE_NAMES)
    min_area = doc["min_area"]
    assert "Unit: px (pixels) or um2" in min_area["description"]
    assert '"min_area": {"value": 30' in min_area["description"]
    submit = schema["components"]["schemas"]["AnnotationSubmitInputRequest"]["properties"]
    assert "dry_run" in submit
    assert "rule_warnings" in schema["components"]["schemas"]["AnnotationOutput"]["properties"]
    assert "/api/v1/projects/{slug}/guidelines/{version}/rechecks/" in schema["paths"]
