"""Server-rendered pages of the annotation app (thin: selectors in, template out).

The annotator's pages: the project list, the task queue of one project (next task, skip
with a reason, what was submitted and any comment sent back) and the workspace, whose
editor is the JavaScript in ``static/annotator/`` configured from ``json_script``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from annotation import selectors, services
from annotation.access import check_project_role
from annotation.enums import AssignmentStatus, Role
from annotation.models import Annotation, Membership
from annotation.services.drafts import draft_get
from config.errors import DomainError, NotFound, PermissionDenied
from guidelines import services as guideline_services
from guidelines.selectors import acknowledgement_exists, guideline_published_get

ASSIST_UNAVAILABLE = "SAM assist is not available on this server."


@login_required
def home(request):
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("project")
        .annotate(
            n_images=Count("project__images", distinct=True),
            n_open=Count(
                "project__images__assignments",
                filter=Q(project__images__assignments__annotator=request.user)
                & Q(project__images__assignments__status__in=[
                    AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS]),
                distinct=True,
            ),
        )
        .order_by("project__slug")
    )
    return render(request, "annotation/home.html", {"memberships": memberships})


def _annotator_project(request, slug):
    """The project, for its annotators only (404 for non-members, 403 for other roles)."""
    try:
        project = selectors.project_get(user=request.user, slug=slug)
        check_project_role(user=request.user, project=project, roles=[Role.ANNOTATOR])
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    return project


def _own_assignment(request, project, pk):
    try:
        return selectors.assignment_get(user=request.user, project=project, assignment_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _latest(field: str):
    return Subquery(
        Annotation.objects.filter(assignment=OuterRef("pk")).order_by("-revision").values(field)[:1]
    )


@login_required
def annotate_queue(request, slug):
    project = _annotator_project(request, slug)
    assignments = (
        selectors.assignment_list(user=request.user, project=project)
        .annotate(
            latest_revision=Max("annotations__revision"),
            latest_instances=_latest("instance_count"),
            latest_time_spent=_latest("time_spent_s"),
        )
        .order_by("-updated_at", "-id")
    )
    groups = {status: [] for status in AssignmentStatus}
    for assignment in assignments:
        groups[AssignmentStatus(assignment.status)].append(assignment)
    return render(request, "annotation/workspace_queue.html", {
        "project": project,
        "open": groups[AssignmentStatus.IN_PROGRESS] + groups[AssignmentStatus.EXPIRED],
        "pending_count": len(groups[AssignmentStatus.PENDING]),
        "submitted": groups[AssignmentStatus.SUBMITTED],
        "skipped": groups[AssignmentStatus.SKIPPED],
    })


@login_required
@require_POST
def annotate_next(request, slug):
    project = _annotator_project(request, slug)
    assignment = services.assignment_next(actor=request.user, project=project)
    if assignment is None:
        messages.info(request, "Nothing left to annotate in this project. Thank you!")
        return redirect("annotate-queue", slug=slug)
    return redirect("annotate-task", slug=slug, pk=assignment.pk)


@login_required
@require_POST
def annotate_skip(request, slug, pk):
    project = _annotator_project(request, slug)
    assignment = _own_assignment(request, project, pk)
    reason = request.POST.get("reason", "").strip()
    try:
        services.assignment_skip(actor=request.user, assignment=assignment, reason=reason)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("annotate-queue", slug=slug)
    messages.info(request, f"Skipped task {assignment.pk} ({assignment.image}).")
    return redirect("annotate-queue", slug=slug)


@login_required
@require_POST
def annotate_acknowledge(request, slug, version):
    project = _annotator_project(request, slug)
    guideline = guideline_published_get(project=project)
    if guideline is None or guideline.version != version:
        messages.error(request, f"Guideline version {version} is not the published one any more.")
    else:
        guideline_services.acknowledgement_create(actor=request.user, version=guideline)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("annotate-queue", kwargs={"slug": slug})
    return redirect(target)


def assist_url(project_slug: str, image_id: int) -> str | None:
    """The image's assist endpoint, or None where the training app is not installed."""
    try:
        return reverse("training:image-assist", kwargs={"slug": project_slug, "pk": image_id})
    except NoReverseMatch:
        return None


def _draft_config(draft, *, base_revision: int) -> dict | None:
    """The draft as the workspace needs it; a model's pre-annotation says which model made it."""
    if draft is None:
        return None
    # getattr: pre-annotation fields arrive with the training app's predictions.
    model = getattr(draft, "model_version", None)
    return {
        "baseRevision": draft.base_revision, "savedAt": draft.saved_at.isoformat(),
        "state": draft.state, "current": draft.base_revision == base_revision,
        "modelAssisted": bool(getattr(draft, "model_assisted", False)),
        "model": f"{model.name} v{model.version}" if model is not None else None,
    }


@login_required
def annotate_task(request, slug, pk):
    project = _annotator_project(request, slug)
    assignment = _own_assignment(request, project, pk)
    guideline = guideline_published_get(project=project)
    if guideline is not None and not acknowledgement_exists(
        user=request.user, guideline_version=guideline
    ):
        return render(request, "annotation/workspace_guideline.html", {
            "project": project, "assignment": assignment, "guideline": guideline,
        })
    image = assignment.image
    latest = assignment.annotations.order_by("-revision").first()
    try:
        draft = draft_get(actor=request.user, assignment=assignment)
    except NotFound:
        draft = None
    base_revision = latest.revision if latest else 0
    def api(name: str, **kwargs) -> str:
        return reverse(f"annotation:{name}", kwargs={"slug": project.slug, **kwargs})

    config = {
        "project": {"slug": project.slug, "name": project.name,
                    "cellClasses": list(project.cell_classes or [])},
        "assignment": {"id": assignment.pk, "status": assignment.status,
                       "comment": assignment.comment,
                       "leaseExpiresAt": assignment.lease_expires_at.isoformat()
                       if assignment.lease_expires_at else None},
        "image": {"id": image.pk, "name": str(image), "width": image.width,
                  "height": image.height, "channels": image.channels, "dtype": image.dtype,
                  "stain": image.stain, "modality": image.modality},
        "latest": {"id": latest.pk, "revision": latest.revision,
                   "instanceClasses": latest.instance_classes} if latest else None,
        "draft": _draft_config(draft, base_revision=base_revision),
        "guideline": {"version": guideline.version, "title": guideline.title,
                      "rules": guideline.rules} if guideline else None,
        "assist": {"url": assist_url(project.slug, image.pk), "note": ASSIST_UNAVAILABLE},
        "urls": {
            "pixels": api("image-pixels", pk=image.pk),
            "draft": api("assignment-draft", pk=assignment.pk),
            "draftLabels": api("assignment-draft-labels", pk=assignment.pk) + "?encoding=png",
            "annotations": api("annotation-list"),
            "latestLabels": api("annotation-labels", pk=latest.pk) + "?encoding=png" if latest else None,
            "skip": reverse("annotate-skip", kwargs={"slug": slug, "pk": assignment.pk}),
            "queue": reverse("annotate-queue", kwargs={"slug": slug}),
        },
        "csrfToken": get_token(request),
    }
    return render(request, "annotation/workspace.html", {
        "project": project, "assignment": assignment, "guideline": guideline,
        "latest": latest, "config": config,
    })
