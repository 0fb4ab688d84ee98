"""The demo's guideline carries rules, and one demo submission shows a warning."""

from io import StringIO

import pytest
from django.core.management import call_command

from annotation.models import Annotation
from guidelines.models import GuidelineVersion

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_demo_guideline_has_rules_and_a_submission_shows_a_warning(media_root):
    out = StringIO()
    call_command("demo", "--images", "2", "--size", "64", "--password", "demo-pass-1", stdout=out)
    guideline = GuidelineVersion.objects.get(project__slug="demo-nuclei", status="published")
    assert {"min_area", "max_pieces", "max_instances"} <= set(guideline.rules)
    assert guideline.rules["max_instances"]["severity"] == "blocking"
    warned = [a for a in Annotation.objects.order_by("id") if a.rule_warnings]
    assert warned, "no demo annotation carries a guideline warning"
    first = warned[0].rule_warnings
    speck = next(w for w in first if w["rule"] == "min_area")
    assert speck["measured"][-1] == 9.0
    assert speck["message"].endswith("Guideline note: Debris is not labelled (rule 4).")
    assert "annotations carry guideline warnings" in out.getvalue()
