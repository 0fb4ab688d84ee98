"""The manager's page of a project (``/manage/<slug>/``): progress, upload, assignments, members,
settings, audit.

Thin: selectors in, template out; uploads, assignment generation, settings and membership
changes go through the REST API from ``static/manage/manage.js`` (per-file progress needs
XHR). The audit log is filtered server-side (``?kind=&user=&since=&until=``, dates as
YYYY-MM-DD) with the API's own filter serializer. Managers only (non-members 404, other
roles 403).
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse

from annotation import selectors as annotation_selectors
from annotation.enums import Role
from qa import dashboard, selectors
from qa.enums import AuditKind
from qa.serializers import AuditFilter
from qa.services import qa_settings_get
from qa.views import STATUS_LABELS, page_project

AUDIT_LIMIT = 200
AUDIT_FILTERS = ("kind", "user", "since", "until")


def _audit(request, project) -> tuple[list, dict, dict]:
    """The filtered audit rows (latest first), the raw filter values and field errors."""
    raw = {k: request.GET.get(k, "").strip() for k in AUDIT_FILTERS}
    data = {k: v for k, v in raw.items() if v}
    errors = {}
    # A day picked in the form covers the whole day.
    for name, time in (("since", "00:00:00"), ("until", "23:59:59.999999")):
        if name in data:
            try:
                data[name] = f"{date.fromisoformat(data[name]).isoformat()}T{time}"
            except ValueError:
                errors[name] = f"{name} must be a day as YYYY-MM-DD, got {data[name]!r}"
    form = AuditFilter(data={k: v for k, v in data.items() if k not in errors})
    if not form.is_valid() or errors:
        errors.update({k: " ".join(map(str, v)) for k, v in form.errors.items() if k not in errors})
        return [], raw, errors
    rows = selectors.audit_list(user=request.user, project=project, filters=form.validated_data)
    return list(rows[:AUDIT_LIMIT]), raw, {}


@login_required
def manage_home(request, slug):
    project = page_project(request, slug, [Role.MANAGER])

    def api(name: str) -> str:
        return reverse(name, kwargs={"slug": slug})

    config = {
        "project": {"slug": project.slug, "name": project.name},
        "urls": {"images": api("annotation:image-list"), "generate": api("annotation:assignment-generate"),
                 "settings": api("qa:settings"), "project": api("annotation:project-detail"),
                 "members": api("annotation:member-list"), "jobs": reverse("annotation:job-list"),
                 "page": reverse("manage-home", kwargs={"slug": slug})},
        "csrfToken": get_token(request),
        "uploadParallel": settings.CELLCURATE_UPLOAD_PARALLEL,
    }
    audit, audit_filters, audit_errors = _audit(request, project)
    members = list(annotation_selectors.membership_list(user=request.user, project=project))
    progress = dashboard.project_progress(user=request.user, project=project)
    progress["state_rows"] = [(key, STATUS_LABELS[key], n) for key, n in progress["states"].items()]
    progress["assignment_rows"] = [(key, key.replace("_", " "), n) for key, n in progress["assignments"].items()]
    return render(request, "manage/home.html", {
        "progress": progress,
        "project": project, "config": config, "members": members, "roles": [r.value for r in Role],
        "settings": qa_settings_get(actor=request.user, project=project),
        "audit": audit, "audit_filters": audit_filters, "audit_errors": audit_errors,
        "audit_kinds": [k.value for k in AuditKind], "audit_limit": AUDIT_LIMIT,
        "usernames": sorted({m.user.username for m in members}),
    }, status=400 if audit_errors else 200)
