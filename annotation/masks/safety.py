"""Size caps and safe archive reading for untrusted mask files (pure, no Django).

Every reader in :mod:`annotation.masks` takes a ``limits`` keyword holding these caps;
they bound memory and CPU before anything large is built, so a hostile upload is
refused with a message instead of exhausting a worker.
"""

from __future__ import annotations

import io
import json
import math
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .labels import MaskFormatError

__all__ = [
    "DEFAULT_LIMITS", "Limits", "SafeZip", "check_points", "load_json", "read_zip_members",
]


@dataclass(frozen=True)
class Limits:
    """Caps applied while parsing untrusted mask files.

    Attributes
    ----------
    max_pixels : int
        Largest label image (height x width) a reader builds.
    max_shapes : int
        Most instances (polygons, ROIs, annotations, features) in one file.
    max_points_per_shape : int
        Most vertices in one polygon or ROI (all of its rings together).
    max_total_points : int
        Most vertices in one file.
    max_coordinate : float
        Largest absolute coordinate value accepted.
    max_file_bytes : int
        Largest binary document (``.npy`` pickle, label raster) parsed.
    max_json_bytes : int
        Largest JSON document parsed. JSON costs far more memory than its size (a
        Python float is 32 bytes for the ~6 bytes of its text), so this is kept well
        below ``max_file_bytes``.
    max_json_numbers : int
        Most numbers in one JSON document, counted while parsing: a point-heavy file is
        refused when it reaches the cap, before the rest of it is built.
    max_json_containers : int
        Most JSON arrays and objects (``[`` and ``{`` bytes, counted before parsing).
    max_decoded_bytes : int
        Most bytes a reader may allocate for decoded data: all axes times bytes per
        sample of a raster, and every array or scalar a ``_seg.npy`` pickle builds.
    max_zip_entries : int
        Most members in a zip archive.
    max_zip_entry_bytes : int
        Largest uncompressed size of one zip member.
    max_zip_total_bytes : int
        Largest uncompressed size of all zip members together.
    max_zip_ratio : float
        Largest uncompressed / compressed size of a member over ``1 MiB`` uncompressed
        (deflate bombs reach ~1000).
    """

    max_pixels: int = 100_000_000
    max_shapes: int = 200_000
    max_points_per_shape: int = 1_000_000
    max_total_points: int = 2_000_000
    max_coordinate: float = 1e6
    max_file_bytes: int = 512 * 1024 * 1024
    max_json_bytes: int = 48 * 1024 * 1024
    max_json_numbers: int = 4_000_000
    max_json_containers: int = 2_000_000
    max_decoded_bytes: int = 1024 * 1024 * 1024
    max_zip_entries: int = 100_000
    max_zip_entry_bytes: int = 64 * 1024 * 1024
    max_zip_total_bytes: int = 512 * 1024 * 1024
    max_zip_ratio: float = 200.0


DEFAULT_LIMITS = Limits()

_ZIP_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db")


def _unsafe_reason(name: str) -> str | None:
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if len(name) >= 2 and name[1] == ":" and name[0].isalpha():
        return "starts with a drive letter"
    if any(part == ".." for part in name.split("/")):
        return "contains '..'"
    if "\x00" in name:
        return "contains a NUL byte"
    return None


#: Members smaller than this are never refused for their compression ratio (tiny files
#: of zeros compress extremely well and cost nothing).
_RATIO_FLOOR_BYTES = 1024 * 1024


def _check_central_directory(zf: zipfile.ZipFile, limits: Limits) -> list[zipfile.ZipInfo]:
    """Refuse an archive from its central directory alone, before inflating anything."""
    infos = zf.infolist()
    if len(infos) > limits.max_zip_entries:
        raise MaskFormatError(
            f"The zip archive has {len(infos):,} entries; at most "
            f"{limits.max_zip_entries:,} are accepted."
        )
    declared = 0
    for info in infos:
        reason = _unsafe_reason(info.filename)
        if reason:
            raise MaskFormatError(
                f"Refused zip archive: entry {info.filename!r} {reason} (unsafe path)."
            )
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise MaskFormatError(
                f"Refused zip archive: entry {info.filename!r} is a symbolic link."
            )
        if info.flag_bits & 0x1:
            raise MaskFormatError(f"Refused zip archive: entry {info.filename!r} is encrypted.")
        if info.file_size > limits.max_zip_entry_bytes:
            raise MaskFormatError(
                f"Zip entry {info.filename!r} uncompresses to {info.file_size:,} bytes; "
                f"at most {limits.max_zip_entry_bytes:,} are accepted per entry."
            )
        if info.file_size > _RATIO_FLOOR_BYTES:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_zip_ratio:
                raise MaskFormatError(
                    f"Refused zip archive: entry {info.filename!r} is compressed "
                    f"{ratio:,.0f}:1 ({info.compress_size:,} -> {info.file_size:,} bytes), "
                    f"over the {limits.max_zip_ratio:,.0f}:1 limit (a zip bomb?)."
                )
        declared += info.file_size
    if declared > limits.max_zip_total_bytes:
        raise MaskFormatError(
            f"The zip archive uncompresses to {declared:,} bytes; at most "
            f"{limits.max_zip_total_bytes:,} are accepted."
        )
    return infos


class SafeZip:
    """A zip archive checked from its central directory, read one member at a time.

    Opening checks entry count, names (zip slip), links, encryption, each member's
    declared size and compression ratio and the declared total, all before anything
    is inflated. :meth:`read` then inflates one member with a cap of one byte past
    the limits (declared sizes can lie) and keeps a running total over every member
    read, so the archive's memory cost is one member at a time and its CPU cost is
    bounded by ``max_zip_total_bytes``.

    Parameters
    ----------
    source : bytes or str or path-like
        The archive's bytes, or the path of an archive file (read lazily).
    limits : Limits, optional
        ``max_zip_entries``, ``max_zip_entry_bytes``, ``max_zip_total_bytes`` and
        ``max_zip_ratio`` apply.

    Attributes
    ----------
    names : list of str
        Regular files in archive order (directories and OS litter left out).
    skipped : list of (str, str)
        OS litter (``__MACOSX/``, ``.DS_Store``) with the reason it was left out.

    Raises
    ------
    MaskFormatError
        A corrupt, encrypted or unsafe archive, or one over the caps.
    """

    def __init__(self, source: Any, *, limits: Limits = DEFAULT_LIMITS):
        self._limits = limits
        self._total = 0
        try:
            self._zf = zipfile.ZipFile(
                io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
            )
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise MaskFormatError(f"Not a readable zip archive: {exc}") from exc
        try:
            infos = _check_central_directory(self._zf, limits)
        except MaskFormatError:
            self._zf.close()
            raise
        self._entries: list[zipfile.ZipInfo] = []
        self.names: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            if name.startswith(_ZIP_JUNK[0]) or name.rsplit("/", 1)[-1] in _ZIP_JUNK[1:]:
                self.skipped.append((name, "operating-system metadata, not a mask"))
                continue
            self._entries.append(info)
            self.names.append(name)
        self._first = {}
        for info in reversed(self._entries):
            self._first[info.filename] = info

    def read(self, name: str) -> bytes:
        """Inflate one member, counting it against the archive's byte budget."""
        return self._read(self._first[name])

    def _read(self, info: zipfile.ZipInfo) -> bytes:
        limits = self._limits
        name = info.filename
        try:
            with self._zf.open(info) as fh:
                content = fh.read(limits.max_zip_entry_bytes + 1)
        except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
            raise MaskFormatError(f"Could not read zip entry {name!r}: {exc}") from exc
        if len(content) > limits.max_zip_entry_bytes:
            raise MaskFormatError(
                f"Zip entry {name!r} uncompresses to more than "
                f"{limits.max_zip_entry_bytes:,} bytes."
            )
        self._total += len(content)
        if self._total > limits.max_zip_total_bytes:
            raise MaskFormatError(
                f"The zip archive uncompresses to more than {limits.max_zip_total_bytes:,} bytes."
            )
        return content

    def members(self) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, content)`` of every regular file, one at a time."""
        for info in self._entries:
            yield info.filename, self._read(info)

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_zip_members(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """Read every file of a small zip archive into memory (see :class:`SafeZip`).

    Parameters
    ----------
    data : bytes
        The archive.
    limits : Limits, optional
        Zip caps, checked from the central directory before anything is inflated.

    Returns
    -------
    members : list of (str, bytes)
        Name and content of every regular file, in archive order.
    skipped : list of (str, str)
        Directories and operating-system litter (``__MACOSX/``, ``.DS_Store``) with
        the reason they were left out.

    Raises
    ------
    MaskFormatError
        If the archive is corrupt or encrypted; has more entries than allowed; has a
        member whose name is absolute, holds ``..``, a backslash or a drive letter
        (zip slip), or that is a symbolic link; or whose uncompressed size (declared
        or actual) or compression ratio is over the caps.
    """
    with SafeZip(bytes(data), limits=limits) as zf:
        return list(zf.members()), zf.skipped


def load_json(data: bytes, *, what: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Parse a JSON document with a size cap and a clear error.

    Parameters
    ----------
    data : bytes
        UTF-8 (a BOM is allowed) JSON text.
    what : str
        Name of the format, for messages.
    limits : Limits, optional
        ``max_json_bytes``, ``max_json_containers`` (checked before parsing) and
        ``max_json_numbers`` (counted while parsing) apply.
    """
    if len(data) > limits.max_json_bytes:
        raise MaskFormatError(
            f"The {what} file is {len(data):,} bytes; at most {limits.max_json_bytes:,} "
            "bytes of JSON are accepted."
        )
    data = bytes(data)
    containers = data.count(b"[") + data.count(b"{")
    if containers > limits.max_json_containers:
        raise MaskFormatError(
            f"The {what} file holds up to {containers:,} JSON arrays and objects; at most "
            f"{limits.max_json_containers:,} are accepted."
        )
    budget = _NumberBudget(what=what, limit=limits.max_json_numbers)
    try:
        text = data.decode("utf-8-sig")
        return json.loads(
            text, parse_constant=_refuse_constant, parse_float=budget.float,
            parse_int=budget.int,
        )
    except UnicodeDecodeError as exc:
        raise MaskFormatError(f"The {what} file is not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise MaskFormatError(f"The {what} file is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise MaskFormatError(f"The {what} file is nested too deeply.") from exc
    except ValueError as exc:  # e.g. an integer literal of more digits than Python converts
        raise MaskFormatError(f"The {what} file holds an unreadable number: {exc}") from exc


class _NumberBudget:
    """``parse_int`` / ``parse_float`` hooks that count numbers and stop at the cap.

    The C JSON scanner calls them for every number, so a point-heavy document is
    refused when the cap is reached, not after all of it has been built.
    """

    __slots__ = ("count", "limit", "what")

    def __init__(self, *, what: str, limit: int):
        self.what = what
        self.limit = limit
        self.count = 0

    def _spend(self) -> None:
        self.count += 1
        if self.count > self.limit:
            raise MaskFormatError(
                f"The {self.what} file holds more than {self.limit:,} numbers (coordinates, "
                "ids, sizes); it was refused while parsing."
            )

    def int(self, text: str) -> int:
        self._spend()
        return int(text)

    def float(self, text: str) -> float:
        self._spend()
        return float(text)


def _refuse_constant(name: str) -> Any:
    raise MaskFormatError(f"JSON holds the non-finite number {name}; coordinates must be finite.")


def check_points(points: Any, *, where: str, limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """Turn untrusted coordinates into a finite float64 (n, 2) array of x, y.

    Parameters
    ----------
    points : array_like, shape (n, 2) or flat (2n,)
        x, y pairs (a flat list alternates x and y, as COCO stores them).
    where : str
        What the points belong to, for messages (e.g. ``"COCO annotation 7"``).
    limits : Limits, optional
        ``max_points_per_shape`` and ``max_coordinate`` apply.

    Returns
    -------
    ndarray of float64, shape (n, 2)

    Raises
    ------
    MaskFormatError
        Non-numeric, NaN or infinite values, an odd-length flat list, too many
        points, or coordinates beyond ``max_coordinate``.
    """
    if isinstance(points, list | tuple):
        nested = bool(points) and isinstance(points[0], list | tuple)
        n_points = len(points) if nested else len(points) // 2
        if n_points > limits.max_points_per_shape:
            # Checked before numpy builds an array from a hostile list.
            raise MaskFormatError(
                f"{where} has {n_points:,} points; at most "
                f"{limits.max_points_per_shape:,} are accepted per shape."
            )
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MaskFormatError(f"{where} has coordinates that are not numbers: {exc}") from exc
    if arr.ndim == 1:
        if arr.size % 2:
            raise MaskFormatError(f"{where} has an odd number ({arr.size}) of coordinate values.")
        arr = arr.reshape(-1, 2)
    if arr.ndim == 2 and arr.shape[1] == 3:
        arr = arr[:, :2]  # GeoJSON allows a z (elevation) per position; a mask has none
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise MaskFormatError(f"{where} has coordinates of shape {arr.shape}; expected (n, 2).")
    if len(arr) > limits.max_points_per_shape:
        raise MaskFormatError(
            f"{where} has {len(arr):,} points; at most {limits.max_points_per_shape:,} "
            "are accepted per shape."
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise MaskFormatError(f"{where} has {bad} NaN or infinite coordinate values.")
    if arr.size and float(np.abs(arr).max()) > limits.max_coordinate:
        raise MaskFormatError(
            f"{where} has a coordinate of {float(np.abs(arr).max()):.6g}, beyond "
            f"+/-{limits.max_coordinate:.6g}."
        )
    return arr


def ceil_extent(value: float) -> int:
    """Smallest whole number of pixels covering coordinate ``value`` (>= 0)."""
    return max(0, math.ceil(value))
