"""A zip archive written as a stream of bytes: no temporary file, memory flat in its size.

``zipfile`` writes to an unseekable sink using data descriptors; each entry's content is
pulled chunk by chunk from the caller's iterator, so a multi-gigabyte export goes to the
client while it is read from storage.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["ZipEntry", "stream_zip"]

#: Entries above this many bytes (or of unknown size) get ZIP64 headers.
_ZIP64_LIMIT = (1 << 31) - 1
#: Suffixes of data that is already compressed (or incompressible): stored, not deflated.
_STORED = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy", ".zip")


@dataclass(frozen=True)
class ZipEntry:
    """One file of the archive: its path, size in bytes, and a function opening its chunks."""

    path: str
    size: int
    chunks: Callable[[], Iterable[bytes]]


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._offset = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        b = bytes(data)
        self._parts.append(b)
        self._offset += len(b)
        return len(b)

    def tell(self) -> int:
        return self._offset

    def seekable(self) -> bool:
        return False

    def seek(self, *args, **kwargs):
        raise io.UnsupportedOperation("stream is not seekable")

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _compression(path: str) -> int:
    lowered = path.lower()
    if lowered.endswith(_STORED) or "/c/" in lowered:  # zarr chunks are compressed already
        return zipfile.ZIP_STORED
    return zipfile.ZIP_DEFLATED


def stream_zip(entries: Iterable[ZipEntry], *, root: str = "") -> Iterator[bytes]:
    """Yield the bytes of a zip holding ``entries`` (in order) under the folder ``root``.

    Parameters
    ----------
    entries : iterable of ZipEntry
        Paths are relative (``'train/a.tif'``); ``..`` and absolute paths are refused.
    root : str, optional
        Folder every entry is put in (``'dataset-v3-cellpose'``).
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", allowZip64=True) as zf:
        for entry in entries:
            parts = entry.path.split("/")
            if entry.path.startswith("/") or ".." in parts or "" in parts:
                raise ValueError(f"unsafe path in archive: {entry.path!r}")
            name = f"{root.strip('/')}/{entry.path}" if root else entry.path
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = _compression(entry.path)
            info.external_attr = 0o644 << 16
            info.file_size = entry.size
            written = 0
            with zf.open(info, mode="w", force_zip64=entry.size > _ZIP64_LIMIT) as out:
                for chunk in entry.chunks():
                    out.write(chunk)
                    written += len(chunk)
                    data = sink.take()
                    if data:
                        yield data
            if written != entry.size:
                raise ValueError(f"{entry.path}: read {written} bytes, expected {entry.size}")
            data = sink.take()
            if data:
                yield data
    data = sink.take()
    if data:
        yield data
