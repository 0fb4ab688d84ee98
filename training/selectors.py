"""Read-side queries of the training app, scoped by project role.

ML engineers, managers and QA leads read runs and models; annotators get 403,
non-members 404 (``annotation.access``).
"""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.access import check_project_role
from annotation.models import Project
from config.errors import NotFound
from training.models import ModelVersion, TrainingRun
from training.services.registry import READ_ROLES


def run_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[TrainingRun]:
    check_project_role(user=user, project=project, roles=READ_ROLES)
    qs = TrainingRun.objects.filter(project=project).select_related("snapshot", "model_version", "created_by")
    filters = filters or {}
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    return qs.order_by("-created_at", "-id")


def run_get(*, user, project: Project, run_id: int) -> TrainingRun:
    check_project_role(user=user, project=project, roles=READ_ROLES)
    run = (TrainingRun.objects.filter(project=project, pk=run_id)
           .select_related("project", "snapshot", "model_version", "base_model", "created_by").first())
    if run is None:
        raise NotFound(f"training run {run_id} not found")
    return run


def model_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[ModelVersion]:
    check_project_role(user=user, project=project, roles=READ_ROLES)
    qs = ModelVersion.objects.filter(project=project).select_related("snapshot", "created_by")
    filters = filters or {}
    if filters.get("name"):
        qs = qs.filter(name=filters["name"])
    if filters.get("backbone"):
        qs = qs.filter(backbone=filters["backbone"])
    return qs.order_by("name", "-version")


def model_get(*, user, project: Project, model_id: int, roles=READ_ROLES) -> ModelVersion:
    check_project_role(user=user, project=project, roles=roles)
    model = ModelVersion.objects.filter(project=project, pk=model_id).select_related(
        "project", "snapshot", "parent", "created_by").first()
    if model is None:
        raise NotFound(f"model {model_id} not found")
    return model
