"""The QA lead's pages: the dashboard and the review page of one image (thin: selectors in).

Both are for QA leads and managers (non-members get 404, other roles 403). The review page's
JavaScript (``static/qa/review.js``) reads its configuration from ``json_script`` and acts
through the REST API (``images/<id>/review/``) with the session's CSRF token.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse

from annotation import selectors as annotation_selectors
from annotation.access import check_project_role
from annotation.api.pixels import raw_array_response
from annotation.enums import Role
from annotation.models import Annotation
from annotation.services.pixels import RawArray
from annotation.views import ASSIST_UNAVAILABLE, assist_url
from config.errors import NotFound, PermissionDenied
from guidelines.selectors import guideline_published_get
from qa import dashboard, selectors
from qa.enums import ImageQaStatus, ReviewAction
from qa.models import GatingPolicy, ImageQaState, QaModelReference
from qa.serializers import PolicyInput, ReviewQueueFilter
from qa.services.masks import mask_read

LEAD_ROLES = [Role.QA_LEAD, Role.MANAGER]
STATUS_LABELS = {
    "awaiting": "Awaiting annotations", "needs_review": "Needs review", "approved": "Approved",
    "rejected": "Rejected", "sent_back": "Sent back", "more_annotators": "More annotators",
    "excluded": "Excluded",
}
#: What each gating threshold decides, shown beside it in the policy editor.
THRESHOLD_HELP = {
    "min_agreement": "needs review below this mean pairwise F1 at IoU 0.5 between annotators",
    "reject_agreement": "rejected below this mean pairwise F1",
    "min_cell_support": "a consensus cell drawn by fewer annotators is doubtful",
    "min_cell_confidence": "a consensus cell fused with lower confidence is doubtful",
    "min_annotation_quality": "needs review when an annotation's leave-one-out quality is lower",
    "max_flagged_share": "needs review when a larger share of consensus cells is flagged or doubtful",
    "min_gold_f1": "gold images: needs review when an annotation's F1 against the truth is lower",
    "flagged_cells": "doubtful cells: drop them, ignore them in training, or send the image to review",
    "redundancy_agreement": "one more annotator (up to k max) below this agreement",
    "redundancy_disputed_cells": "one more annotator when more cells than this are disputed",
}
QUEUE_FILTER_FIELDS = ("status", "annotator", "plate", "batch", "modality", "stain")


def page_project(request, slug, roles):
    """The project for a page of ``roles`` (404 for non-members, 403 for other roles).

    Shared by every page module (QA, ML, manager, guideline pages).
    """
    try:
        project = annotation_selectors.project_get(user=request.user, slug=slug)
        check_project_role(user=request.user, project=project, roles=roles)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    return project


def _lead_project(request, slug):
    """The project, for its QA leads and managers."""
    return page_project(request, slug, LEAD_ROLES)


def _lead_run(request, slug, pk):
    """(project, image, its latest QA run) for a QA lead's page of one image; 404 without a run."""
    project = _lead_project(request, slug)
    try:
        image, run, _ = selectors.image_qa_get(user=request.user, project=project, image_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return project, image, run


def _queue(request, project):
    raw = {k: v for k, v in request.GET.items() if k in QUEUE_FILTER_FIELDS and v}
    form = ReviewQueueFilter(data=raw)
    if not form.is_valid():
        return [], raw, {k: " ".join(map(str, v)) for k, v in form.errors.items()}
    filters = {k: v for k, v in form.validated_data.items() if v not in (None, "")}
    rows = list(selectors.review_queue(user=request.user, project=project, filters=filters)[:100])
    return rows, raw, {}


@login_required
def qa_dashboard(request, slug):
    project = _lead_project(request, slug)
    agreement = selectors.project_agreement(user=request.user, project=project)
    annotators = selectors.reliability_table(user=request.user, project=project)
    queue, filters, filter_errors = _queue(request, project)
    pair = None
    a, b = request.GET.get("a"), request.GET.get("b")
    if a and b:
        pair = {"a": a, "b": b, "rows": dashboard.pair_disagreements(user=request.user, project=project, a=a, b=b)}
    names = agreement["annotators"]
    matrix = [
        {"name": row_name, "cells": [
            {"b": col_name, "f1": agreement["f1"][i][j], "iou": agreement["mean_iou"][i][j],
             "shared": agreement["shared_images"][i][j], "self": i == j}
            for j, col_name in enumerate(names)]}
        for i, row_name in enumerate(names)
    ]
    config = {
        "annotators": [{"annotator": r["annotator"], "history": r["history"]} for r in annotators],
        "gates": dashboard.gate_counts_by_day(user=request.user, project=project),
        "pairUrl": reverse("qa-pair", kwargs={"slug": slug}),
        "rerunUrl": reverse("qa:qa-rerun", kwargs={"slug": slug}),
        "jobsUrl": reverse("annotation:job-list"),
        "csrfToken": get_token(request),
    }
    return render(request, "qa/dashboard.html", {
        "project": project, "matrix": matrix, "names": names, "annotators": annotators,
        "status_counts": [(s, STATUS_LABELS[s], n) for s, n in
                          dashboard.status_counts(user=request.user, project=project).items()],
        "queue": queue, "filters": filters, "filter_errors": filter_errors,
        "statuses": [s.value for s in ImageQaStatus], "pair": pair, "config": config,
    })


@login_required
def qa_pair(request, slug):
    """One annotator pair's images, worst first: the fragment the heat map swaps in."""
    project = _lead_project(request, slug)
    a, b = request.GET.get("a", ""), request.GET.get("b", "")
    rows = dashboard.pair_disagreements(user=request.user, project=project, a=a, b=b) if a and b else []
    return render(request, "qa/_pair.html", {"project": project, "pair": {"a": a, "b": b, "rows": rows}})


@login_required
def qa_review(request, slug, pk):
    project, image, run = _lead_run(request, slug, pk)
    state = ImageQaState.objects.filter(image=image).first()
    queue = [s.image_id for s in selectors.review_queue(user=request.user, project=project)[:200]]
    following = [i for i in queue if i != image.pk]
    members = list(run.members.select_related("annotator").order_by("position"))
    reference = _model_reference(run)

    def api(name: str, **kwargs) -> str:
        return reverse(name, kwargs={"slug": slug, **kwargs})

    config = {
        "project": {"slug": project.slug, "name": project.name},
        "image": {"id": image.pk, "name": image.original_name or f"image {image.pk}",
                  "width": image.width, "height": image.height},
        "reviewer": request.user.username,
        "annotations": [{"id": m.annotation_id, "annotator": m.annotator.username, "revision": m.revision,
                         "labels": api("annotation:annotation-labels", pk=m.annotation_id)}
                        for m in members],
        "urls": {
            "review": api("qa:image-review", pk=image.pk),
            "pixels": api("annotation:image-pixels", pk=image.pk),
            "consensusLabels": api("qa-consensus-labels", pk=image.pk),
            "consensusFile": api("qa:image-consensus", pk=image.pk),
            "modelReferenceLabels": api("qa-model-reference-labels", pk=image.pk) if reference else None,
            "dashboard": api("qa-dashboard"),
            "next": api("qa-review", pk=following[0]) if following else None,
        },
        "modelReference": {"name": f"{reference.model_version.name} v{reference.model_version.version}",
                           "nCells": reference.n_cells} if reference else None,
        "actions": [a.value for a in ReviewAction if a != ReviewAction.ACCEPT_EDITED],
        "csrfToken": get_token(request),
    }
    return render(request, "qa/review.html", {
        "project": project, "image": image, "run": run, "state": state, "config": config,
        "members": members,
    })


DISPUTED_CONFIDENCE = 0.5


def _disputed_cells(run, *, k: int) -> list[dict]:
    """Consensus cells worth a look, least confident first: drawn by fewer than all ``k``
    annotators, or fused with confidence below :data:`DISPUTED_CONFIDENCE`."""
    cells = [c for c in run.cells if c["support"] < k or c["confidence"] < DISPUTED_CONFIDENCE]
    return [{"id": c["id"], "support": c["support"], "k": k, "confidence": c["confidence"]}
            for c in sorted(cells, key=lambda c: (c["confidence"], c["id"]))]


def _labels_png_url(slug: str, annotation_id: int) -> str:
    """An annotation's labels as its stored PNG, for the review editor."""
    return reverse("annotation:annotation-labels", kwargs={"slug": slug, "pk": annotation_id}) + "?encoding=png"


def _left_out_cells(run, *, slug: str) -> list[dict]:
    """Cells one annotator drew that the others (mostly) did not, so the consensus left them
    out (``spurious`` flags), the most cell-like first (lowest flag score): a reviewer may add
    one back."""
    rows = [f for f in run.flags if f["kind"] == "spurious" and f.get("cell")]
    return [{"annotation": f["annotation"], "annotator": f["annotator"], "label": f["cell"],
             "score": f["score"],
             "labels": _labels_png_url(slug, f["annotation"])}
            for f in sorted(rows, key=lambda f: (f["score"], f["annotation"], f["cell"]))]


def _edit_start(request, slug, image, members) -> dict:
    """Where the review editor starts: the consensus (default) or one annotation the run used."""
    chosen = request.GET.get("from", "consensus")
    if chosen == "consensus":
        return {"kind": "consensus", "annotation": None, "label": "the consensus",
                "labels": reverse("qa-consensus-labels", kwargs={"slug": slug, "pk": image.pk})}
    member = next((m for m in members if str(m.annotation_id) == chosen), None)
    if member is None:
        raise Http404(f"image {image.pk}'s latest QA run used no annotation {chosen!r}")
    return {"kind": "annotation", "annotation": member.annotation_id,
            "label": f"{member.annotator.username}'s annotation (r{member.revision})",
            "labels": _labels_png_url(slug, member.annotation_id)}


@login_required
def qa_review_edit(request, slug, pk):
    """The annotator's editor in review mode: correct the consensus (or one annotation) and
    accept the result as the approved mask (``accept_edited``), with the rule check on the way."""
    project, image, run = _lead_run(request, slug, pk)
    members = list(run.members.select_related("annotator").order_by("position"))
    start = _edit_start(request, slug, image, members)
    guideline = guideline_published_get(project=project)
    # Consensus ids are those of the starting mask only when it is the consensus.
    disputed = _disputed_cells(run, k=len(members)) if start["kind"] == "consensus" else []
    left_out = _left_out_cells(run, slug=slug) if start["kind"] == "consensus" else []
    own_work = Annotation.objects.filter(assignment__image=image, created_by_id=request.user.pk).exists()
    queue = [s.image_id for s in selectors.review_queue(user=request.user, project=project)[:200]]
    following = [i for i in queue if i != image.pk]
    config = {
        "mode": "review",
        "project": {"slug": project.slug, "name": project.name, "cellClasses": []},
        "image": {"id": image.pk, "name": image.original_name or f"image {image.pk}", "width": image.width,
                  "height": image.height, "channels": image.channels, "dtype": image.dtype,
                  "stain": image.stain, "modality": image.modality},
        "start": start,
        "disputed": disputed,
        "leftOut": left_out,
        "ownWork": own_work,
        "qaRun": run.pk,
        "guideline": {"version": guideline.version, "title": guideline.title,
                      "rules": guideline.rules} if guideline else None,
        "assist": {"url": assist_url(project.slug, image.pk), "note": ASSIST_UNAVAILABLE},
        "urls": {
            "pixels": reverse("annotation:image-pixels", kwargs={"slug": slug, "pk": image.pk}),
            "review": reverse("qa:image-review", kwargs={"slug": slug, "pk": image.pk}),
            "back": reverse("qa-review", kwargs={"slug": slug, "pk": image.pk}),
            "next": reverse("qa-review", kwargs={"slug": slug, "pk": following[0]}) if following else None,
        },
        "csrfToken": get_token(request),
    }
    return render(request, "qa/review_edit.html", {
        "project": project, "image": image, "run": run, "members": members, "start": start,
        "guideline": guideline, "own_work": own_work, "config": config,
        "side_extra": "qa/_review_edit_side.html",
    })


@login_required
def qa_consensus_labels(request, slug, pk):
    """The latest consensus as raw uint16/uint32 ids, shape (1, H, W), like ``annotations/<id>/labels/``."""
    project, _, run = _lead_run(request, slug, pk)
    return _labels_response(request, run.consensus.name, etag=run.consensus_sha256)


def _labels_response(request, name: str, *, etag: str):
    """A stored label image as raw uint16/uint32 ids, shape (1, H, W), for the viewers."""
    labels = mask_read(name)
    dtype = "<u2" if int(labels.max(initial=0)) <= 0xFFFF else "<u4"
    out = labels.astype(dtype, copy=False)
    raw = RawArray(data=out.tobytes(), dtype=out.dtype.name, channels=1, height=out.shape[0], width=out.shape[1])
    return raw_array_response(request, raw, etag=etag)


def _model_reference(run):
    """The run's stored model prediction, or None (no reference model, or it failed)."""
    try:
        reference = run.model_reference
    except QaModelReference.DoesNotExist:
        return None
    return reference if reference.prediction else None


@login_required
def qa_model_reference_labels(request, slug, pk):
    """The reference model's prediction of the latest QA run as raw ids, like the consensus."""
    project, _, run = _lead_run(request, slug, pk)
    reference = _model_reference(run)
    if reference is None:
        raise Http404(f"the latest QA run of image {pk} has no model prediction")
    return _labels_response(request, reference.prediction.name, etag=reference.prediction_sha256)


@login_required
def qa_policies(request, slug):
    """Gating policy versions, an editor of the thresholds and a preview of their effect."""
    project = _lead_project(request, slug)
    versions = list(selectors.policy_list(user=request.user, project=project).select_related(
        "created_by", "published_by"))
    latest = versions[-1] if versions else None
    base = latest.thresholds() if latest else {n: GatingPolicy._meta.get_field(n).get_default()
                                                  for n in GatingPolicy.THRESHOLDS}
    published = next((v for v in reversed(versions) if v.status == "published"), None)
    raw = {k: v for k, v in request.GET.items() if k in GatingPolicy.THRESHOLDS and v != ""}
    form = PolicyInput(data=raw, partial=True)
    errors = {} if form.is_valid() else {k: " ".join(map(str, v)) for k, v in form.errors.items()}
    proposed = {**base, **(form.validated_data if not errors else {})}
    return render(request, "qa/policies.html", {
        "project": project, "versions": versions, "latest": latest, "published": published,
        "fields": [(name, proposed[name], THRESHOLD_HELP[name]) for name in GatingPolicy.THRESHOLDS], "errors": errors,
        "preview": dashboard.policy_preview(user=request.user, project=project, thresholds=proposed),
        "current": dashboard.policy_preview(user=request.user, project=project,
                                            thresholds=published.thresholds()) if published else None,
        "config": {"urls": {"policies": reverse("qa:policy-list", kwargs={"slug": slug})},
                   "draft": latest.version if latest and latest.status == "draft" else None,
                   "csrfToken": get_token(request)},
    })
