"""The ML engineer's pages (``/ml/<slug>/``): the hub, new snapshots, a snapshot, a diff of two.

Thin: the hub is a shell configured by ``json_script``; ``static/ml/ml.js`` reads and acts
through the REST API (``datasets/``, ``exports/``, ``training-runs/``) with the CSRF token.
The snapshot pages render server-side from ``datasets.selectors``; creating a snapshot
posts to the API from ``static/ml/snapshot_new.js``. For ML engineers and managers
(non-members 404, other roles 403).
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from annotation.enums import Role
from config.errors import InvalidInput, NotFound
from datasets import selectors
from datasets.api.serializers import SnapshotCreateInput
from datasets.enums import ExportFormat, GroupBy, StratifyBy
from datasets.formats.datasheet import datasheet_markdown
from datasets.services import SnapshotSpec
from datasets.services.manifests import FILTER_FIELDS
from qa.views import page_project

ML_ROLES = [Role.ML_ENGINEER, Role.MANAGER]


def _ml_project(request, slug):
    return page_project(request, slug, ML_ROLES)


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
            "snapshotPage": _url("ml-home", slug) + "datasets/",
            "modelPage": _url("ml-models", slug),
        },
        "exportFormats": [f.value for f in ExportFormat],
        "csrfToken": get_token(request),
    }
    return render(request, "ml/home.html", {"project": project, "config": config})


def _spec_input(query) -> tuple[dict, dict]:
    """The snapshot form's query string as the API's create input (``name`` may be blank)."""
    raw = {k: query.get(k, "") for k in ("name", "description", "group_by", "stratify_by", "seed")}
    data: dict = {"name": raw["name"] or "preview", "description": raw["description"],
                  "group_by": raw["group_by"] or GroupBy.PLATE.value,
                  "stratify_by": raw["stratify_by"] or None, "include_gold": query.get("include_gold") == "on",
                  "filters": {}}
    if raw["seed"]:
        data["seed"] = raw["seed"]
    for key in FILTER_FIELDS:
        values = [v.strip() for v in query.get(key, "").split(",") if v.strip()]
        raw[key] = query.get(key, "")
        if values:
            data["filters"][key] = values
    fractions = {k: query.get(k, "") for k in ("train", "val", "test")}
    raw.update(fractions)
    if any(fractions.values()):
        data["fractions"] = fractions
    raw["include_gold"] = data["include_gold"]
    return data, raw


def _errors(detail) -> dict[str, str]:
    out = {}
    for key, value in detail.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}" if key != "fractions" else k: " ".join(map(str, v)) if isinstance(v, list)
                        else str(v) for k, v in value.items()})
        else:
            out[key] = " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return out


@login_required
def snapshot_new(request, slug):
    """Pick approved masks by metadata and see the counts and splits before creating."""
    project = _ml_project(request, slug)
    data, raw = _spec_input(request.GET if request.GET else {"include_gold": "on"})
    form = SnapshotCreateInput(data=data)
    preview, errors = None, {}
    if form.is_valid():
        fields = dict(form.validated_data)
        fractions = fields.pop("fractions", None)
        if fractions is not None:
            fields["fractions"] = (fractions["train"], fractions["val"], fractions["test"])
        try:
            preview = selectors.snapshot_preview(user=request.user, project=project, spec=SnapshotSpec(**fields))
        except InvalidInput as exc:
            errors = {exc.field or "non_field": exc.message}
    else:
        errors = _errors(form.errors)
    return render(request, "ml/snapshot_new.html", {
        "project": project, "raw": raw, "preview": preview, "errors": errors,
        "filters": [(f, raw[f]) for f in FILTER_FIELDS], "group_by": [g.value for g in GroupBy],
        "stratify_by": [s.value for s in StratifyBy],
        "config": {"urls": {"snapshots": _url("datasets:snapshot-list", slug),
                            "page": _url("ml-home", slug) + "datasets/"},
                   "csrfToken": get_token(request)},
    }, status=400 if errors else 200)


@login_required
def snapshot_page(request, slug, pk):
    """One snapshot: identity, splits with the leak check, its items and its datasheet."""
    project = _ml_project(request, slug)
    try:
        snapshot = selectors.snapshot_get(user=request.user, project=project, snapshot_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    rows = selectors.snapshot_rows(snapshot)
    per_split: dict[str, dict] = {}
    for row in rows:
        entry = per_split.setdefault(row["split"], {"images": 0, "cells": 0, "groups": set()})
        entry["images"] += 1
        entry["cells"] += row["mask"]["n_cells"]
        entry["groups"].add(row["group"])
    others = [s for s in selectors.snapshot_list(user=request.user, project=project) if s.pk != snapshot.pk]
    return render(request, "ml/snapshot.html", {
        "project": project, "snapshot": snapshot, "rows": rows[:500], "n_rows": len(rows),
        "splits": [{"name": k, "images": v["images"], "cells": v["cells"], "groups": len(v["groups"])}
                   for k, v in sorted(per_split.items())],
        "datasheet": datasheet_markdown(selectors.snapshot_datasheet(snapshot)), "others": others,
    })


@login_required
def snapshot_diff_page(request, slug):
    """What changed from snapshot ``a`` to snapshot ``b`` (``?a=&b=`` snapshot ids), and why."""
    project = _ml_project(request, slug)
    errors, ids = {}, {}
    for name in ("a", "b"):
        raw = request.GET.get(name, "")
        if raw.isdigit():
            ids[name] = int(raw)
        else:
            errors[name] = f"{name} must be a snapshot id, got {raw!r}"
    diff = None
    if not errors:
        try:
            diff = selectors.snapshot_diff(user=request.user, project=project, a_id=ids["a"], b_id=ids["b"])
        except NotFound as exc:
            errors["snapshot"] = exc.message
    for key in ("selection_changed", "split_options_changed"):
        if diff and key in diff:  # shown as JSON, sorted, one side per line
            diff[key] = {side: json.dumps(value, sort_keys=True) for side, value in diff[key].items()}
    return render(request, "ml/snapshot_diff.html", {
        "project": project, "diff": diff, "errors": errors,
        "snapshots": selectors.snapshot_list(user=request.user, project=project),
        "raw": {name: request.GET.get(name, "") for name in ("a", "b")},
    }, status=400 if errors else 200)
