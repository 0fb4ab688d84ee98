"""Cellpose ``_seg.npy`` files, read without ever running untrusted pickle code.

A ``_seg.npy`` (written by the Cellpose GUI and ``cellpose.io.masks_flows_to_seg``) is
an ``.npy`` file holding a 0-d object array whose pickle is a dict: ``masks``,
``outlines``, ``flows``, ``colors``, ``filename``, ... Loading such a file with numpy's
pickle support switched on runs whatever the pickle asks for, so :func:`read_cellpose_seg` parses
the ``.npy`` header itself and unpickles with :class:`RestrictedUnpickler`, which
admits only numpy array and dtype reconstruction plus plain containers (dict, list,
tuple, str, bytes, numbers, None); any other global is refused by name, before it is
imported or called. Only the integer ``masks`` array is kept.
"""

from __future__ import annotations

import ast
import io
import pickle
from typing import Any

import numpy as np

from .labels import ImportResult, MaskFormatError, relabel_sequential, validate_label_image
from .safety import DEFAULT_LIMITS, Limits

__all__ = ["RestrictedUnpickler", "read_cellpose_seg", "write_cellpose_seg"]

_NPY_MAGIC = b"\x93NUMPY"


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` inside a pickle: usable as the subtype argument of
    ``_reconstruct``, but not callable, so a pickle cannot allocate arrays of any
    shape it likes by calling ``numpy.ndarray(shape)``."""

    __slots__ = ()


_NDARRAY = _NdarrayToken()


def _allowed_globals() -> dict[tuple[str, str], Any]:
    from numpy._core import multiarray, numeric

    def reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        # numpy's own pickles always start from an empty array and fill it through
        # __setstate__, whose data length is checked against the shape; anything
        # else would let a pickle allocate memory out of proportion to its size.
        if subtype is not _NDARRAY or tuple(shape) != (0,):
            raise MaskFormatError(
                "Refused _seg.npy: its pickle rebuilds an array in a way numpy never writes."
            )
        return multiarray._reconstruct(np.ndarray, (0,), dtype)

    allowed: dict[tuple[str, str], Any] = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = reconstruct
        allowed[(mod, "scalar")] = multiarray.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = _NDARRAY
    allowed[("numpy", "dtype")] = np.dtype
    # numpy >= 1.25 pickles dtypes through their DType classes.
    for name in dir(np.dtypes):
        cls = getattr(np.dtypes, name)
        if isinstance(cls, type) and name.endswith("DType"):
            allowed[("numpy.dtypes", name)] = cls
    # Python 2 era pickles store byte strings through _codecs.encode.
    import codecs

    allowed[("_codecs", "encode")] = codecs.encode
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array/dtype reconstruction globals.

    Plain containers and scalars need no globals and load as usual; every other
    global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, any class) raises
    :class:`MaskFormatError` naming it, before it is imported. ``numpy.ndarray`` is
    handed out as an inert token and ``_reconstruct`` accepts only the empty start
    array numpy itself writes, so array memory stays bounded by the file's size.
    """

    _ALLOWED: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        allowed = type(self)._ALLOWED
        if allowed is None:
            allowed = type(self)._ALLOWED = _allowed_globals()
        try:
            return allowed[(module, name)]
        except KeyError:
            raise MaskFormatError(
                f"Refused _seg.npy: its pickle asks for the forbidden global "
                f"'{module}.{name}'; only numpy arrays, dtypes and plain containers are allowed."
            ) from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        raise MaskFormatError("Refused _seg.npy: its pickle uses persistent ids.")


def _parse_npy_header(data: bytes) -> tuple[dict[str, Any], int]:
    if not data.startswith(_NPY_MAGIC) or len(data) < 10:
        raise MaskFormatError("Not a .npy file: the \\x93NUMPY signature is missing.")
    major = data[6]
    if major == 1:
        hlen = int.from_bytes(data[8:10], "little")
        start = 10
    elif major in (2, 3):
        if len(data) < 12:
            raise MaskFormatError("Truncated .npy header.")
        hlen = int.from_bytes(data[8:12], "little")
        start = 12
    else:
        raise MaskFormatError(f"Unsupported .npy format version {major}.")
    if hlen > 65_536 or start + hlen > len(data):
        raise MaskFormatError("Truncated or oversized .npy header.")
    try:
        header = ast.literal_eval(data[start : start + hlen].decode("latin1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise MaskFormatError(f"Malformed .npy header: {exc}") from exc
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys():
        raise MaskFormatError("Malformed .npy header: missing descr, fortran_order or shape.")
    return header, start + hlen


def _masks_from_object(obj: Any) -> np.ndarray:
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise MaskFormatError(
            f"The _seg.npy holds a {type(obj).__name__}, not the dict Cellpose writes."
        )
    if "masks" not in obj:
        raise MaskFormatError(
            f"The _seg.npy has no 'masks' entry (keys: {sorted(map(str, obj))[:10]})."
        )
    masks = obj["masks"]
    if not isinstance(masks, np.ndarray):
        raise MaskFormatError(f"The _seg.npy 'masks' is a {type(masks).__name__}, not an array.")
    return masks


def read_cellpose_seg(
    data: bytes, *, shape: tuple[int, int] | None = None, limits: Limits = DEFAULT_LIMITS
) -> ImportResult:
    """Read the instance masks from a Cellpose ``_seg.npy`` safely.

    Parameters
    ----------
    data : bytes
        A ``_seg.npy`` file (pickled dict with ``masks``), or a plain integer ``.npy``
        label array.
    shape : (int, int), optional
        Expected ``(H, W)``; a different mask shape is refused.
    limits : Limits, optional
        ``max_file_bytes`` and ``max_pixels`` apply.

    Returns
    -------
    ImportResult
        ``masks`` relabelled 1..N (uint16/uint32); no classes. Old files whose
        background is -1 are shifted by +1, as the Cellpose GUI does, with a warning.

    Raises
    ------
    MaskFormatError
        A pickle that asks for any global other than numpy array/dtype reconstruction
        (the message names it; nothing is executed), no ``masks``, masks that are not
        a 2-D non-negative integer array, or a file over the caps.
    """
    data = bytes(data)
    if len(data) > limits.max_file_bytes:
        raise MaskFormatError(
            f"The _seg.npy is {len(data):,} bytes; at most {limits.max_file_bytes:,} are accepted."
        )
    header, offset = _parse_npy_header(data)
    descr = header["descr"]
    warnings: list[str] = []
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError) as exc:
        raise MaskFormatError(f"Malformed .npy header dtype {descr!r}: {exc}") from exc
    if dtype.hasobject:
        try:
            obj = RestrictedUnpickler(io.BytesIO(data[offset:])).load()
        except MaskFormatError:
            raise
        except Exception as exc:  # corrupt pickles raise many types
            raise MaskFormatError(f"Could not read the _seg.npy pickle: {exc}") from exc
        masks = _masks_from_object(obj)
    else:
        shp = header["shape"]
        if not isinstance(shp, tuple) or not all(isinstance(v, int) and v >= 0 for v in shp):
            raise MaskFormatError(f"Malformed .npy header shape {shp!r}.")
        if int(np.prod(shp)) > limits.max_pixels:
            raise MaskFormatError(f"The .npy array {shp} is over {limits.max_pixels:,} pixels.")
        try:
            masks = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise MaskFormatError(f"Could not read the .npy array: {exc}") from exc
    masks = np.squeeze(masks) if masks.ndim > 2 else masks
    if masks.ndim != 2:
        raise MaskFormatError(
            f"The _seg.npy masks have shape {masks.shape}; only 2-D masks are imported "
            "(3-D Cellpose stacks are not supported)."
        )
    if masks.size > limits.max_pixels:
        raise MaskFormatError(f"The _seg.npy masks have over {limits.max_pixels:,} pixels.")
    if masks.dtype.kind == "i" and masks.size and int(masks.min()) == -1:
        masks = masks + 1
        warnings.append("masks had background -1 (old Cellpose format); shifted by +1.")
    validate_label_image(masks, name="_seg.npy masks")
    if shape is not None and masks.shape != tuple(shape):
        raise MaskFormatError(
            f"The _seg.npy masks are {masks.shape[0]} x {masks.shape[1]}, "
            f"but the image is {shape[0]} x {shape[1]}."
        )
    return ImportResult(labels=relabel_sequential(masks), warnings=tuple(warnings))


def _outlines(labels: np.ndarray) -> np.ndarray:
    """Instance pixels with a 4-neighbour of another value (image border included)."""
    padded = np.pad(labels, 1, mode="constant")
    centre = padded[1:-1, 1:-1]
    edge = np.zeros(labels.shape, dtype=bool)
    for dr, dc in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dr : dr + labels.shape[0], dc : dc + labels.shape[1]] != centre
    return np.where(edge & (labels > 0), labels, 0).astype(labels.dtype)


def write_cellpose_seg(labels: np.ndarray, *, filename: str = "image.tif") -> bytes:
    """Write a label image as a Cellpose ``_seg.npy`` that the Cellpose GUI opens.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image; written relabelled 1..N.
    filename : str, optional
        Image file name stored under ``filename`` (the GUI looks for the image there,
        then beside the ``_seg.npy``).

    Returns
    -------
    bytes
        ``.npy`` content of a pickled dict with the keys the GUI's ``_load_seg`` and
        ``cellpose.io.imread`` use: ``masks`` and ``outlines`` (uint16, or uint32 above
        65,535), ``colors`` (N, 3) uint8, ``ismanual`` (N,) bool, ``filename``,
        ``chan_choose`` ``[0, 0]`` and ``diameter``.
    """
    masks = relabel_sequential(labels)
    n = int(masks.max())
    # Deterministic colours, so the same labels always give the same bytes.
    rng = np.random.default_rng(0)
    colors = rng.integers(64, 256, size=(n, 3), dtype=np.uint8)
    areas = np.bincount(masks.ravel())[1:] if n else np.zeros(0)
    diameter = float(np.sqrt(areas.mean() / np.pi) * 2) if n else 0.0
    dat = {
        "outlines": _outlines(masks),
        "masks": masks,
        "colors": colors,
        "ismanual": np.ones(n, dtype=bool),
        "filename": filename,
        "chan_choose": [0, 0],
        "diameter": diameter,
    }
    buf = io.BytesIO()
    # Our own dict: np.save pickles it (its default), which is what Cellpose's loader reads.
    np.save(buf, np.array(dat, dtype=object))
    return buf.getvalue()
