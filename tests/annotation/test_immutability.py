"""Submitted annotation revisions and published guidelines are immutable, down to the database.

These run on whichever database the suite uses (SQLite by default; PostgreSQL with
DATABASE_URL=postgres://...): the triggers exist for both.
"""

import pytest
from django.db import IntegrityError, transaction

from annotation.models import Annotation
from guidelines.models import GuidelineVersion
from tests.factories import AnnotationFactory, GuidelineVersionFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "change",
    [{"sha256": "0" * 64}, {"mask": "elsewhere.png"}, {"instance_count": 99}, {"revision": 7},
     {"instance_classes": {"1": "mitotic"}}, {"upload_format": "coco"},
     {"import_report": {"warnings": ["rewritten"]}}],
    ids=lambda c: next(iter(c)),
)
def test_database_refuses_to_update_a_submitted_annotation(media_root, change):
    annotation = AnnotationFactory()
    before = Annotation.objects.filter(pk=annotation.pk).values().get()
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        Annotation.objects.filter(pk=annotation.pk).update(**change)
    assert Annotation.objects.filter(pk=annotation.pk).values().get() == before


def test_model_save_of_a_changed_annotation_is_refused_too(media_root):
    annotation = AnnotationFactory()
    annotation.sha256 = "f" * 64
    with pytest.raises(IntegrityError), transaction.atomic():
        annotation.save()
    assert Annotation.objects.get(pk=annotation.pk).sha256 != "f" * 64


@pytest.mark.parametrize(
    "change",
    [{"body": "rewritten"}, {"rules": {"min_area_px": 1}}, {"title": "other"}, {"status": "draft"}],
    ids=lambda c: next(iter(c)),
)
def test_database_refuses_to_update_a_published_guideline(change):
    version = GuidelineVersionFactory(published=True)
    before = GuidelineVersion.objects.filter(pk=version.pk).values().get()
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        GuidelineVersion.objects.filter(pk=version.pk).update(**change)
    assert GuidelineVersion.objects.filter(pk=version.pk).values().get() == before


def test_database_allows_retiring_a_published_guideline_but_not_reviving_it():
    version = GuidelineVersionFactory(published=True)
    GuidelineVersion.objects.filter(pk=version.pk).update(status="retired")
    with pytest.raises(IntegrityError), transaction.atomic():
        GuidelineVersion.objects.filter(pk=version.pk).update(status="published")
    assert GuidelineVersion.objects.get(pk=version.pk).status == "retired"


def test_drafts_stay_editable_in_the_database():
    version = GuidelineVersionFactory()
    GuidelineVersion.objects.filter(pk=version.pk).update(body="edited", rules={"a": 1})
    version.refresh_from_db()
    assert (version.body, version.rules) == ("edited", {"a": 1})


def test_one_published_version_per_project():
    project = ProjectFactory()
    GuidelineVersionFactory(project=project, published=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        GuidelineVersionFactory(project=project, published=True)
    assert GuidelineVersion.objects.filter(project=project).count() == 1


def test_project_needs_at_least_one_annotator_per_image():
    with pytest.raises(IntegrityError), transaction.atomic():
        ProjectFactory(annotators_per_image=0)
