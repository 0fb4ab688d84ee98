"""The manager's page of a project (``/manage/<slug>/``): upload, assignments, members, QA settings, audit.

Thin: selectors in, template out; uploads, assignment generation and settings changes go
through the REST API from ``static/manage/manage.js`` (per-file progress needs XHR).
Managers only (non-members 404, other roles 403).
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
from annotation.enums import Role
from config.errors import NotFound, PermissionDenied
from qa import selectors
from qa.services import qa_settings_get


def _manager_project(request, slug):
    try:
        project = annotation_selectors.project_get(user=request.user, slug=slug)
        check_project_role(user=request.user, project=project, roles=[Role.MANAGER])
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    return project


@login_required
def manage_home(request, slug):
    project = _manager_project(request, slug)

    def api(name: str) -> str:
        return reverse(name, kwargs={"slug": slug})

    config = {
        "project": {"slug": project.slug, "name": project.name},
        "urls": {"images": api("annotation:image-list"), "generate": api("annotation:assignment-generate"),
                 "settings": api("qa:settings")},
        "csrfToken": get_token(request),
    }
    return render(request, "manage/home.html", {
        "project": project, "config": config,
        "members": annotation_selectors.membership_list(user=request.user, project=project),
        "settings": qa_settings_get(actor=request.user, project=project),
        "audit": list(selectors.audit_list(user=request.user, project=project)[:50]),
    })
