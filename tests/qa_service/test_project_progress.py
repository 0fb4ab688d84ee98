"""The manager page's progress: images by QA state, assignments by status, per annotator."""

import pytest
from django.test import Client

from annotation.enums import AssignmentStatus
from annotation.models import Assignment
from config.errors import PermissionDenied
from qa.dashboard import project_progress
from qa.enums import ImageQaStatus
from qa.models import ImageQaState

pytestmark = pytest.mark.django_db


def test_progress_counts_images_assignments_and_annotators(submitted):
    image = submitted.images[0]
    progress = project_progress(user=submitted.users["manager"], project=submitted.project)
    state = ImageQaState.objects.get(image=image).status
    assert progress["images"] == 2 and progress["gold"] == 0
    # The second image has no QA state yet: it is awaiting its annotations.
    assert sum(progress["states"].values()) == 2
    assert progress["states"][ImageQaStatus.AWAITING] == 1 + (state == ImageQaStatus.AWAITING)
    assert progress["states"][state] >= 1
    assert progress["assignments"][AssignmentStatus.SUBMITTED] == 3
    assert progress["assignments"][AssignmentStatus.PENDING] == 3
    assert sum(progress["assignments"].values()) == Assignment.objects.filter(image__project=submitted.project).count()
    rows = {r["username"]: r for r in progress["annotators"]}
    assert sorted(rows) == ["ann_a", "ann_b", "ann_c"]
    assert all(r["open"] == 1 and r["submitted"] == 1 and r["skipped"] == 0 and r["last"] for r in rows.values())


def test_progress_is_for_managers(submitted):
    for name in ("lead", "ml", "ann_a"):
        with pytest.raises(PermissionDenied):
            project_progress(user=submitted.users[name], project=submitted.project)


def test_manage_page_shows_the_progress(submitted):
    client = Client()
    client.force_login(submitted.users["manager"])
    response = client.get(f"/manage/{submitted.project.slug}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="progress"' in html and '<tr data-user="ann_b"><td>ann_b</td><td>1</td><td>1</td><td>0</td>' in html
    assert '<div class="qa-count" data-status="submitted"><strong>3</strong><span>submitted</span></div>' in html
