"""Each role sees only its pages: QA pages for QA leads and managers, 403 for other members, 404 for others."""

import pytest
from django.test import Client

from annotation.enums import Role
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = ProjectFactory(slug="roles")
    for name, role in [("lead", Role.QA_LEAD), ("boss", Role.MANAGER), ("ml", Role.ML_ENGINEER), ("ann", Role.ANNOTATOR)]:
        MembershipFactory(user=UserFactory(username=name), project=project, role=role)
    UserFactory(username="stranger")
    return project


def _get(username, url):
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client.get(url)


@pytest.mark.parametrize(("user", "code"), [
    ("lead", 200), ("boss", 200), ("ml", 403), ("ann", 403), ("stranger", 404),
])
def test_qa_dashboard_is_for_qa_leads_and_managers(project, user, code):
    assert _get(user, "/qa/roles/").status_code == code
    assert _get(user, "/qa/roles/pair/?a=x&b=y").status_code == code
    assert _get(user, "/qa/roles/policies/").status_code == code


@pytest.mark.parametrize(("user", "code"), [("lead", 404), ("ml", 403), ("ann", 403), ("stranger", 404)])
def test_review_page_and_consensus_labels_follow_the_same_rule(project, user, code):
    image = ImageFactory(project=project)  # no QA run yet: a lead gets 404, not a broken page
    assert _get(user, f"/qa/roles/images/{image.pk}/").status_code == code
    assert _get(user, f"/qa/roles/images/{image.pk}/consensus/labels/").status_code == code


def test_anonymous_users_are_sent_to_log_in(project):
    response = Client().get("/qa/roles/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(("user", "code"), [
    ("ml", 200), ("boss", 200), ("lead", 403), ("ann", 403), ("stranger", 404),
])
def test_ml_page_is_for_ml_engineers_and_managers(project, user, code):
    assert _get(user, "/ml/roles/").status_code == code


@pytest.mark.parametrize(("user", "code"), [
    ("boss", 200), ("lead", 403), ("ml", 403), ("ann", 403), ("stranger", 404),
])
def test_manage_page_is_for_managers(project, user, code):
    assert _get(user, "/manage/roles/").status_code == code


@pytest.mark.parametrize(("user", "code"), [
    ("lead", 200), ("boss", 200), ("ml", 200), ("ann", 403), ("stranger", 404),
])
def test_guideline_pages_are_for_oversight_roles(project, user, code):
    from tests.factories import GuidelineVersionFactory

    GuidelineVersionFactory(project=project, published=True, title="v1")
    GuidelineVersionFactory(project=project, title="v2", body="more")
    assert _get(user, "/guidelines/roles/").status_code == code
    assert _get(user, "/guidelines/roles/1/").status_code == code
    assert _get(user, "/guidelines/roles/diff/?a=1&b=2").status_code == code


def test_guideline_diff_of_bad_versions_is_a_400_that_names_the_field(project):
    from tests.factories import GuidelineVersionFactory

    GuidelineVersionFactory(project=project, published=True, title="v1")
    response = _get("lead", "/guidelines/roles/diff/?a=one&b=9")
    assert response.status_code == 400
    text = response.content.decode()
    assert "a must be a version number" in text and "guideline version 9 not found" in text
    assert _get("lead", "/guidelines/roles/7/").status_code == 404


@pytest.mark.parametrize(("user", "code"), [
    ("ml", 200), ("boss", 200), ("lead", 403), ("ann", 403), ("stranger", 404),
])
def test_snapshot_and_model_pages_are_for_ml_engineers_and_managers(project, user, code):
    assert _get(user, "/ml/roles/datasets/new/").status_code == code
    assert _get(user, "/ml/roles/models/").status_code == code
    assert _get(user, "/ml/roles/active-learning/").status_code == code
    expected_missing = 404 if code == 200 else code  # no such snapshot / model yet
    assert _get(user, "/ml/roles/datasets/99/").status_code == expected_missing
    assert _get(user, "/ml/roles/models/99/").status_code == expected_missing
    assert _get(user, "/ml/roles/models/98/compare/99/").status_code == expected_missing


def test_snapshot_preview_with_bad_input_is_a_400_naming_the_field(project):
    response = _get("ml", "/ml/roles/datasets/new/?name=bad%20name&train=0.9&val=0.5&test=0.1&plate=P1")
    assert response.status_code == 400
    text = response.content.decode()
    assert "<strong>name</strong>" in text
    response = _get("ml", "/ml/roles/datasets/new/?name=ok&train=0.9&val=0.5&test=0.1")
    assert response.status_code == 400 and "<strong>fractions</strong>" in response.content.decode()
    assert _get("ml", "/ml/roles/datasets/diff/?a=x&b=").status_code == 400
    assert _get("ml", "/ml/roles/models/compare/?a=1&b=x").status_code == 400
    assert _get("ml", "/ml/roles/active-learning/?model=x").status_code == 400
