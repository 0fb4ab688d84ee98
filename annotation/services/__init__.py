"""Use cases of the annotation app, one module per entity; import from here.

Each service runs in a transaction, checks the actor's project role first, and raises
:mod:`config.errors` types (``field=`` names the request field at fault).
"""

from annotation.services.annotations import (
    SubmitResult,
    annotation_submit,
    annotation_submit_labels,
)
from annotation.services.assignments import (
    GENERATE_TASK,
    GenerateResult,
    assignment_next,
    assignment_skip,
    assignments_expire,
    assignments_generate,
    assignments_generate_job,
)
from annotation.services.images import (
    ImageMetadata,
    UploadedImage,
    image_upload,
    images_upload_many,
)
from annotation.services.jobs import job_create, job_fail, job_progress, job_start, job_succeed
from annotation.services.mask_export import RenderedMask, annotation_mask_render, mask_render
from annotation.services.mask_formats import (
    ImportOptions,
    ParsedMask,
    UnknownClasses,
    annotation_import,
)
from annotation.services.projects import (
    membership_add,
    membership_remove,
    membership_update,
    project_create,
    project_update,
)

__all__ = [
    "GENERATE_TASK",
    "GenerateResult",
    "ImageMetadata",
    "ParsedMask",
    "RenderedMask",
    "SubmitResult",
    "UnknownClasses",
    "UploadedImage",
    "annotation_import",
    "ImportOptions",
    "annotation_mask_render",
    "annotation_submit",
    "annotation_submit_labels",
    "assignment_next",
    "assignment_skip",
    "assignments_expire",
    "assignments_generate",
    "assignments_generate_job",
    "image_upload",
    "images_upload_many",
    "job_create",
    "job_fail",
    "job_progress",
    "job_start",
    "job_succeed",
    "mask_render",
    "membership_add",
    "membership_remove",
    "membership_update",
    "project_create",
    "project_update",
]
