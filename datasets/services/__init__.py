"""Use cases of the datasets app: snapshots (freeze, split, hash) and exports (write, stream)."""

from datasets.services.exports import (
    EXPORT_TASK,
    ExportOutcome,
    check_export_options,
    export_request,
    export_run,
)
from datasets.services.snapshots import (
    CREATE_ROLES,
    READ_ROLES,
    SnapshotResult,
    SnapshotSpec,
    snapshot_create,
    snapshot_update,
)

__all__ = [
    "CREATE_ROLES", "EXPORT_TASK", "READ_ROLES", "ExportOutcome", "SnapshotResult", "SnapshotSpec",
    "check_export_options", "export_request", "export_run", "snapshot_create", "snapshot_update",
]
