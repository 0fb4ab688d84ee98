"""The ML engineer's model pages (``/ml/<slug>/models/``): registry, one model, two compared.

Thin: ``training.selectors`` and ``training.services.model_compare`` in, template out. The
evaluation a run stored with its model (:func:`training.services.registry.evaluation_build`)
is laid out as tables: per IoU threshold, per group (plate group, modality, batch), per
image. For ML engineers and managers (non-members 404, other roles 403).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse

from annotation.access import check_project_role
from annotation.enums import Role
from config.errors import InvalidInput, NotFound
from datasets.views import ML_ROLES
from qa.views import page_project
from training import selectors
from training.services import model_compare
from training.services.registry import summary

#: The headline numbers of :func:`training.services.registry.summary`, with their labels.
HEADLINES = (("mean_ap", "mean AP"), ("ap_50", "AP@0.50"), ("f1_50", "F1@0.50"),
             ("mean_matched_iou", "matched IoU"), ("panoptic_quality", "PQ"))


def _model(request, project, pk):
    try:
        return selectors.model_get(user=request.user, project=project, model_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _headline(pooled: dict | None) -> dict | None:
    if not pooled:
        return None
    ap = pooled["ap"]
    return {"mean_ap": sum(ap) / len(ap), "ap_50": ap[0], "f1_50": pooled["f1"][0],
            "mean_matched_iou": pooled["mean_matched_iou"], "panoptic_quality": pooled["panoptic_quality"]}


def _scores(headline: dict | None) -> list:
    """The headline numbers in :data:`HEADLINES` order (None where not evaluated)."""
    return [(headline or {}).get(key) for key, _ in HEADLINES]


def evaluation_tables(metrics: dict) -> dict | None:
    """A stored evaluation as table rows: per threshold, per group, per image; None if absent."""
    if not metrics or "model" not in metrics:
        return None
    model, base = metrics["model"]["pooled"], (metrics.get("base") or {}).get("pooled")
    per_threshold = []
    for i, t in enumerate(metrics["thresholds"]):
        row = {"threshold": t, "ap": model["ap"][i], "f1": model["f1"][i], "tp": model["tp"][i],
               "fp": model["fp"][i], "fn": model["fn"][i], "image_ap": model["mean_image_ap"][i]}
        if base:
            row.update(base_ap=base["ap"][i], delta_ap=model["ap"][i] - base["ap"][i])
        per_threshold.append(row)
    groups = [{"key": key, "value": value, "n_images": entry["n_images"],
               "model": _scores(_headline(entry["model"])),
               "base": _scores(_headline(entry.get("base"))) if entry.get("base") else None}
              for key, values in sorted((metrics.get("groups") or {}).items())
              for value, entry in sorted(values.items())]
    images = [{"image": r["image"], "n_true": r["n_true"], "n_pred": r["n_pred"], "ap_50": r["ap"][0],
               "f1_50": r["f1"][0], "iou": r["mean_matched_iou"]}
              for r in metrics["model"]["per_image"]]
    return {"split": metrics.get("split"), "n_images": metrics.get("n_images"),
            "model": _scores(_headline(model)), "base": _scores(_headline(base)) if base else None,
            "per_threshold": per_threshold,
            "groups": groups, "images": sorted(images, key=lambda r: r["ap_50"])}


def _config(request, project, *, model=None) -> dict:
    """What ``static/ml/models.js`` needs: API addresses, the model, the CSRF token, the role."""
    def api(name: str, **kwargs) -> str:
        return reverse(name, kwargs={"slug": project.slug, **kwargs})

    urls = {"jobs": reverse("annotation:job-list"), "ranking": api("training:active-learning"),
            "queue": api("training:active-learning-queue"), "review": api("qa-dashboard")}
    if model is not None:
        urls["predict"] = api("training:model-predict", pk=model.pk)
    return {"urls": urls, "model": model.pk if model is not None else None, "csrfToken": get_token(request),
            "canQueue": check_project_role(user=request.user, project=project) == Role.MANAGER}


@login_required
def active_learning_page(request, slug):
    """The images a model is least sure about (unlabelled) or disagrees with QA on (labelled)."""
    project = page_project(request, slug, ML_ROLES)
    models = list(selectors.model_list(user=request.user, project=project))
    raw = request.GET.get("model", "")
    model = None
    if raw:
        if not raw.isdigit():
            return HttpResponseBadRequest("model must be a model id", content_type="text/plain")
        model = _model(request, project, int(raw))
    elif models:
        model = models[0]
    return render(request, "ml/active_learning.html", {
        "project": project, "models": models, "model": model,
        "config": _config(request, project, model=model),
    })


@login_required
def model_registry(request, slug):
    """Every registered model version with its headline numbers, and a form to compare two."""
    project = page_project(request, slug, ML_ROLES)
    models = list(selectors.model_list(user=request.user, project=project))
    return render(request, "ml/models.html", {
        "project": project, "headlines": HEADLINES,
        "models": [{"m": m, "summary": summary(m.metrics), "scores": _scores(summary(m.metrics).get("model"))}
                   for m in models],
    })


@login_required
def model_page(request, slug, pk):
    """One model version: lineage, training options and its evaluation tables."""
    project = page_project(request, slug, ML_ROLES)
    model = _model(request, project, pk)
    others = [m for m in selectors.model_list(user=request.user, project=project) if m.pk != model.pk]
    return render(request, "ml/model.html", {
        "project": project, "model": model, "evaluation": evaluation_tables(model.metrics),
        "headlines": HEADLINES, "others": others, "run": getattr(model, "run", None),
        "config": _config(request, project, model=model),
    })


@login_required
def model_compare_pick(request, slug):
    """The registry's compare form (``?a=&b=`` model ids) sent on to the comparison page."""
    page_project(request, slug, ML_ROLES)
    a, b = request.GET.get("a", ""), request.GET.get("b", "")
    if not (a.isdigit() and b.isdigit()):
        return HttpResponseBadRequest("a and b must be model ids", content_type="text/plain")
    return redirect("ml-model-compare", slug=slug, a=int(a), b=int(b))


@login_required
def model_compare_page(request, slug, a, b):
    """Two model versions side by side (``GET models/<a>/compare/<b>/`` of the API, as a page)."""
    project = page_project(request, slug, ML_ROLES)
    ma, mb = _model(request, project, a), _model(request, project, b)
    try:
        comparison = model_compare(user=request.user, project=project, a=ma, b=mb)
    except InvalidInput as exc:
        raise Http404(exc.message) from exc
    per_threshold = None
    if comparison["per_threshold"]:
        pt = comparison["per_threshold"]
        per_threshold = [{"threshold": t, "a": x, "b": y, "delta": y - x}
                         for t, x, y in zip(pt["thresholds"], pt["ap_a"], pt["ap_b"], strict=True)]
    headline_rows = []
    sa, sb = comparison["a"]["summary"].get("model"), comparison["b"]["summary"].get("model")
    for key, label in HEADLINES:
        x, y = (sa or {}).get(key), (sb or {}).get(key)
        headline_rows.append({"key": key, "label": label, "a": x, "b": y,
                              "delta": None if x is None or y is None else y - x})
    return render(request, "ml/model_compare.html", {
        "project": project, "a": ma, "b": mb, "comparison": comparison, "headline_rows": headline_rows,
        "per_threshold": per_threshold, "models": selectors.model_list(user=request.user, project=project),
    })
