"""Guideline pages (``/guidelines/<slug>/``): versions, a diff between two, publish, re-check report.

Thin: selectors in, template out. For QA leads, ML engineers and managers (annotators read
the published guideline in their workspace: 403 here; non-members 404). Publishing and
re-running the re-check go through the REST API from ``static/guidelines/guidelines.js``
(managers publish; QA leads and managers re-check).
"""

from __future__ import annotations

import difflib
import json

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse

from annotation.access import check_project_role
from annotation.enums import OVERSIGHT_ROLES
from config.errors import NotFound
from guidelines import selectors
from guidelines.enums import GuidelineStatus
from guidelines.services.recheck import RECHECK_ROLES, recheck_summary
from guidelines.services.versions import EDIT_ROLES
from qa.views import LEAD_ROLES, page_project

PAGE_ROLES = sorted(OVERSIGHT_ROLES)
#: The version's content, compared line by line in this order.
DIFF_FIELDS = (("title", "Title"), ("body", "Text (Markdown source)"), ("rules", "Checked rules"),
               ("changelog", "Changelog"))


def _version(project, number):
    try:
        return selectors.guideline_version_get(project=project, version=number)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _config(request, project) -> dict:
    role = check_project_role(user=request.user, project=project)
    return {
        "urls": {"versions": reverse("guidelines:guideline-list", kwargs={"slug": project.slug}),
                 "jobs": reverse("annotation:job-list"),
                 "page": reverse("guideline-pages", kwargs={"slug": project.slug})},
        "canPublish": role in EDIT_ROLES, "canRecheck": role in RECHECK_ROLES,
        "csrfToken": get_token(request),
    }


@login_required
def guideline_list(request, slug):
    """Every version, oldest first, with a form to compare two of them."""
    project = page_project(request, slug, PAGE_ROLES)
    versions = list(selectors.guideline_version_list(project=project).select_related(
        "created_by", "published_by"))
    jobs = selectors.guideline_recheck_jobs(project=project)
    rows = [{"version": v, "job": jobs.get(v.pk)} for v in reversed(versions)]
    config = _config(request, project)
    return render(request, "guidelines/list.html", {
        "project": project, "rows": rows, "config": config, "can_publish": config["canPublish"],
        "a": versions[-2].version if len(versions) > 1 else None,
        "b": versions[-1].version if versions else None,
    })


@login_required
def guideline_detail(request, slug, version):
    """One version rendered, its rules, and the re-check report of what it flags in older work."""
    project = page_project(request, slug, PAGE_ROLES)
    found = _version(project, version)
    flagged_only = request.GET.get("flagged") == "1"
    rows = selectors.rule_recheck_list(user=request.user, version=found,
                                       filters={"flagged": True} if flagged_only else None)
    report = [{"row": r, "summary": recheck_summary(
        made_under=r.annotation.guideline_version.version if r.annotation.guideline_version else 0,
        checked_against=found.version, violations=r.violations, error=r.error)} for r in rows[:500]]
    job = selectors.guideline_recheck_jobs(project=project).get(found.pk)
    config = _config(request, project)
    config.update(version=found.version, status=found.status, job=job.pk if job else None,
                  jobStatus=job.status if job else None)
    return render(request, "guidelines/detail.html", {
        "project": project, "version": found, "rules_json": json.dumps(found.rules, indent=2, sort_keys=True),
        "report": report, "flagged_only": flagged_only, "job": job, "config": config,
        "can_publish": config["canPublish"] and found.status == GuidelineStatus.DRAFT,
        "can_recheck": config["canRecheck"] and found.status == GuidelineStatus.PUBLISHED,
        "can_review": check_project_role(user=request.user, project=project) in LEAD_ROLES,
        "heading": f"Guideline v{found.version}",
    })


def _lines(version, name: str) -> list[str]:
    value = getattr(version, name)
    if name == "rules":
        return json.dumps(value, indent=2, sort_keys=True).splitlines() if value else []
    return (value or "").splitlines()


def line_diff(old: list[str], new: list[str]) -> list[dict]:
    """Side-by-side rows ``{"op", "a_no", "a", "b_no", "b"}``; op is equal/delete/insert/replace."""
    rows = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            a_no = i1 + k if i1 + k < i2 else None
            b_no = j1 + k if j1 + k < j2 else None
            rows.append({"op": op, "a_no": None if a_no is None else a_no + 1,
                         "a": "" if a_no is None else old[a_no],
                         "b_no": None if b_no is None else b_no + 1,
                         "b": "" if b_no is None else new[b_no]})
    return rows


def _pick(request, name: str, errors: dict) -> int | None:
    raw = request.GET.get(name, "")
    if not raw.isdigit() or int(raw) < 1:
        errors[name] = f"{name} must be a version number (1, 2, …), got {raw!r}"
        return None
    return int(raw)


@login_required
def guideline_diff(request, slug):
    """What changed from version ``a`` to version ``b``: title, Markdown, rules, changelog."""
    project = page_project(request, slug, PAGE_ROLES)
    errors: dict[str, str] = {}
    numbers = {name: _pick(request, name, errors) for name in ("a", "b")}
    versions = {}
    for name, number in numbers.items():
        if number is None:
            continue
        try:
            versions[name] = selectors.guideline_version_get(project=project, version=number)
        except NotFound as exc:
            errors[name] = exc.message
    sections = []
    if not errors:
        for name, label in DIFF_FIELDS:
            rows = line_diff(_lines(versions["a"], name), _lines(versions["b"], name))
            changed = sum(1 for r in rows if r["op"] != "equal")
            sections.append({"name": name, "label": label, "rows": rows, "changed": changed})
    all_versions = list(selectors.guideline_version_list(project=project).values_list("version", flat=True))
    response = render(request, "guidelines/diff.html", {
        "project": project, "errors": errors, "a": versions.get("a"), "b": versions.get("b"),
        "sections": sections, "all_versions": all_versions,
        "raw": {name: request.GET.get(name, "") for name in ("a", "b")},
    }, status=400 if errors else 200)
    return response
