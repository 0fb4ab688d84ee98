"""Read-side queries of the annotation app, already scoped to what the user may see.

Scoping rules (DESIGN.md, "Roles"): non-members see nothing of a project; annotators see
only their own assignments, the images assigned to them and their own masks -- never
another annotator's, before or after submitting (blind labeling) -- and never which
images are gold; QA leads, ML engineers and managers see everything in their projects.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Q, QuerySet, Subquery

from annotation.access import check_project_role, project_role_get
from annotation.enums import OVERSIGHT_ROLES, Role
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


#: Filters annotators may not use: which images are gold is blind to them.
_ANNOTATOR_HIDDEN_FILTERS = frozenset({"is_gold"})


def gold_visible(*, user, project: Project) -> bool:
    """Whether the user may learn which images of the project are gold (oversight roles)."""
    return project_role_get(user=user, project=project) in OVERSIGHT_ROLES


def image_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[Image]:
    """Images the user may see; annotators see only theirs and cannot filter on ``is_gold``.

    An omitted filter does not filter (no ``is_gold`` lists gold and other images).
    """
    role = check_project_role(user=user, project=project)
    qs = Image.objects.filter(project=project)
    allowed = IMAGE_FILTERS
    if role == Role.ANNOTATOR:
        qs = qs.filter(assignments__annotator_id=user.pk)
        # Refused exactly like an unknown filter, so the answer says nothing about gold.
        allowed = {k: v for k, v in IMAGE_FILTERS.items() if k not in _ANNOTATOR_HIDDEN_FILTERS}
    filters = {k: v for k, v in (filters or {}).items() if v is not None}
    return qs.filter(**_lookups(filters, allowed)).order_by("id").distinct()


def image_get(*, user, project: Project, image_id: int) -> Image:
    found = image_list(user=user, project=project).filter(pk=image_id).first()
    if found is None:
        raise NotFound(f"image {image_id} not found")
    return found


ASSIGNMENT_FILTERS = {"status": "status", "image": "image_id", "annotator": "annotator_id"}


def _with_annotator_id(filters: dict | None, project: Project) -> dict:
    """``filters`` with ``annotator`` (a user name, or a user id) resolved to a user id.

    Names resolve among the project's members and the users it has assignments for (a
    removed member's work stays findable); an unknown name is a 400 on ``annotator``.
    """
    filters = dict(filters or {})
    value = filters.get("annotator")
    if value is None or isinstance(value, int):
        return filters
    value = str(value)
    in_project = Q(memberships__project=project) | Q(assignments__image__project=project)
    users = get_user_model().objects.filter(in_project)
    user_id = users.filter(username=value).values_list("pk", flat=True).first()
    if user_id is None and value.isdigit():
        user_id = users.filter(pk=int(value)).values_list("pk", flat=True).first()
    if user_id is None:
        raise InvalidInput(
            f"no annotator named {value!r} in project {project.slug!r}", field="annotator"
        )
    filters["annotator"] = user_id
    return filters


def assignment_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[Assignment]:
    role = check_project_role(user=user, project=project)
    qs = Assignment.objects.filter(image__project=project).select_related("image", "annotator")
    if role == Role.ANNOTATOR:
        qs = qs.filter(annotator_id=user.pk)
    filters = _with_annotator_id(filters, project)
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
    """Annotations the user may read; for annotators, blind labeling applies.

    ``filters["latest"]`` keeps only the newest revision of each assignment (what QA reads).
    """
    role = check_project_role(user=user, project=project)
    filters = _with_annotator_id(filters, project)
    if filters.pop("latest", False):
        newest = Annotation.objects.filter(assignment_id=OuterRef("assignment_id")).order_by("-revision")
        qs_latest = Q(revision=Subquery(newest.values("revision")[:1]))
    else:
        qs_latest = Q()
    qs = Annotation.objects.filter(assignment__image__project=project).select_related(
        "assignment", "assignment__image", "guideline_version", "created_by"
    )
    if role not in OVERSIGHT_ROLES:
        # Blind labeling holds after submission too: an annotator who could read a peer's
        # mask of the same image could resubmit it as their own and inflate agreement.
        qs = qs.filter(assignment__annotator_id=user.pk)
    return qs.filter(qs_latest, **_lookups(filters, ANNOTATION_FILTERS)).order_by(
        "assignment_id", "revision"
    )


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
    "annotation_get", "annotation_list", "assignment_get", "assignment_list", "gold_visible",
    "image_get",
    "image_list", "job_get", "job_list", "membership_get", "membership_list", "project_get",
    "project_list", "project_role_get", "user_get_by_username",
]
