"""The datasets API: create/read snapshots, exports (202 + job), streamed download, diff, roles."""

import io
import zipfile

import pytest

from datasets.models import DatasetExport, DatasetSnapshot
from qa.services.review import review_act
from tests.api.uploads import url


def _as(client, world, who):
    client.force_authenticate(world.users[who])
    return client


def _create(client, **body):
    return client.post(url("cells", "datasets"), {"name": "nuclei", **body}, format="json")


def test_ml_engineer_creates_and_qa_lead_reads_a_snapshot(dsworld, api_client):
    c = _as(api_client, dsworld, "ml_engineer")
    r = _create(c, fractions={"train": 0.5, "val": 0.25, "test": 0.25}, seed=3, licence="CC-BY-4.0")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["version"] == 1 and body["n_items"] == 12 and len(body["content_hash"]) == 64
    assert body["leak_check"]["ok"] is True and body["split_options"]["seed"] == 3
    again = _create(c, fractions={"train": 0.5, "val": 0.25, "test": 0.25}, seed=3)
    assert again.status_code == 200 and again.json()["id"] == body["id"]

    lead = _as(api_client, dsworld, "qa_lead")
    detail = lead.get(url("cells", "datasets", body["id"])).json()
    assert len(detail["items"]) == 12 and {i["split"] for i in detail["items"]} == {"train", "val", "test"}
    assert detail["splits"]["counts"] == body["split_counts"]
    assert detail["manifest"]["snapshot"]["content_hash"] == body["content_hash"]
    assert len(detail["manifest"]["items"]) == 12
    assert detail["datasheet"]["totals"]["images"] == 12
    assert detail["datasheet"]["licence"] == "CC-BY-4.0"
    assert "| train | 6 |" in detail["datasheet_markdown"]
    listing = lead.get(url("cells", "datasets")).json()
    assert [s["id"] for s in listing["results"]] == [body["id"]]


@pytest.mark.parametrize("body, field", [
    ({"fractions": {"train": 0.9, "val": 0.2, "test": 0.1}}, "fractions"),
    ({"group_by": "colour"}, "group_by"),
    ({"filters": {"plate": []}}, "filters"),
    ({"filters": {"colour": ["red"]}}, "filters"),
    ({"colour": "red"}, "colour"),
    ({"policy_version": 7}, "policy_version"),
])
def test_bad_snapshot_requests_are_400_naming_the_field(dsworld, api_client, body, field):
    r = _create(_as(api_client, dsworld, "ml_engineer"), **body)
    assert r.status_code == 400, r.json()
    assert field in r.json()
    assert DatasetSnapshot.objects.count() == 0


def test_roles_annotators_403_outsiders_404_leads_cannot_create(dsworld, api_client):
    snap_id = _create(_as(api_client, dsworld, "manager")).json()["id"]
    assert _create(_as(api_client, dsworld, "qa_lead"), name="other").status_code == 403
    ann = _as(api_client, dsworld, "annotator")
    assert ann.get(url("cells", "datasets")).status_code == 403
    assert ann.get(url("cells", "datasets", snap_id)).status_code == 403
    assert ann.post(url("cells", "datasets", snap_id, "exports"), {"format": "coco"}, format="json").status_code == 403
    out = _as(api_client, dsworld, "non_member")
    assert out.get(url("cells", "datasets", snap_id)).status_code == 404
    assert _create(out, name="x").status_code == 404
    lead = _as(api_client, dsworld, "qa_lead")
    assert lead.post(url("cells", "datasets", snap_id, "exports"), {"format": "coco"}, format="json").status_code == 403
    assert DatasetExport.objects.count() == 0
    assert lead.patch(url("cells", "datasets", snap_id), {"licence": "MIT"}, format="json").status_code == 403
    mgr = _as(api_client, dsworld, "manager")
    r = mgr.patch(url("cells", "datasets", snap_id), {"licence": "MIT", "citation": "Lab 2026"}, format="json")
    assert r.status_code == 200 and r.json()["licence"] == "MIT"
    assert mgr.patch(url("cells", "datasets", snap_id), {"name": "renamed"}, format="json").status_code == 400


def test_export_is_202_with_a_job_then_downloads_as_a_streamed_zip(dsworld, api_client, django_capture_on_commit_callbacks):
    c = _as(api_client, dsworld, "ml_engineer")
    snap_id = _create(c).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(url("cells", "datasets", snap_id, "exports"), {"format": "cellpose"}, format="json")
    assert r.status_code == 202, r.json()
    export_id = r.json()["id"]
    assert r.json()["job"]["kind"] == "datasets.export_run"
    lead = _as(api_client, dsworld, "qa_lead")
    detail = lead.get(url("cells", "datasets", snap_id, "exports", export_id)).json()
    assert detail["status"] == "succeeded" and detail["job"]["progress"] == 1.0
    assert detail["download"].endswith(f"/exports/{export_id}/download/")
    resp = lead.get(detail["download"])
    assert resp.status_code == 200 and resp.streaming
    assert resp["Content-Type"] == "application/zip"
    assert 'filename="cells-nuclei-v1-cellpose.zip"' in resp["Content-Disposition"]
    zf = zipfile.ZipFile(io.BytesIO(b"".join(resp.streaming_content)))
    names = zf.namelist()
    assert "cells-nuclei-v1-cellpose/manifest.json" in names
    assert len(names) == detail["n_files"]
    listing = lead.get(url("cells", "datasets", snap_id, "exports")).json()
    assert [e["id"] for e in listing["results"]] == [export_id]


def test_export_requests_are_checked(dsworld, api_client):
    c = _as(api_client, dsworld, "ml_engineer")
    snap_id = _create(c).json()["id"]
    r = c.post(url("cells", "datasets", snap_id, "exports"), {"format": "hdf5"}, format="json")
    assert r.status_code == 400 and "format" in r.json()
    r = c.post(url("cells", "datasets", snap_id, "exports"), {"format": "coco", "options": {"segmentation": "mesh"}},
               format="json")
    assert r.status_code == 400 and "options" in r.json()
    assert c.get(url("cells", "datasets", 9999, "exports")).status_code == 404
    assert DatasetExport.objects.count() == 0


def test_unfinished_export_does_not_download(dsworld, api_client):
    c = _as(api_client, dsworld, "ml_engineer")
    snap_id = _create(c).json()["id"]
    r = c.post(url("cells", "datasets", snap_id, "exports"), {"format": "coco"}, format="json")  # not run: no commit
    assert r.status_code == 202 and r.json()["status"] == "queued"
    d = c.get(url("cells", "datasets", snap_id, "exports", r.json()["id"], "download"))
    assert d.status_code == 409 and "only a finished export downloads" in d.json()["detail"]


def test_diff_between_two_versions_names_the_review_that_changed_a_mask(dsworld, api_client):
    c = _as(api_client, dsworld, "ml_engineer")
    a = _create(c).json()["id"]
    image = dsworld.images[2]
    ann = image.assignments.get(annotator=dsworld.users["annotator"]).annotations.get()
    review_act(actor=dsworld.users["qa_lead"], image=image, action="drop_cells", cells=[1])
    b_resp = _create(c)
    assert b_resp.status_code == 201 and b_resp.json()["version"] == 2
    b = b_resp.json()["id"]
    d = _as(api_client, dsworld, "qa_lead").get(url("cells", "datasets", a, "diff", b)).json()
    assert d["summary"] == {"added": 0, "removed": 0, "changed": 1, "unchanged": 11}
    (ch,) = d["changed"]
    assert ch["image"]["id"] == image.pk and ch["changes"] == ["mask_sha256"]
    assert ch["reasons"][0].startswith("new review decision") and "drop_cells by cells-qa_lead" in ch["reasons"][0]
    assert ann.pk  # the annotation itself is unchanged; the review made the new mask
    assert d["a"]["version"] == 1 and d["b"]["version"] == 2
    assert c.get(url("cells", "datasets", a, "diff", 9999)).status_code == 404
