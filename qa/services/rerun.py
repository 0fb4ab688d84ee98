"""Use case: run QA again on every image of a project that no person has decided on.

QA runs are immutable, so a run keeps the consensus of its day: the weights of the
annotators' reliability then, and the gold outline biases known then (none before the
first gold image is scored). Re-running the project brings every undecided image up to
date. An image a QA lead decided on (a review decision on its current run) or excluded is
left as it is: a new run would replace the decision's gate state.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from annotation.models import Project
from config.errors import DomainError
from qa.enums import ImageQaStatus, QaTrigger
from qa.models import ImageQaState
from qa.services.project_settings import project_job_request

RERUN_TASK = "qa.project_qa_rerun"


def _decided(state: ImageQaState) -> bool:
    review = state.latest_review
    return state.status == ImageQaStatus.EXCLUDED or (
        review is not None and review.qa_run_id == state.latest_run_id)


def project_qa_rerun(*, project: Project, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run QA (and its follow-up: reliability, gate, qualification) again on every image
    with a QA run that no person has decided on; returns what was done."""
    from qa.services.qa_run import image_qa_run

    states = list(ImageQaState.objects.filter(project=project, latest_run__isnull=False)
                  .select_related("latest_review", "image__project").order_by("image_id"))
    todo = [s for s in states if not _decided(s)]
    outcomes: dict[str, int] = {}
    anchored = 0
    errors = []
    for done, state in enumerate(todo, start=1):
        try:
            with transaction.atomic():
                run = image_qa_run(image=state.image, trigger=QaTrigger.RECOMPUTE)
        except DomainError as exc:  # e.g. its annotations were withdrawn meanwhile
            errors.append({"image": state.image_id, "error": exc.message})
        else:
            gate = run.gate_decisions.order_by("-id").first()
            if gate is not None:
                outcomes[gate.outcome] = outcomes.get(gate.outcome, 0) + 1
            anchored += bool(run.params.get("anchored_to_gold"))
        if progress is not None:
            progress(done, len(todo))
    return {"images": len(states), "rerun": len(todo) - len(errors),
            "kept_decided": len(states) - len(todo), "anchored_to_gold": anchored,
            "outcomes": outcomes, "errors": errors}


def project_qa_rerun_request(*, actor, project: Project):
    """Queue :func:`project_qa_rerun` as a job (QA leads, managers)."""
    return project_job_request(actor=actor, project=project, kind=RERUN_TASK,
                               task="project_qa_rerun_task",
                               message="QA re-run of the undecided images queued",
                               summary="QA re-run of every image no person has decided on requested")
