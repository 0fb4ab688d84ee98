"""The API contract of issue 13 (item 9): JSON names, status codes and roles."""

import io
import json

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.models import Annotation, Job
from qa.metrics import match_instances
from qa.models import ApprovedMask, AuditEvent, GatingPolicy, GoldTruth, QaRun, ReviewDecision
from tests.api.uploads import upload, url
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


def as_user(client, world, name):
    client.force_authenticate(world.users[name])
    return client


def test_get_qa_contract(submitted, api_client):
    image = submitted.images[0]
    body = as_user(api_client, submitted, "lead").get(url("qa", "images", image.pk, "qa")).json()
    assert body["status"] == "complete"
    assert [a["annotator"] for a in body["annotations"]] == ["ann_a", "ann_b", "ann_c"]
    assert {"id", "annotator", "revision"} <= set(body["annotations"][0])
    assert body["consensus"]["n_cells"] == len(body["consensus"]["cells"]) > 0
    assert {"id", "support", "confidence", "agreement"} <= set(body["consensus"]["cells"][0])
    assert body["agreement"]["annotators"] == ["ann_a", "ann_b", "ann_c"]
    assert np.array(body["agreement"]["f1"]).shape == (3, 3)
    assert np.array(body["agreement"]["mean_iou"]).shape == (3, 3)
    assert {"annotation", "annotator", "quality"} <= set(body["scores"][0])
    assert body["flags"] and {"annotation", "annotator", "cell", "kind", "score"} <= set(body["flags"][0])
    assert body["violations"] == [] and body["gold"] is None
    assert body["algorithm"]["version"] == "cellcurate-qa/1" and body["algorithm"]["params"]["iou_threshold"] == 0.5
    assert body["decision"]["outcome"] in ("approve", "needs_review", "reject")
    assert body["decision"]["policy_version"] == 1 and isinstance(body["decision"]["reasons"], list)
    # ML engineers read the same
    ml = as_user(api_client, submitted, "ml").get(url("qa", "images", image.pk, "qa"))
    assert ml.status_code == 200 and ml.json()["consensus"]["n_cells"] == body["consensus"]["n_cells"]


def test_annotator_sees_only_their_own_scores(submitted, api_client):
    image = submitted.images[0]
    client = as_user(api_client, submitted, "ann_b")
    body = client.get(url("qa", "images", image.pk, "qa")).json()
    assert [s["annotator"] for s in body["scores"]] == ["ann_b"]
    assert [a["annotator"] for a in body["annotations"]] == ["ann_b"]
    assert {f["annotator"] for f in body["flags"]} <= {"ann_b"}
    assert body["consensus"] is None and body["agreement"] is None and body["decision"] is None
    assert "ann_a" not in json.dumps(body) and "ann_c" not in json.dumps(body)
    assert client.get(url("qa", "images", image.pk, "qa", "consensus")).status_code == 404
    assert client.get(url("qa", "images", image.pk, "review")).status_code == 403
    assert client.get(url("qa", "review-queue")).status_code == 403
    assert client.get(url("qa", "qa", "agreement")).status_code == 403
    rows = client.get(url("qa", "qa", "annotators")).json()["annotators"]
    assert [r["annotator"] for r in rows] == ["ann_b"]
    before = ReviewDecision.objects.count()
    refused = client.post(url("qa", "images", image.pk, "review"), {"action": "accept_consensus"}, format="json")
    assert refused.status_code == 403 and ReviewDecision.objects.count() == before
    assert client.post(url("qa", "images", image.pk, "qa")).status_code == 403


def test_post_qa_runs_now_as_a_job(submitted, api_client, django_capture_on_commit_callbacks):
    image = submitted.images[0]
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(api_client, submitted, "lead").post(url("qa", "images", image.pk, "qa"))
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "qa.image_qa_run" and job.status == "succeeded"
    assert job.result["qa_run"] == QaRun.objects.order_by("-id").first().pk
    assert QaRun.objects.filter(image=image).count() == 2
    ml = as_user(api_client, submitted, "ml").post(url("qa", "images", image.pk, "qa"))
    assert ml.status_code == 403


def _decode_png(content: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(content)))


def test_consensus_and_approved_files_in_every_format(submitted, api_client):
    image = submitted.images[0]
    client = as_user(api_client, submitted, "lead")
    raw = client.get(url("qa", "images", image.pk, "qa", "consensus"))
    assert raw.status_code == 200
    labels = _decode_png(b"".join(raw.streaming_content))
    assert len(np.unique(labels)) - 1 == QaRun.objects.get().n_cells
    for fmt in ("png", "tiff", "cellpose", "imagej", "geojson", "coco"):
        r = client.get(url("qa", "images", image.pk, "qa", "consensus") + f"?format={fmt}")
        assert r.status_code == 200, (fmt, r.content[:200])
        assert len(r.content) > 0
    bad = client.get(url("qa", "images", image.pk, "qa", "consensus") + "?format=jpeg")
    assert bad.status_code == 400 and "format" in bad.json()
    assert client.get(url("qa", "images", image.pk, "approved")).status_code in (200, 404)
    client.post(url("qa", "images", image.pk, "review"), {"action": "accept_consensus"}, format="json")
    approved = client.get(url("qa", "images", image.pk, "approved") + "?format=png")
    assert approved.status_code == 200
    assert np.array_equal(_decode_png(approved.content), labels)
    prov = client.get(url("qa", "images", image.pk, "approved", "provenance")).json()
    assert prov["decision"]["by"] == "lead" and len(prov["annotations"]) == 3


def test_review_actions_over_the_api(submitted, api_client):
    image = submitted.images[0]
    client = as_user(api_client, submitted, "lead")
    queue = client.get(url("qa", "review-queue") + "?status=needs_review").json()
    assert "results" in queue
    page = client.get(url("qa", "images", image.pk, "review")).json()
    assert {"image", "masks", "qa", "approved", "reviews"} <= set(page)
    ann = Annotation.objects.filter(assignment__image=image).first()
    r = client.post(url("qa", "images", image.pk, "review"),
                    {"action": "accept_annotation", "annotation": ann.pk}, format="json")
    assert r.status_code == 201
    body = r.json()
    assert body["action"] == "accept_annotation" and body["approved_mask"]["sha256"]
    assert body["approved_mask"]["source"] == "annotation"
    edited = png_bytes(submitted.sims[0].labels.astype(np.uint16))
    r = client.post(url("qa", "images", image.pk, "review"),
                    {"action": "accept_edited", "mask": upload("fixed.png", edited)}, format="multipart")
    assert r.status_code == 201 and r.json()["approved_mask"]["source"] == "reviewer_upload"
    r = client.post(url("qa", "images", image.pk, "review"), {"action": "send_back", "annotator": "ann_a"},
                    format="json")
    assert r.status_code == 400 and "comment" in r.json()
    r = client.post(url("qa", "images", image.pk, "review"),
                    {"action": "send_back", "annotator": "ann_a", "comment": "redo the clumps"}, format="json")
    assert r.status_code == 201
    # The annotator sees the comment on the reopened assignment.
    mine = as_user(api_client, submitted, "ann_a").get(url("qa", "assignments")).json()["results"]
    row = next(a for a in mine if a["image"]["id"] == image.pk)
    assert row["comment"] == "redo the clumps" and row["status"] == "pending" and row["priority"] == 2
    r = as_user(api_client, submitted, "lead").post(url("qa", "images", image.pk, "review"),
                                                    {"action": "exclude"}, format="json")
    assert r.status_code == 400 and "reason" in r.json()
    r = client.post(url("qa", "images", image.pk, "review"), {"action": "nonsense"}, format="json")
    assert r.status_code == 400 and "action" in r.json()
    history = client.get(url("qa", "images", image.pk, "review")).json()["reviews"]
    assert [h["action"] for h in history] == ["send_back", "accept_edited", "accept_annotation"]


def test_gating_policies_draft_patch_publish(submitted, api_client, django_capture_on_commit_callbacks):
    client = as_user(api_client, submitted, "lead")
    listed = client.get(url("qa", "gating-policies")).json()["results"]
    assert [p["version"] for p in listed] == [1] and listed[0]["status"] == "published"
    r = client.post(url("qa", "gating-policies"), {"min_agreement": 0.0, "reject_agreement": 0.0,
                                                   "min_annotation_quality": 0.0, "max_flagged_share": 1.0,
                                                   "min_cell_support": 0, "min_cell_confidence": 0.0},
                    format="json")
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["status"] == "draft"
    bad = client.patch(url("qa", "gating-policies", 2), {"min_agreement": 1.5}, format="json")
    assert bad.status_code == 400 and "min_agreement" in bad.json()
    unknown = client.patch(url("qa", "gating-policies", 2), {"colour": "red"}, format="json")
    assert unknown.status_code == 400 and "colour" in unknown.json()
    ok = client.patch(url("qa", "gating-policies", 2), {"title": "lenient", "flagged_cells": "drop"}, format="json")
    assert ok.status_code == 200 and ok.json()["flagged_cells"] == "drop"
    with django_capture_on_commit_callbacks(execute=True):
        pub = client.post(url("qa", "gating-policies", 2, "publish"))
    assert pub.status_code == 202
    job = Job.objects.get(pk=pub.json()["job"]["id"])
    assert job.status == "succeeded" and job.result["outcomes"]["approve"] == 1
    assert GatingPolicy.objects.get(project=submitted.project, version=1).status == "retired"
    frozen = client.patch(url("qa", "gating-policies", 2), {"title": "again"}, format="json")
    assert frozen.status_code == 409
    assert GatingPolicy.objects.get(project=submitted.project, version=2).title == "lenient"
    decision = client.get(url("qa", "images", submitted.images[0].pk, "qa")).json()["decision"]
    assert decision["policy_version"] == 2 and decision["outcome"] == "approve"
    assert ApprovedMask.objects.filter(image=submitted.images[0], policy__version=2).count() == 1
    ml = as_user(api_client, submitted, "ml")
    assert ml.post(url("qa", "gating-policies"), {}, format="json").status_code == 403
    assert ml.get(url("qa", "gating-policies")).status_code == 200


def test_gold_truth_put_and_scoring(submitted, api_client, django_capture_on_commit_callbacks):
    image = submitted.images[0]
    client = as_user(api_client, submitted, "manager")
    truth = submitted.sims[0].labels.astype(np.uint16)
    r = client.put(url("qa", "images", image.pk, "gold"), {"mask": upload("t.png", png_bytes(truth))},
                   format="multipart")
    assert r.status_code == 409  # not a gold image yet
    type(image).objects.filter(pk=image.pk).update(is_gold=True)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.put(url("qa", "images", image.pk, "gold"), {"mask": upload("t.png", png_bytes(truth))},
                       format="multipart")
    assert r.status_code == 200 and r.json()["n_cells"] == len(np.unique(truth)) - 1
    assert GoldTruth.objects.count() == 1
    assert AuditEvent.objects.filter(kind="truth_set").count() == 1
    body = client.get(url("qa", "images", image.pk, "qa")).json()
    assert body["gold"]["truth"] == r.json()["id"]
    scores = {s["annotator"]: s for s in body["gold"]["scores"]}
    assert set(scores) == {"ann_a", "ann_b", "ann_c"}
    assert all(0 <= s["f1"] <= 1 and {"mean_iou", "missed", "spurious", "merged", "split"} <= set(s)
               for s in scores.values())
    for name, score in scores.items():
        mask = submitted.masks[(0, name)]
        assert score["f1"] == pytest.approx(match_instances(truth, mask).f1, abs=1e-6)
    rows = {r["annotator"]: r for r in client.get(url("qa", "qa", "annotators")).json()["annotators"]}
    assert rows["ann_a"]["gold_score"] == pytest.approx(scores["ann_a"]["f1"])
    got = client.get(url("qa", "images", image.pk, "gold")).json()
    assert got["sha256"] == r.json()["sha256"]
    assert as_user(api_client, submitted, "ann_a").get(url("qa", "images", image.pk, "gold")).status_code == 403


def test_agreement_annotators_and_audit(submitted, api_client):
    client = as_user(api_client, submitted, "manager")
    agreement = client.get(url("qa", "qa", "agreement")).json()
    assert agreement["annotators"] == ["ann_a", "ann_b", "ann_c"]
    assert agreement["shared_images"][0][1] == 1 and agreement["f1"][0][0] == 1.0
    run = QaRun.objects.get()
    assert agreement["f1"][0][1] == pytest.approx(run.agreement["f1"][0][1])
    table = client.get(url("qa", "qa", "annotators")).json()["annotators"]
    assert [r["annotator"] for r in table] == ["ann_a", "ann_b", "ann_c"]
    first = table[0]
    assert {"quality", "sensitivity", "false_positive_rate", "boundary_bias", "gold_score",
            "n_annotations", "median_time_s", "history"} <= set(first)
    assert first["n_annotations"] == 1 and len(first["history"]) == 1
    assert first["median_time_s"] == pytest.approx(32.0)
    audit = client.get(url("qa", "audit") + "?kind=gate").json()["results"]
    assert len(audit) == 1 and audit[0]["kind"] == "gate" and audit[0]["links"]["qa_run"] == run.pk
    assert client.get(url("qa", "audit") + "?kind=bogus").status_code == 400
    assert client.get(url("qa", "audit") + "?user=lead").json()["results"] == []
    assert as_user(api_client, submitted, "ann_a").get(url("qa", "audit")).status_code == 403


def test_gold_truth_promoted_from_an_approved_mask(submitted, api_client):
    image = submitted.images[0]
    type(image).objects.filter(pk=image.pk).update(is_gold=True)
    client = as_user(api_client, submitted, "lead")
    approved = client.post(url("qa", "images", image.pk, "review"), {"action": "accept_consensus"},
                           format="json").json()["approved_mask"]
    r = client.put(url("qa", "images", image.pk, "gold"), {"approved_mask": approved["id"]}, format="json")
    assert r.status_code == 200
    assert r.json()["source"] == "approved_mask" and r.json()["approved_mask"] == approved["id"]
    assert r.json()["sha256"] == approved["sha256"]  # same canonical encoding of the same labels
    wrong = client.put(url("qa", "images", image.pk, "gold"), {"approved_mask": 99999}, format="json")
    assert wrong.status_code == 400 and "approved_mask" in wrong.json()
    both = client.put(url("qa", "images", image.pk, "gold"), {}, format="json")
    assert both.status_code == 400 and "mask" in both.json()
    assert GoldTruth.objects.filter(image=image).count() == 1
