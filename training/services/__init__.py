"""Use cases of the training app (runs, registry, pre-annotation, assist, active learning)."""

from training.services.registry import code_version, model_compare, model_register
from training.services.runs import RunSpec, run_cancel, run_create, run_execute, runs_reap

__all__ = ["RunSpec", "code_version", "model_compare", "model_register", "run_cancel", "run_create",
           "run_execute", "runs_reap"]
