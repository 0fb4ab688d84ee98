"""Reads of the QA lead's and manager's pages: gate counts over time, one annotator pair's
disagreements, a project's progress.

Selectors only (the pages in :mod:`qa.views` render them); scoped like :mod:`qa.selectors`.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate

from annotation.access import check_project_role
from annotation.enums import AssignmentStatus, Role
from annotation.models import Assignment, Image, Project
from qa.enums import GateOutcome, ImageQaStatus
from qa.models import GateDecision, ImageQaState, QaRun
from qa.selectors import READERS


def status_counts(*, user, project: Project) -> dict[str, int]:
    """How many images are in each QA state now (every state listed, zeros included)."""
    check_project_role(user=user, project=project, roles=READERS)
    counts = Counter(dict(
        ImageQaState.objects.filter(project=project).values_list("status").annotate(n=Count("id"))
    ))
    return {s.value: counts.get(s.value, 0) for s in ImageQaStatus}


def project_progress(*, user, project: Project) -> dict:
    """Where a project stands (managers): images by QA state, assignments by status, and per
    annotator their open, submitted and skipped tasks with the last submission.

    Images without a QA state yet count as awaiting annotations.
    """
    check_project_role(user=user, project=project, roles=[Role.MANAGER])
    images = Image.objects.filter(project=project)
    totals = images.aggregate(total=Count("id"), gold=Count("id", filter=Q(is_gold=True)))
    states = status_counts(user=user, project=project)
    states[ImageQaStatus.AWAITING.value] += totals["total"] - sum(states.values())
    by_status = Counter(dict(
        Assignment.objects.filter(image__project=project).values_list("status").annotate(n=Count("id"))
    ))
    open_ = [AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS, AssignmentStatus.EXPIRED]
    annotators = (
        Assignment.objects.filter(image__project=project)
        .values("annotator__username")
        .annotate(
            open=Count("id", filter=Q(status__in=open_)),
            submitted=Count("id", filter=Q(status=AssignmentStatus.SUBMITTED)),
            skipped=Count("id", filter=Q(status=AssignmentStatus.SKIPPED)),
            last=Max("submitted_at"),
        )
        .order_by("annotator__username")
    )
    return {
        "images": totals["total"], "gold": totals["gold"], "states": states,
        "approved_share": states[ImageQaStatus.APPROVED.value] / totals["total"] if totals["total"] else 0.0,
        "assignments": {s.value: by_status.get(s.value, 0) for s in AssignmentStatus},
        "annotators": [{"username": r["annotator__username"], "open": r["open"], "submitted": r["submitted"],
                        "skipped": r["skipped"], "last": r["last"]} for r in annotators],
    }


def gate_counts_by_day(*, user, project: Project) -> dict:
    """Gate decisions per day and outcome: ``{"days": [iso dates], outcome: [counts]}``."""
    check_project_role(user=user, project=project, roles=READERS)
    rows = (
        GateDecision.objects.filter(image__project=project)
        .annotate(day=TruncDate("created_at")).values("day", "outcome").annotate(n=Count("id"))
    )
    table: dict = defaultdict(Counter)
    for row in rows:
        table[row["day"]][row["outcome"]] += row["n"]
    days = sorted(table)
    return {"days": [d.isoformat() for d in days],
            **{o.value: [table[d][o.value] for d in days] for o in GateOutcome}}


def pair_disagreements(*, user, project: Project, a: str, b: str, limit: int = 50) -> list[dict]:
    """The images both annotators drew (latest QA run), lowest pairwise F1 first."""
    check_project_role(user=user, project=project, roles=READERS)
    runs = QaRun.objects.filter(
        pk__in=ImageQaState.objects.filter(project=project, latest_run__isnull=False).values("latest_run_id")
    ).select_related("image").order_by("id")
    out = []
    for run in runs:
        who = run.agreement.get("annotators", [])
        if a not in who or b not in who or a == b:
            continue
        i, j = who.index(a), who.index(b)
        out.append({
            "image": run.image_id, "name": run.image.original_name or f"image {run.image_id}",
            "f1": run.agreement["f1"][i][j], "mean_iou": run.agreement["mean_iou"][i][j],
            "n_flags": sum(1 for f in run.flags if f.get("annotator") in (a, b)),
        })
    out.sort(key=lambda r: (r["f1"] if r["f1"] is not None else 2.0, r["image"]))
    return out[:limit]



def policy_preview(*, user, project: Project, thresholds: dict) -> dict[str, int]:
    """How many images the thresholds would approve / send to review / reject (latest runs).

    Nothing is stored: the policy is an unsaved instance evaluated by the gate's pure rules.
    """
    from qa.models import GatingPolicy
    from qa.services.gating import gate_evaluate

    check_project_role(user=user, project=project, roles=READERS)
    policy = GatingPolicy(project=project, **thresholds)
    counts = {o.value: 0 for o in GateOutcome}
    runs = QaRun.objects.filter(
        pk__in=ImageQaState.objects.filter(project=project, latest_run__isnull=False)
        .exclude(status=ImageQaStatus.EXCLUDED).values("latest_run_id")
    ).prefetch_related("members__annotator")
    for run in runs:
        counts[gate_evaluate(run, policy).outcome] += 1
    return counts


__all__ = ["gate_counts_by_day", "pair_disagreements", "policy_preview", "status_counts"]
