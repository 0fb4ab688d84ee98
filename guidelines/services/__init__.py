"""Use cases of the guidelines app: versions and acknowledgements, rule checks, re-checks.

Import from here. Each service checks the actor's project role first and raises
:mod:`config.errors` types.
"""

from guidelines.services.checks import (
    RuleViolationsError,
    guideline_rules_check,
    image_pixel_size_um,
)
from guidelines.services.recheck import (
    RECHECK_TASK,
    RecheckResult,
    annotations_to_recheck,
    guideline_recheck_run,
    guideline_recheck_schedule,
    guideline_recheck_start,
)
from guidelines.services.versions import (
    EDIT_ROLES,
    InvalidRules,
    acknowledgement_create,
    guideline_version_create,
    guideline_version_publish,
    guideline_version_update,
)

__all__ = [
    "EDIT_ROLES",
    "RECHECK_TASK",
    "InvalidRules",
    "RecheckResult",
    "RuleViolationsError",
    "acknowledgement_create",
    "annotations_to_recheck",
    "guideline_recheck_run",
    "guideline_recheck_schedule",
    "guideline_recheck_start",
    "guideline_rules_check",
    "guideline_version_create",
    "guideline_version_publish",
    "guideline_version_update",
    "image_pixel_size_um",
]
