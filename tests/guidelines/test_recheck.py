"""The re-check job after publishing: exactly the annotations the new rules would flag."""

import pytest
from django.core.files.storage import default_storage

from annotation.models import Annotation, Job
from guidelines.models import RuleRecheck
from guidelines.tasks import guideline_recheck_task
from tests.api.uploads import url
from tests.factories import AssignmentFactory
from tests.guidelines.helpers import publish_rules, squares, submit

pytestmark = pytest.mark.django_db

NEW_RULES = {"min_area": {"value": 12, "severity": "blocking"},
             "max_holes": {"value": 0, "severity": "warning"}}


def _history(world, api_client):
    """Annotations under v1 (legacy rules): which of them v2's rules flag is known exactly."""
    second = {name: AssignmentFactory(image=world.images[1], annotator=world.users[name])
              for name in ("annotator", "annotator2")}
    made = {}
    # annotator, image 0: revision 1 is too small for v2, revision 2 (the current one) is fine.
    made["superseded"] = submit(api_client, world, squares(3)).json()["id"]
    made["fixed"] = submit(api_client, world, squares(4), base_revision=1).json()["id"]
    # annotator2, image 0: a 9-px cell -> min_area.
    made["small"] = submit(api_client, world, squares(4, 3), user="annotator2").json()["id"]
    # annotator, image 1: a ring with a hole -> max_holes (a warning).
    ring = squares(5)
    ring[3, 3] = 0
    made["hole"] = submit(api_client, world, ring, assignment=second["annotator"]).json()["id"]
    # annotator2, image 1: clean.
    made["clean"] = submit(api_client, world, squares(4, 4), user="annotator2",
                           assignment=second["annotator2"]).json()["id"]
    assert Annotation.objects.count() == 5
    return made, second


def test_publishing_rechecks_older_annotations_and_lists_exactly_the_flagged(
    world, api_client, eager_tasks, django_capture_on_commit_callbacks
):
    made, _ = _history(world, api_client)
    with django_capture_on_commit_callbacks(execute=True):
        v2 = publish_rules(world, NEW_RULES)
    job = Job.objects.get(kind="guidelines.recheck")
    assert (job.status, job.progress_done, job.progress_total) == ("succeeded", 4, 4)
    assert job.params == {"guideline_version_id": v2.pk, "guideline_version": 2}
    assert job.result == {"guideline_version": 2, "checked": 4, "flagged": 2, "blocking": 1,
                          "unreadable": 0, "by_version": {"1": {"checked": 4, "flagged": 2}}}
    rows = {r.annotation_id: r for r in RuleRecheck.objects.filter(guideline_version=v2)}
    assert set(rows) == {made["fixed"], made["small"], made["hole"], made["clean"]}
    flagged = {a for a, r in rows.items() if r.flagged}
    assert flagged == {made["small"], made["hole"]}
    assert [(v["rule"], v["cells"]) for v in rows[made["small"]].violations] == [("min_area", [2])]
    assert (rows[made["hole"]].blocking_count, rows[made["hole"]].warning_count) == (0, 1)

    api_client.force_authenticate(world.users["qa_lead"])
    listed = api_client.get(url("world", "guidelines", 2, "rechecks") + "?flagged=true").json()
    assert [r["annotation"] for r in listed["results"]] == sorted(flagged)
    small = next(r for r in listed["results"] if r["annotation"] == made["small"])
    assert (small["made_under"], small["checked_against"], small["annotator"]) == (1, 2, "annotator2")
    assert small["summary"] == "made under v1; v2 would flag min_area (blocking, cell 2)"
    everything = api_client.get(url("world", "guidelines", 2, "rechecks")).json()
    assert everything["count"] == 4
    detail = api_client.get(url("world", "guidelines", 2)).json()
    assert detail["recheck_job"] == job.pk


def test_annotators_see_only_their_own_recheck_results(
    world, api_client, eager_tasks, django_capture_on_commit_callbacks
):
    made, _ = _history(world, api_client)
    with django_capture_on_commit_callbacks(execute=True):
        publish_rules(world, NEW_RULES)
    api_client.force_authenticate(world.users["annotator"])
    mine = api_client.get(url("world", "guidelines", 2, "rechecks")).json()["results"]
    assert sorted(r["annotation"] for r in mine) == sorted([made["fixed"], made["hole"]])
    api_client.force_authenticate(world.users["manager"])
    assert api_client.get(url("world", "guidelines", 2, "rechecks")).json()["count"] == 4
    api_client.force_authenticate(world.users["non_member"])
    assert api_client.get(url("world", "guidelines", 2, "rechecks")).status_code == 404


def test_rerun_is_for_qa_leads_and_managers_and_replaces_the_rows(
    world, api_client, eager_tasks, django_capture_on_commit_callbacks
):
    made, _ = _history(world, api_client)
    with django_capture_on_commit_callbacks(execute=True):
        publish_rules(world, NEW_RULES)
    # annotator2 fixes the small cell under v2: that revision is no longer re-checked.
    fixed = submit(api_client, world, squares(4, 4), user="annotator2", base_revision=1)
    assert fixed.status_code == 201
    api_client.force_authenticate(world.users["annotator"])
    assert api_client.post(url("world", "guidelines", 2, "rechecks")).status_code == 403
    api_client.force_authenticate(world.users["qa_lead"])
    with django_capture_on_commit_callbacks(execute=True):
        started = api_client.post(url("world", "guidelines", 2, "rechecks"))
    assert started.status_code == 202
    rerun = Job.objects.get(pk=started.json()["id"])
    assert (rerun.status, rerun.result["checked"], rerun.result["flagged"]) == ("succeeded", 3, 1)
    rows = RuleRecheck.objects.filter(guideline_version__version=2)
    assert sorted(rows.values_list("annotation_id", flat=True)) == sorted(
        [made["fixed"], made["hole"], made["clean"]]
    )
    assert api_client.post(url("world", "guidelines", 1, "rechecks")).status_code == 400


def test_an_unreadable_mask_is_reported_and_the_others_are_still_checked(
    world, api_client, eager_tasks, django_capture_on_commit_callbacks
):
    made, _ = _history(world, api_client)
    default_storage.delete(Annotation.objects.get(pk=made["small"]).mask.name)
    with django_capture_on_commit_callbacks(execute=True):
        publish_rules(world, NEW_RULES)
    job = Job.objects.get(kind="guidelines.recheck")
    assert (job.status, job.result["unreadable"], job.result["flagged"]) == ("succeeded", 1, 1)
    row = RuleRecheck.objects.get(annotation_id=made["small"])
    assert (row.flagged, row.violations) == (False, [])
    assert row.error.startswith("the mask could not be read")


def test_publishing_with_nothing_to_recheck_queues_no_job(world, api_client):
    api_client.force_authenticate(world.users["manager"])
    api_client.post(url("world", "guidelines"), {"title": "v2", "body": "b"}, format="json")
    published = api_client.post(url("world", "guidelines", 2, "publish")).json()
    assert published["recheck_job"] is None
    assert not Job.objects.filter(kind="guidelines.recheck").exists()


def test_recheck_task_name_is_pinned():
    assert guideline_recheck_task.name == "guidelines.recheck"


def test_recheck_of_a_deleted_version_fails_its_job_with_the_reason(db):
    from annotation.enums import JobStatus
    from annotation.services.jobs import job_create

    job = job_create(kind="guidelines.recheck", params={"guideline_version_id": 987654})
    result = guideline_recheck_task(job.pk)
    job.refresh_from_db()
    assert result == {"error": "guideline version 987654 no longer exists"}
    assert job.status == JobStatus.FAILED and job.error == result["error"]
