"""Read-side queries of the annotation app, already scoped to what the user may see.

Scoping rules (DESIGN.md, "Roles"): non-members see nothing of a project; annotators see
only their own assignments, the images assigned to them, and another annotator's mask of
an image only once they have submitted their own (blind labeling); QA leads, ML
engineers and managers see everything in their projects.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet

from annotation.access import check_project_role, project_role_get
from annotation.enums import OVERSIGHT_ROLES, AssignmentStatus, Role
from annotation.models import Annotation, Assignment, Image, Job, Membership, Project
from config.errors import InvalidInput, NotFound


def project_list(*, user) -> QuerySet[Project]:
    """Projects the user is a member of."""
    return Project.objects.filter(memberships__user_id=user.pk).order_by("slug").distinct()


def project_get(*, user, slug: str) -> Project:
    """A project the user is a member of, or NotFound (non-members learn nothing)."""
    project = Project.objects.filter(slug=slug, memberships__user_id=user.pk).first()
    if project is None:
        raise NotFound(f"project {slug!r} not found")
    return project


def membership_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[Membership]:
    check_project_role(user=user, project=project)
    qs = Membership.objects.filter(project=project).select_related("user").order_by("user__username")
    return qs.filter(**_lookups(filters, {"role": "role"}))


def membership_get(*, user, project: Project, membership_id: int) -> Membership:
    found = membership_list(user=user, project=project).filter(pk=membership_id).first()
    if found is None:
        raise NotFound(f"membership {membership_id} not found")
    return found


def user_get_by_username(*, username: str):
    """The active user with this username, or InvalidInput naming the field."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidInput(f"no active user {username!r}", field="username")
    return user


def _lookups(filters: dict | None, allowed: dict[str, str]) -> dict:
    """Map allow-listed filter names to ORM lookups (the API already refused others)."""
    filters = filters or {}
    unknown = sorted(set(filters) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown filter {', '.join(unknown)}", field=unknown[0])
    return {allowed[name]: value for name, value in filters.items()}


IMAGE_FILTERS = {
    "plate": "plate", "well": "well", "site": "site", "batch": "batch",
    "modality": "modality", "stain": "stain", "is_gold": "is_gold", "sha256": "sha256",
}


def image_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[Image]:
    role = check_project_role(user=user, project=project)
    qs = Image.objects.filter(project=project)
    if role == Role.ANNOTATOR:
        qs = qs.filter(assignments__annotator_id=user.pk)
    return qs.filter(**_lookups(filters, IMAGE_FILTERS)).order_by("id").distinct()


def image_get(*, user, project: Project, image_id: int) -> Image:
    found = image_list(user=user, project=project).filter(pk=image_id).first()
    if found is None:
        raise NotFound(f"image {image_id} not found")
    return found


ASSIGNMENT_FILTERS = {"status": "status", "image": "image_id", "annotator": "annotator_id"}


def assignment_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[Assignment]:
    role = check_project_role(user=user, project=project)
    qs = Assignment.objects.filter(image__project=project).select_related("image", "annotator")
    if role == Role.ANNOTATOR:
        qs = qs.filter(annotator_id=user.pk)
    return qs.filter(**_lookups(filters, ASSIGNMENT_FILTERS)).order_by("id")


def assignment_get(*, user, project: Project, assignment_id: int) -> Assignment:
    found = assignment_list(user=user, project=project).filter(pk=assignment_id).first()
    if found is None:
        raise NotFound(f"assignment {assignment_id} not found")
    return found


ANNOTATION_FILTERS = {
    "assignment": "assignment_id", "image": "assignment__image_id",
    "annotator": "assignment__annotator_id", "source": "source",
    "guideline_version": "guideline_version__version",
}


def annotation_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[Annotation]:
    """Annotations the user may read; for annotators, blind labeling applies."""
    role = check_project_role(user=user, project=project)
    qs = Annotation.objects.filter(assignment__image__project=project).select_related(
        "assignment", "assignment__image", "guideline_version", "created_by"
    )
    if role not in OVERSIGHT_ROLES:
        own_submitted = Assignment.objects.filter(
            image_id=OuterRef("assignment__image_id"), annotator_id=user.pk,
            status=AssignmentStatus.SUBMITTED,
        )
        qs = qs.filter(Q(assignment__annotator_id=user.pk) | Exists(own_submitted))
    return qs.filter(**_lookups(filters, ANNOTATION_FILTERS)).order_by("assignment_id", "revision")


def annotation_get(*, user, project: Project, annotation_id: int) -> Annotation:
    found = annotation_list(user=user, project=project).filter(pk=annotation_id).first()
    if found is None:
        raise NotFound(f"annotation {annotation_id} not found")
    return found


JOB_FILTERS = {"kind": "kind", "status": "status", "project": "project__slug"}


def job_list(*, user, filters: dict | None = None) -> QuerySet[Job]:
    """Jobs the user started, plus jobs of projects where they hold an oversight role."""
    oversight = Membership.objects.filter(
        user_id=user.pk, role__in=[r.value for r in OVERSIGHT_ROLES]
    ).values("project_id")
    qs = Job.objects.filter(Q(created_by_id=user.pk) | Q(project_id__in=oversight))
    return qs.filter(**_lookups(filters, JOB_FILTERS)).select_related("project").order_by("-id")


def job_get(*, user, job_id: int) -> Job:
    found = job_list(user=user).filter(pk=job_id).first()
    if found is None:
        raise NotFound(f"job {job_id} not found")
    return found


__all__ = [
    "annotation_get", "annotation_list", "assignment_get", "assignment_list", "image_get",
    "image_list", "job_get", "job_list", "membership_get", "membership_list", "project_get",
    "project_list", "project_role_get", "user_get_by_username",
]
