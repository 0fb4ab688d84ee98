"""Use cases of the QA workflow, one module per concern; import from here.

Each service checks the actor's project role first (QA leads and managers act), runs in
a transaction, and raises :mod:`config.errors` types.
"""

from qa.services.audit import audit_record
from qa.services.gating import gate_evaluate, gate_image, project_regate
from qa.services.gold import gold_current, gold_scores, gold_set
from qa.services.hooks import annotation_submitted, qa_run_enqueue, qa_run_request
from qa.services.policies import (
    policy_create,
    policy_current,
    policy_get,
    policy_publish,
    policy_update,
)
from qa.services.project_settings import (
    qa_settings_get,
    qa_settings_update,
    reliability_recompute_request,
)
from qa.services.qa_run import ALGORITHM_VERSION, analyse, annotations_for_qa, image_qa_run
from qa.services.qualification import (
    guideline_version_for_requalification,
    qualification_list,
    qualified_annotator_ids,
    requalification_require,
)
from qa.services.redundancy import annotator_request, redundancy_check
from qa.services.reliability import (
    reliability_apply_run,
    reliability_recompute,
    reliability_weights,
)
from qa.services.rerun import project_qa_rerun, project_qa_rerun_request
from qa.services.review import review_act, review_edit_check

__all__ = [
    "ALGORITHM_VERSION", "analyse", "annotation_submitted", "annotations_for_qa",
    "annotator_request", "audit_record", "gate_evaluate", "gate_image", "gold_current",
    "gold_scores", "gold_set", "guideline_version_for_requalification", "image_qa_run", "policy_create", "policy_current", "policy_get",
    "policy_publish", "policy_update", "project_qa_rerun", "project_qa_rerun_request", "project_regate", "qa_run_enqueue", "qa_run_request",
    "qualification_list", "qualified_annotator_ids", "redundancy_check", "reliability_apply_run",
    "reliability_recompute", "reliability_recompute_request", "qa_settings_get", "qa_settings_update", "reliability_weights", "requalification_require", "review_act", "review_edit_check",
]
