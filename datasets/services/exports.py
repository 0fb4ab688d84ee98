"""Use cases of exports: request one (a job), and write it (the Celery task's body).

An export is written item by item through the ``exports`` storage, each file atomically
(see :mod:`datasets.storage`), so memory stays flat in the number of images. It is
idempotent: a retry after a killed worker rewrites the same deterministic bytes over the
same names (or skips files already there), and only one attempt ever marks it
succeeded; the file list and its sha256 sums are recorded only then, so a half-written
export is never offered for download.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from annotation.access import check_project_role
from annotation.enums import JOB_FINISHED
from annotation.imagefiles import read_image
from annotation.masks import read_label_image
from annotation.models import Job
from annotation.services.jobs import job_create, job_fail, job_progress, job_start, job_succeed
from config.errors import Conflict, InvalidInput
from datasets.enums import ExportFormat, ExportStatus
from datasets.formats.cellpose import CELLPOSE_IMAGE_EXTS, cellpose_copy_files, cellpose_item_files
from datasets.formats.coco import COCO_SEGMENTATIONS, CocoBuilder
from datasets.formats.datasheet import datasheet_markdown
from datasets.formats.items import IGNORE_MODES, ExportItem
from datasets.formats.manifest import canonical_json, sha256_bytes
from datasets.formats.ome_tiff import ome_tiff_item_files
from datasets.formats.ome_zarr import ome_zarr_item_files
from datasets.models import DatasetExport, DatasetSnapshot, SnapshotItem
from datasets.services.snapshots import CREATE_ROLES
from datasets.storage import export_storage, temp_files_under

logger = logging.getLogger(__name__)

EXPORT_TASK = "datasets.export_run"
_PROGRESS_SECONDS = 0.5
_WRITERS = 8
_MAX_PENDING = 32
_PREPARERS = 4
_LOOKAHEAD = 8
_OPTION_DEFAULTS = {"ignore": "keep", "segmentation": "rle", "seg_npy": False}


@dataclass(frozen=True)
class ExportOutcome:
    export: DatasetExport
    written: int
    skipped: int


def check_export_options(format: str, options: dict | None) -> dict:
    """Validated options of a format, defaults filled in (400 naming the option otherwise)."""
    if format not in {f.value for f in ExportFormat}:
        raise InvalidInput(f"format must be one of {[f.value for f in ExportFormat]}", field="format")
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(_OPTION_DEFAULTS))
    if unknown:
        raise InvalidInput(f"unknown options {unknown}; known: {sorted(_OPTION_DEFAULTS)}", field="options")
    out = {**_OPTION_DEFAULTS, **opts}
    if out["ignore"] not in IGNORE_MODES:
        raise InvalidInput(f"ignore must be one of {list(IGNORE_MODES)}", field="options")
    if out["segmentation"] not in COCO_SEGMENTATIONS:
        raise InvalidInput(f"segmentation must be one of {list(COCO_SEGMENTATIONS)}", field="options")
    if not isinstance(out["seg_npy"], bool):
        raise InvalidInput("seg_npy must be true or false", field="options")
    return out


def export_request(*, actor, snapshot: DatasetSnapshot, format: str, options: dict | None = None,
                   enqueue: bool = True) -> DatasetExport:
    """Queue an export of ``snapshot`` in ``format`` as a job (ML engineers and managers).

    ``enqueue=False`` only records it (the CLI then runs :func:`export_run` itself).
    """
    from datasets.tasks import export_run_task

    check_project_role(user=actor, project=snapshot.project, roles=CREATE_ROLES)
    opts = check_export_options(format, options)
    with transaction.atomic():
        job = job_create(kind=EXPORT_TASK, project=snapshot.project, created_by=actor,
                         total=snapshot.n_items, params={"snapshot": snapshot.pk, "format": format},
                         message=f"export of {snapshot} as {format} queued")
        export = DatasetExport.objects.create(snapshot=snapshot, format=format, options=opts, job=job,
                                              created_by=actor)
        export.prefix = f"exports/{snapshot.project.slug}/{snapshot.name}-v{snapshot.version}/{export.pk}-{format}/"
        export.save(update_fields=["prefix"])
        job.params = {**job.params, "export": export.pk}
        job.save(update_fields=["params"])
        if enqueue:
            transaction.on_commit(lambda: export_run_task.delay(export.pk))
    return export


# ------------------------------------------------------------------------ items


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def export_item(row: dict, *, need_pixels: bool, pixel_size_um: float | None = None) -> ExportItem:
    """The :class:`ExportItem` of a manifest row: mask decoded, image bytes (and pixels)."""
    max_pixels = settings.CELLCURATE_MAX_IMAGE_PIXELS
    image_bytes = _verified(row["image"]["file"], row["image"]["sha256"], f"image {row['image']['id']}")
    mask_bytes = _verified(row["mask"]["file"], row["mask"]["sha256"], f"approved mask {row['mask']['approved_mask']}")
    labels = read_label_image(mask_bytes, max_pixels=max_pixels)
    pixels = read_image(image_bytes, max_pixels=max_pixels)[0] if need_pixels else None
    ext = f".{row['image']['ext']}" if row["image"]["ext"] else None
    return ExportItem(
        name=row["name"], split=row["split"], labels=labels, image=pixels, image_bytes=image_bytes,
        image_ext=ext, classes={int(k): v for k, v in row["cell_classes"].items()},
        ignore=frozenset(row["ignore_cells"]), cells={int(k): v for k, v in row["cells"].items()},
        pixel_size_um=pixel_size_um or row["image"]["pixel_size_um"],
        channels=row["image"]["channels"], pages=row["image"]["pages"],
    )


def _verified(name: str, sha256: str, what: str) -> bytes:
    data = _read(name)
    actual = sha256_bytes(data)
    if actual != sha256:
        raise Conflict(f"{what} changed in storage (sha256 {actual[:12]}...); "
                       "the snapshot cannot be exported faithfully")
    return data


def cellpose_copies_masks(export: DatasetExport) -> bool:
    """Whether a Cellpose export can copy every stored mask as-is (all PNG, nothing to drop)."""
    if export.format != ExportFormat.CELLPOSE:
        return False
    items = SnapshotItem.objects.filter(snapshot=export.snapshot)
    if items.exclude(row__mask__file__iendswith=".png").exists():
        return False
    rows_ext = items.values_list("row__image__ext", flat=True).distinct()
    if any(f".{ext}" not in CELLPOSE_IMAGE_EXTS for ext in rows_ext):
        return False
    return export.options.get("ignore") == "keep" or not items.exclude(row__ignore_cells=[]).exists()


def _prepare(export: DatasetExport, row: dict, *, copy: bool) -> tuple[dict[str, bytes] | ExportItem, dict[str, str]]:
    """One item's files (or, for COCO, its :class:`ExportItem`) and the sha256 already known.

    Runs on a worker thread: storage reads, hashing, decoding and encoding release the GIL.
    """
    fmt, opts = export.format, export.options
    default_class = export.snapshot.selection.get("default_class") or "cell"
    if copy:
        files = cellpose_copy_files(
            name=row["name"], split=row["split"], image_ext=f".{row['image']['ext']}",
            image_bytes=_verified(row["image"]["file"], row["image"]["sha256"], f"image {row['image']['id']}"),
            mask_png=_verified(row["mask"]["file"], row["mask"]["sha256"],
                               f"approved mask {row['mask']['approved_mask']}"),
        )
        image_rel, mask_rel = list(files)
        known = {image_rel: row["image"]["sha256"], mask_rel: row["mask"]["sha256"]}
        if opts["seg_npy"]:
            item = export_item(row, need_pixels=False)
            files.update({k: v for k, v in cellpose_item_files(item, seg_npy=True).items() if k.endswith("_seg.npy")})
        return files, known
    if fmt == ExportFormat.CELLPOSE:
        need = row["image"]["ext"] and f".{row['image']['ext']}" not in CELLPOSE_IMAGE_EXTS
        return cellpose_item_files(export_item(row, need_pixels=bool(need)), ignore=opts["ignore"],
                                   seg_npy=opts["seg_npy"]), {}
    if fmt == ExportFormat.COCO:
        return export_item(row, need_pixels=f".{row['image']['ext']}" not in CELLPOSE_IMAGE_EXTS), {}
    item = export_item(row, need_pixels=True)
    if fmt == ExportFormat.OME_TIFF:
        return ome_tiff_item_files(item, ignore=opts["ignore"]), {}
    return ome_zarr_item_files(item, ignore=opts["ignore"], default_class=default_class), {}


def _rows(snapshot: DatasetSnapshot) -> Iterator[dict]:
    # Streamed from the database in chunks: memory does not grow with the snapshot.
    qs = SnapshotItem.objects.filter(snapshot=snapshot).order_by("image_sha256").values_list("row", flat=True)
    yield from qs.iterator(chunk_size=200)


# ------------------------------------------------------------------------ run


def _claim(export_id: int) -> DatasetExport | None:
    with transaction.atomic():
        export = DatasetExport.objects.select_for_update().select_related("snapshot__project").get(pk=export_id)
        if export.status == ExportStatus.SUCCEEDED:
            return None
        export.status = ExportStatus.RUNNING
        export.attempts += 1
        export.error = ""
        export.save(update_fields=["status", "attempts", "error"])
    return export


def _job_call(fn: Callable, **kwargs) -> None:
    try:
        fn(**kwargs)
    except Conflict:
        # The job was finished by another attempt (or failed by hand): the export row decides.
        logger.info("job %s already finished; export continues", kwargs.get("job_id"))


def export_run(*, export_id: int, progress: Callable[[int, int], None] | None = None) -> ExportOutcome:
    """Write the export's files, manifest and datasheet; mark it succeeded exactly once.

    Safe to call again after a crash at any point: files already in storage (each written
    atomically) are kept, the rest written, and a finished export is left alone.
    """
    export = _claim(export_id)
    if export is None:
        done = DatasetExport.objects.get(pk=export_id)
        return ExportOutcome(done, 0, 0)
    snapshot = export.snapshot
    storage = export_storage()
    stale = temp_files_under(storage, export.prefix)
    for name in stale:  # left by a killed attempt; never part of the export
        storage.delete(name)
    job_id = export.job_id
    if job_id and not Job.objects.filter(pk=job_id, status__in=list(JOB_FINISHED)).exists():
        _job_call(job_start, job_id=job_id, total=snapshot.n_items,
                  message=f"writing {snapshot} as {export.format} (attempt {export.attempts})")
    files: dict[str, dict] = {}
    counts = {"written": 0, "skipped": 0}
    resume = export.attempts > 1
    pending: deque[Future] = deque()
    ahead: deque[tuple[dict, Future]] = deque()

    def settle(future: Future) -> None:
        counts["written" if future.result() else "skipped"] += 1

    # Writes run on a few threads: each file's fsync (local) or PUT (S3) waits on I/O, so
    # they overlap with preparing the next item. At most _MAX_PENDING files are in flight,
    # which bounds memory whatever the number of images.
    with (ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="export-write") as pool,
          ThreadPoolExecutor(max_workers=_PREPARERS, thread_name_prefix="export-read") as readers):

        def put(rel: str, data: bytes, sha256: str | None = None) -> None:
            files[rel] = {"path": rel, "size": len(data), "sha256": sha256 or sha256_bytes(data)}
            pending.append(pool.submit(_store, storage, export.prefix + rel, data, resume))
            while len(pending) > _MAX_PENDING:
                settle(pending.popleft())

        try:
            coco = None
            if export.format == ExportFormat.COCO:
                classes = list(snapshot.selection.get("cell_classes") or []) or ["cell"]
                default = snapshot.selection.get("default_class") or classes[0]
                coco = CocoBuilder(categories=classes, default_class=default,
                                   segmentation=export.options.get("segmentation", "rle"))
            item_files: dict[str, list[str]] = {}
            copy = cellpose_copies_masks(export)
            state = {"done": 0, "reported": time.monotonic()}

            def consume(row: dict, future: Future) -> None:
                prepared, known = future.result()
                produced = coco.add(prepared) if coco is not None else prepared
                for rel, data in produced.items():
                    put(rel, data, known.get(rel))
                item_files[row["image"]["sha256"]] = sorted(produced)
                state["done"] += 1
                now = time.monotonic()
                if job_id and (now - state["reported"] >= _PROGRESS_SECONDS or state["done"] == snapshot.n_items):
                    state["reported"] = now
                    _job_call(job_progress, job_id=job_id, done=state["done"], total=snapshot.n_items)
                if progress is not None:
                    progress(state["done"], snapshot.n_items)

            # Items are read and encoded a few ahead, in order; COCO ids stay in item order.
            for row in _rows(snapshot):
                ahead.append((row, readers.submit(_prepare, export, row, copy=copy)))
                while len(ahead) > _LOOKAHEAD:
                    consume(*ahead.popleft())
            while ahead:
                consume(*ahead.popleft())
            if coco is not None:
                for rel, data in coco.finish(info={"snapshot": f"{snapshot.name} v{snapshot.version}",
                                                   "content_hash": snapshot.content_hash}).items():
                    put(rel, data)
            for rel, data in datasheet_documents(export).items():
                put(rel, data)
            while pending:  # every file is stored before the manifest that lists them
                settle(pending.popleft())
            put("manifest.json", manifest_document(export, item_files, files))
            while pending:
                settle(pending.popleft())
        except Exception as exc:
            for future in pending:
                future.cancel()
            for _, future in ahead:
                future.cancel()
            _finish_failed(export, f"{type(exc).__name__}: {exc}")
            raise
    return _finish_succeeded(export, files, counts["written"], counts["skipped"])


def _store(storage, name: str, data: bytes, resume: bool) -> bool:
    """Store one file; False when a previous attempt already stored it whole (resume only)."""
    if resume and storage.exists(name) and storage.size(name) == len(data):
        return False
    storage.save(name, ContentFile(data))
    return True


def datasheet_documents(export: DatasetExport) -> dict[str, bytes]:
    """``datasheet.json`` and ``datasheet.md`` of an export's snapshot."""
    from datasets.selectors import snapshot_datasheet

    sheet = snapshot_datasheet(export.snapshot)
    return {"datasheet.json": canonical_json(sheet), "datasheet.md": datasheet_markdown(sheet).encode("utf-8")}


def manifest_document(export: DatasetExport, item_files: dict[str, list[str]], files: dict[str, dict]) -> bytes:
    """``manifest.json``: the snapshot manifest, each item's export files, every file's sha256."""
    from datasets.selectors import snapshot_manifest

    manifest = snapshot_manifest(export.snapshot)
    for row in manifest["items"]:
        row["export_files"] = item_files.get(row["image"]["sha256"], [])
    manifest["export"] = {"format": export.format, "options": export.options,
                          "files": [files[k] for k in sorted(files)]}
    return canonical_json(manifest)


def _finish_succeeded(export: DatasetExport, files: dict[str, dict], written: int, skipped: int) -> ExportOutcome:
    listing = [files[k] for k in sorted(files)]
    with transaction.atomic():
        locked = DatasetExport.objects.select_for_update().get(pk=export.pk)
        if locked.status == ExportStatus.SUCCEEDED:  # a concurrent attempt finished first
            return ExportOutcome(locked, written, skipped)
        locked.status = ExportStatus.SUCCEEDED
        locked.files = listing
        locked.n_files = len(listing)
        locked.total_bytes = sum(f["size"] for f in listing)
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "files", "n_files", "total_bytes", "finished_at"])
    if locked.job_id:
        _job_call(job_succeed, job_id=locked.job_id,
                  result={"export": locked.pk, "files": locked.n_files, "bytes": locked.total_bytes,
                          "written": written, "skipped": skipped, "attempts": locked.attempts},
                  message=f"{locked.n_files} files written")
    return ExportOutcome(locked, written, skipped)


def _finish_failed(export: DatasetExport, error: str) -> None:
    DatasetExport.objects.filter(pk=export.pk).exclude(status=ExportStatus.SUCCEEDED).update(
        status=ExportStatus.FAILED, error=error[:5000], finished_at=timezone.now())
    if export.job_id:
        _job_call(job_fail, job_id=export.job_id, error=error)
