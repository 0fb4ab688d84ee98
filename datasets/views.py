"""The ML engineer's page: dataset snapshots, exports and training runs (``/ml/<slug>/``).

Thin: the page is a shell configured by ``json_script``; ``static/ml/ml.js`` reads and acts
through the REST API (``datasets/``, ``exports/``, ``training-runs/``) with the CSRF token.
For ML engineers and managers (non-members 404, other roles 403).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from annotation import selectors as annotation_selectors
from annotation.access import check_project_role
from annotation.enums import Role
from config.errors import NotFound, PermissionDenied
from datasets.enums import ExportFormat

ML_ROLES = [Role.ML_ENGINEER, Role.MANAGER]


def _ml_project(request, slug):
    try:
        project = annotation_selectors.project_get(user=request.user, slug=slug)
        check_project_role(user=request.user, project=project, roles=ML_ROLES)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    return project


def _url(name: str, slug: str) -> str | None:
    try:
        return reverse(name, kwargs={"slug": slug})
    except NoReverseMatch:
        return None


@login_required
def ml_home(request, slug):
    project = _ml_project(request, slug)
    config = {
        "project": {"slug": project.slug, "name": project.name},
        "urls": {
            "snapshots": _url("datasets:snapshot-list", slug),
            "runs": _url("training:run-list", slug),
            "models": _url("training:model-list", slug),
        },
        "exportFormats": [f.value for f in ExportFormat],
        "csrfToken": get_token(request),
    }
    return render(request, "ml/home.html", {"project": project, "config": config})
