"""Use cases of snapshots: freeze approved masks into a versioned, split, hashed dataset."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Max

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.models import Project
from config.errors import InvalidInput
from datasets.enums import GroupBy, StratifyBy
from datasets.formats.manifest import content_hash
from datasets.models import DatasetSnapshot, SnapshotItem
from datasets.services.manifests import FILTER_FIELDS, group_key, manifest_row, unique_names
from datasets.splits import check_fractions, check_leaks, split_items
from qa.models import GatingPolicy
from qa.selectors import approved_masks_current

#: Who may create snapshots and exports, and who may read them.
CREATE_ROLES = (Role.ML_ENGINEER, Role.MANAGER)
READ_ROLES = (Role.ML_ENGINEER, Role.MANAGER, Role.QA_LEAD)
SNAPSHOT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SnapshotSpec:
    """What to freeze and how to split it (the API's and the CLI's input)."""

    name: str
    description: str = ""
    policy_version: int | None = None
    include_gold: bool = True
    filters: Mapping[str, list[str]] = field(default_factory=dict)
    group_by: str = GroupBy.PLATE.value
    stratify_by: str | None = None
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    licence: str = ""
    citation: str = ""


@dataclass(frozen=True)
class SnapshotResult:
    snapshot: DatasetSnapshot
    created: bool


def _check_spec(spec: SnapshotSpec, project: Project) -> None:
    if not spec.name or len(spec.name) > 100 or not all(c.isalnum() or c in "-_" for c in spec.name):
        raise InvalidInput("name must be 1-100 letters, digits, '-' or '_'", field="name")
    if spec.group_by not in {g.value for g in GroupBy}:
        raise InvalidInput(f"group_by must be one of {[g.value for g in GroupBy]}", field="group_by")
    if spec.stratify_by is not None and spec.stratify_by not in {s.value for s in StratifyBy}:
        raise InvalidInput(f"stratify_by must be one of {[s.value for s in StratifyBy]} or null",
                           field="stratify_by")
    try:
        check_fractions(spec.fractions)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="fractions") from exc
    unknown = sorted(set(spec.filters) - set(FILTER_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown filters {unknown}; use {list(FILTER_FIELDS)}", field="filters")
    for key, values in spec.filters.items():
        if not isinstance(values, (list, tuple)) or not values or not all(isinstance(v, str) for v in values):
            raise InvalidInput(f"filter {key!r} must be a non-empty list of strings", field="filters")
    if spec.policy_version is not None and not GatingPolicy.objects.filter(
        project=project, version=spec.policy_version
    ).exclude(status="draft").exists():
        raise InvalidInput(f"gating policy v{spec.policy_version} is not published in this project",
                           field="policy_version")


def _selection(spec: SnapshotSpec, project: Project) -> dict:
    return {
        "project": project.slug,
        "policy_version": spec.policy_version,
        "include_gold": spec.include_gold,
        "filters": {k: sorted(v) for k, v in sorted(spec.filters.items())},
        "default_class": project.cell_classes[0] if project.cell_classes else "cell",
        "cell_classes": list(project.cell_classes or []),
    }


def snapshot_rows(*, project: Project, spec: SnapshotSpec) -> tuple[dict, list[dict]]:
    """The snapshot's header and manifest rows (split, group set), sorted by image sha256."""
    masks = approved_masks_current(project=project, policy_version=spec.policy_version,
                                   include_gold=spec.include_gold)
    for key, values in spec.filters.items():
        masks = masks.filter(**{f"image__{key}__in": list(values)})
    masks = masks.select_related(
        "image", "qa_run", "gate_decision", "review_decision__reviewer", "annotation", "policy",
    )
    rows = sorted((manifest_row(am) for am in masks), key=lambda r: r["image"]["sha256"])
    unique_names(rows)
    images = {am.image_id: am.image for am in masks}
    groups = [group_key(images[r["image"]["id"]], spec.group_by) for r in rows]
    strata = None if spec.stratify_by is None else [r["image"][spec.stratify_by] or "(none)" for r in rows]
    plan = split_items(groups, fractions=spec.fractions, strata=strata, seed=spec.seed)
    for row, group, split in zip(rows, groups, plan.splits, strict=True):
        row["group"] = group
        row["split"] = split
    leak = check_leaks(plan.splits, groups)
    warnings = list(plan.warnings)
    own = sum(1 for g in groups if g.startswith("image:"))
    if own and spec.group_by != GroupBy.IMAGE:
        warnings.append(f"{own} image(s) have no {spec.group_by}; each is its own group")
    header = {
        "format_version": SNAPSHOT_FORMAT_VERSION,
        "selection": _selection(spec, project),
        "split": {"group_by": spec.group_by, "stratify_by": spec.stratify_by,
                  "fractions": list(plan.fractions), "seed": spec.seed, "method": plan.method},
        "split_counts": plan.counts(),
        "leak_check": leak.as_dict(),
        "warnings": warnings,
    }
    return header, rows


def snapshot_create(*, actor, project: Project, spec: SnapshotSpec) -> SnapshotResult:
    """Freeze the project's approved masks matching ``spec`` as the next version of ``spec.name``.

    Preconditions: the actor is an ML engineer or manager of the project; at least one
    approved mask matches. When the latest version of that name has the same content
    hash, it is returned instead (``created=False``): nothing changed to snapshot.
    """
    check_project_role(user=actor, project=project, roles=CREATE_ROLES)
    _check_spec(spec, project)
    header, rows = snapshot_rows(project=project, spec=spec)
    if not rows:
        raise InvalidInput("no approved masks match this selection; nothing to snapshot", field="filters")
    digest = content_hash(header, rows)
    for _ in range(3):  # two concurrent creators race for the next version number
        try:
            with transaction.atomic():
                return _store(actor=actor, project=project, spec=spec, header=header, rows=rows,
                              digest=digest)
        except IntegrityError:
            continue
    raise InvalidInput("could not allocate a snapshot version; try again", field="name")


def _store(*, actor, project, spec, header, rows, digest) -> SnapshotResult:
    previous = (
        DatasetSnapshot.objects.select_for_update().filter(project=project, name=spec.name)
        .order_by("-version").first()
    )
    if previous is not None and previous.content_hash == digest:
        return SnapshotResult(previous, False)
    version = (DatasetSnapshot.objects.filter(project=project, name=spec.name)
               .aggregate(v=Max("version"))["v"] or 0) + 1
    snapshot = DatasetSnapshot.objects.create(
        project=project, name=spec.name, version=version, description=spec.description,
        licence=spec.licence, citation=spec.citation, content_hash=digest,
        selection=header["selection"], split_options=header["split"],
        split_counts=header["split_counts"], leak_check=header["leak_check"],
        warnings=header["warnings"], n_items=len(rows),
        n_cells=sum(int(r["mask"]["n_cells"]) for r in rows), supersedes=previous, created_by=actor,
    )
    SnapshotItem.objects.bulk_create(
        SnapshotItem(
            snapshot=snapshot, image_id=r["image"]["id"], approved_mask_id=r["mask"]["approved_mask"],
            split=r["split"], group=r["group"][:250], image_sha256=r["image"]["sha256"],
            mask_sha256=r["mask"]["sha256"], n_cells=r["mask"]["n_cells"], row=r,
        )
        for r in rows
    )
    return SnapshotResult(snapshot, True)


def snapshot_update(*, actor, snapshot: DatasetSnapshot, licence: str | None = None,
                    citation: str | None = None) -> DatasetSnapshot:
    """Fill in the licence and citation (managers only); the content and its hash never change."""
    check_project_role(user=actor, project=snapshot.project, roles=[Role.MANAGER])
    fields = []
    if licence is not None:
        if len(licence) > 200:
            raise InvalidInput("licence is longer than 200 characters", field="licence")
        snapshot.licence = licence
        fields.append("licence")
    if citation is not None:
        snapshot.citation = citation
        fields.append("citation")
    if fields:
        snapshot.save(update_fields=fields)
    return snapshot


def snapshot_header(snapshot: DatasetSnapshot) -> dict:
    """The header the content hash was computed over (stored fields, same shape)."""
    return {
        "format_version": SNAPSHOT_FORMAT_VERSION,
        "selection": snapshot.selection,
        "split": snapshot.split_options,
        "split_counts": snapshot.split_counts,
        "leak_check": snapshot.leak_check,
        "warnings": snapshot.warnings,
    }
