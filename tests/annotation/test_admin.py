"""Django admin: every model is registered, and immutable rows are read-only there."""

import pytest
from django.contrib import admin

from annotation.models import Annotation, Assignment, Image, Job, Membership, Project
from guidelines.models import Acknowledgement, GuidelineVersion
from tests.factories import AnnotationFactory, GuidelineVersionFactory, UserFactory

pytestmark = pytest.mark.django_db

MODELS = [Project, Membership, Image, Assignment, Annotation, Job, GuidelineVersion, Acknowledgement]


@pytest.fixture
def admin_client_(client):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_an_admin_changelist(admin_client_, model):
    assert model in admin.site._registry
    opts = model._meta
    response = admin_client_.get(f"/admin/{opts.app_label}/{opts.model_name}/")
    assert response.status_code == 200


def test_submitted_annotation_is_read_only_in_admin(admin_client_, media_root):
    annotation = AnnotationFactory()
    page = admin_client_.get(f"/admin/annotation/annotation/{annotation.pk}/change/")
    assert page.status_code == 200
    assert b'name="sha256"' not in page.content
    response = admin_client_.post(f"/admin/annotation/annotation/{annotation.pk}/change/", {"sha256": "0" * 64})
    assert response.status_code == 403
    assert Annotation.objects.get(pk=annotation.pk).sha256 == annotation.sha256


def test_published_guideline_is_read_only_but_drafts_are_editable(admin_client_):
    published = GuidelineVersionFactory(published=True)
    draft = GuidelineVersionFactory(project=published.project)
    assert b'name="body"' not in admin_client_.get(
        f"/admin/guidelines/guidelineversion/{published.pk}/change/").content
    assert b'name="body"' in admin_client_.get(
        f"/admin/guidelines/guidelineversion/{draft.pk}/change/").content


def test_admin_lists_assignments_and_members_by_name(admin_client_, media_root):
    annotation = AnnotationFactory(
        assignment__annotator=UserFactory(username="alice"),
        assignment__image__original_name="plate1_A01.tif",
        assignment__image__project__slug="nuclei",
    )
    assignment = annotation.assignment
    assert str(assignment) == f"assignment {assignment.pk}: plate1_A01.tif -> alice"
    membership = Membership.objects.create(
        user=assignment.annotator, project=assignment.image.project, role="annotator"
    )
    assert str(membership) == "alice in nuclei (annotator)"
    page = admin_client_.get("/admin/annotation/assignment/").content.decode()
    assert "plate1_A01.tif" in page and "alice" in page and "nuclei" in page
    assert f"image {assignment.image_id} -&gt; user" not in page
    annotations = admin_client_.get("/admin/annotation/annotation/").content.decode()
    assert f"assignment {assignment.pk}: plate1_A01.tif -&gt; alice" in annotations
    members = admin_client_.get("/admin/annotation/membership/?q=alice").content.decode()
    assert "alice" in members
