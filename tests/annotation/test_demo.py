"""``manage.py demo`` builds a usable project and is idempotent."""

from io import StringIO

import pytest
from django.core.management import call_command

from annotation.models import Annotation, Assignment, Image, Membership, Project
from guidelines.models import Acknowledgement, GuidelineVersion

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The demo sets 7 passwords per run; the default hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _run(*args) -> str:
    out = StringIO()
    call_command(
        "demo", "--images", "2", "--size", "64", "--password", "demo-pass-1", *args, stdout=out
    )
    return out.getvalue()


def _counts():
    project = Project.objects.get(slug="demo-nuclei")
    return {
        "members": Membership.objects.filter(project=project).count(),
        "images": Image.objects.filter(project=project).count(),
        "assignments": Assignment.objects.filter(image__project=project).count(),
        "annotations": Annotation.objects.filter(assignment__image__project=project).count(),
        "published": GuidelineVersion.objects.filter(project=project, status="published").count(),
        "acks": Acknowledgement.objects.filter(guideline_version__project=project).count(),
    }


def test_demo_creates_a_project_and_a_second_run_changes_nothing(media_root):
    output = _run()
    first = _counts()
    # 2 images, k=2, gold_share 0.2 rounds to 0 gold: 4 assignments, all submitted
    assert first == {
        "members": 7,
        "images": 2,
        "assignments": 4,
        "annotations": 4,
        "published": 1,
        "acks": 4,
    }
    assert "demo-annotator1  role annotator    password demo-pass-1" in output
    assert "http://127.0.0.1:8000/admin/" in output
    assert "token " in output
    assert _counts() == first
    second = _run()
    assert _counts() == first
    assert "(0 new this run)" in second


def test_demo_users_can_log_in_with_the_printed_password(media_root, client):
    _run()
    assert client.login(username="demo-qa", password="demo-pass-1")


def test_demo_reset_starts_over(media_root):
    _run()
    old = Project.objects.get(slug="demo-nuclei").pk
    output = _run("--reset", "--base-url", "http://127.0.0.1:8011/")
    assert "reset: deleted project demo-nuclei" in output
    # The printed links follow the server's address (make demo passes HOST and PORT).
    assert "http://127.0.0.1:8011/admin/" in output and "8000" not in output
    assert Project.objects.get(slug="demo-nuclei").pk != old
    assert _counts()["annotations"] == 4


def test_demo_admin_is_a_manager_and_every_role_gets_a_first_step(media_root):
    output = _run()
    admin = Membership.objects.get(project__slug="demo-nuclei", user__username="demo-admin")
    assert admin.role == "manager"
    assert "demo-admin       role manager      password demo-pass-1" in output
    steps = output.split("Try first, as each role:\n", 1)[1].splitlines()
    by_user = {line.split()[0]: line for line in steps if line.startswith("  demo-")}
    assert set(by_user) >= {"demo-admin", "demo-manager", "demo-qa", "demo-ml", "demo-annotator1"}
    roles = dict(
        Membership.objects.filter(project__slug="demo-nuclei").values_list("user__username", "role")
    )
    assert {roles[u] for u in by_user} == {"manager", "qa_lead", "ml_engineer", "annotator"}
    assert "/annotations/?latest=true" in by_user["demo-qa"]
    assert "/annotate/demo-nuclei/" in by_user["demo-annotator1"]
    assert "export_annotations --project demo-nuclei" in by_user["demo-ml"]
    assert "/assignments/generate/" in by_user["demo-manager"]
