"""Accept with edits from the editor: the review endpoint's rule-check dry run, and the review
editor page (``/qa/<slug>/images/<id>/edit/``) with its roles and starting masks."""

import json

import numpy as np
import pytest
from django.test import Client

from guidelines.services import guideline_version_create, guideline_version_publish
from qa.models import ApprovedMask, AuditEvent, QaRun, ReviewDecision
from qa.services.masks import mask_read
from tests.api.uploads import upload, url
from tests.factories import UserFactory, png_bytes

pytestmark = pytest.mark.django_db


def _publish_min_area(world, value=40):
    version = guideline_version_create(
        actor=world.users["manager"], project=world.project, title="Bigger cells",
        body="Cells have at least 40 px.", rules={"min_area": {"value": value, "severity": "blocking"}},
    )
    return guideline_version_publish(actor=world.users["manager"], version=version)


def _stored():
    return ReviewDecision.objects.count(), ApprovedMask.objects.count(), AuditEvent.objects.count()


def _with_speck(world, image) -> tuple[np.ndarray, int]:
    """The consensus of ``image`` plus one 2 x 2 cell in the background (breaks min_area)."""
    labels = mask_read(QaRun.objects.get(image=image).consensus.name).astype(np.uint16)
    ys, xs = np.nonzero(labels == 0)
    y, x = int(ys[0]), int(xs[0])
    speck = int(labels.max()) + 1
    labels[y:y + 2, x:x + 2] = np.where(labels[y:y + 2, x:x + 2] == 0, speck, labels[y:y + 2, x:x + 2])
    return labels, speck


def test_dry_run_lists_rule_violations_and_stores_nothing(submitted, api_client):
    image = submitted.images[0]
    guideline = _publish_min_area(submitted)
    labels, speck = _with_speck(submitted, image)
    before = _stored()
    api_client.force_authenticate(submitted.users["lead"])
    response = api_client.post(url(submitted.project.slug, "images", image.pk, "review"), {
        "action": "accept_edited", "dry_run": "true", "mask": upload("mask.png", png_bytes(labels)),
    }, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] is True and body["guideline_version"] == guideline.version
    assert body["accepted"] is False and body["n_cells"] == len(np.unique(labels)) - 1
    blocking = [v for v in body["violations"] if v["severity"] == "blocking"]
    assert [v["rule"] for v in blocking] == ["min_area"] and speck in blocking[0]["cells"]
    assert _stored() == before

    # The same mask without the speck passes the check; accepting it for real still works.
    clean = np.where(labels == speck, 0, labels).astype(np.uint16)
    body = api_client.post(url(submitted.project.slug, "images", image.pk, "review"), {
        "action": "accept_edited", "dry_run": "true", "mask": upload("mask.png", png_bytes(clean)),
    }, format="multipart").json()
    assert body["accepted"] is True
    response = api_client.post(url(submitted.project.slug, "images", image.pk, "review"), {
        "action": "accept_edited", "mask": upload("mask.png", png_bytes(labels)), "reason": "kept the speck",
    }, format="multipart")
    assert response.status_code == 201  # rules advise a QA lead; they do not block the decision
    assert np.array_equal(mask_read(ApprovedMask.objects.get(review_decision_id=response.json()["id"]).file.name),
                          labels)


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "accept_consensus", "dry_run": "true"}, "dry_run"),
    ({"action": "accept_edited", "dry_run": "true"}, "mask"),
])
def test_dry_run_bad_input_is_a_field_error(submitted, api_client, body, field):
    api_client.force_authenticate(submitted.users["lead"])
    before = _stored()
    response = api_client.post(url(submitted.project.slug, "images", submitted.images[0].pk, "review"), body, format="multipart")
    assert response.status_code == 400 and field in json.dumps(response.json())
    assert _stored() == before


def test_dry_run_refuses_a_bad_mask_file_by_field(submitted, api_client):
    api_client.force_authenticate(submitted.users["lead"])
    response = api_client.post(url(submitted.project.slug, "images", submitted.images[0].pk, "review"), {
        "action": "accept_edited", "dry_run": "true", "mask": upload("mask.png", png_bytes(np.zeros((5, 5), np.uint16))),
    }, format="multipart")
    assert response.status_code == 400 and "mask" in json.dumps(response.json())


@pytest.mark.parametrize("name", ["ann_b", "ml"])
def test_dry_run_is_for_acting_roles_only(submitted, api_client, name):
    labels, _ = _with_speck(submitted, submitted.images[0])
    api_client.force_authenticate(submitted.users[name])
    response = api_client.post(url(submitted.project.slug, "images", submitted.images[0].pk, "review"), {
        "action": "accept_edited", "dry_run": "true", "mask": upload("mask.png", png_bytes(labels)),
    }, format="multipart")
    assert response.status_code == 403


def _page(user, path):
    client = Client()
    client.force_login(user)
    return client.get(path)


def _config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="workspace-config" type="application/json">') + len(
        '<script id="workspace-config" type="application/json">')
    return json.loads(html[start:html.index("</script>", start)])


def test_review_editor_page_starts_from_the_consensus_or_one_annotation(submitted):
    image = submitted.images[0]
    run = QaRun.objects.get(image=image)
    path = f"/qa/{submitted.project.slug}/images/{image.pk}/edit/"
    response = _page(submitted.users["lead"], path)
    assert response.status_code == 200
    config = _config(response)
    assert config["mode"] == "review" and config["qaRun"] == run.pk and config["ownWork"] is False
    assert config["start"]["kind"] == "consensus"
    assert config["start"]["labels"] == f"/qa/{submitted.project.slug}/images/{image.pk}/consensus/labels/"
    assert config["urls"]["review"] == url(submitted.project.slug, "images", image.pk, "review")
    assert config["project"]["cellClasses"] == []  # an approved mask carries no classes
    k = run.members.count()
    expected = sorted((c for c in run.cells if c["support"] < k or c["confidence"] < 0.5),
                      key=lambda c: (c["confidence"], c["id"]))
    assert [c["id"] for c in config["disputed"]] == [c["id"] for c in expected]
    assert all(c["k"] == k and c["support"] <= k for c in config["disputed"])
    spurious = sorted((f for f in run.flags if f["kind"] == "spurious" and f.get("cell")),
                      key=lambda f: (f["score"], f["annotation"], f["cell"]))
    assert [(c["annotation"], c["label"]) for c in config["leftOut"]] == [(f["annotation"], f["cell"]) for f in spurious]
    assert all(c["labels"].endswith(f"/annotations/{c['annotation']}/labels/?encoding=png") for c in config["leftOut"])

    member = run.members.order_by("position").first()
    config = _config(_page(submitted.users["manager"], f"{path}?from={member.annotation_id}"))
    assert config["start"] == {
        "kind": "annotation", "annotation": member.annotation_id,
        "label": f"{member.annotator.username}'s annotation (r{member.revision})",
        "labels": url(submitted.project.slug, "annotations", member.annotation_id, "labels") + "?encoding=png",
    }
    assert config["disputed"] == [] and config["leftOut"] == []  # only next to the consensus
    assert _page(submitted.users["lead"], f"{path}?from=999999").status_code == 404
    assert _page(submitted.users["lead"], f"{path}?from=<script>").status_code == 404


def test_review_editor_page_roles(submitted):
    image = submitted.images[0]
    path = f"/qa/{submitted.project.slug}/images/{image.pk}/edit/"
    assert _page(submitted.users["ann_a"], path).status_code == 403
    assert _page(submitted.users["ml"], path).status_code == 403
    assert _page(UserFactory(username="outsider"), path).status_code == 404
    assert _page(submitted.users["lead"], f"/qa/{submitted.project.slug}/images/{submitted.images[1].pk}/edit/"
                 ).status_code == 404  # no QA run yet: nothing to edit


def test_review_editor_warns_a_lead_who_annotated_the_image(submitted):
    image = submitted.images[0]
    submitted.project.memberships.filter(user=submitted.users["ann_a"]).update(role="qa_lead")
    response = _page(submitted.users["ann_a"], f"/qa/{submitted.project.slug}/images/{image.pk}/edit/")
    assert response.status_code == 200 and _config(response)["ownWork"] is True
    assert b'id="own-work"' in response.content
