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
