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
import math
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
#: Largest numpy scalar a pickle may build (numpy's own pickles hold numbers and short
#: strings; a ``dtype('V400000000')`` scalar is an allocation request, not data).
_MAX_SCALAR_BYTES = 64 * 1024
#: Most bytes of numpy scalars in one pickle, whatever the array budget: a memoised byte
#: string reused for many scalars costs the pickle a few bytes per copy.
_MAX_SCALARS_BYTES = 16 * 1024 * 1024


class _AllocationBudget:
    """Bytes a pickle's numpy objects may allocate, spent before each one is built.

    Every allocation is counted, including those that reuse a memoised callable or
    byte string: such a reuse costs the pickle ~5 bytes but numpy a full copy.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.spent = 0
        self.scalars = 0

    def spend_scalar(self, nbytes: int, what: str) -> None:
        self.scalars += int(nbytes)
        if self.scalars > _MAX_SCALARS_BYTES:
            raise MaskFormatError(
                f"Refused _seg.npy: its pickle builds more than {_MAX_SCALARS_BYTES:,} bytes "
                f"of numpy scalars (at {what})."
            )
        self.spend(nbytes, what)

    def spend(self, nbytes: int, what: str) -> None:
        self.spent += int(nbytes)
        if self.spent > self.limit:
            raise MaskFormatError(
                f"Refused _seg.npy: its pickle asks for more than {self.limit:,} bytes of "
                f"numpy data (at {what})."
            )


def _state_nbytes(state: Any) -> tuple[int, str]:
    """Bytes an ``ndarray.__setstate__`` state builds, from its shape and dtype alone."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise MaskFormatError("Refused _seg.npy: an array in its pickle has a malformed state.")
    shape, dtype = state[-4], state[-3]
    if not isinstance(dtype, np.dtype):
        raise MaskFormatError("Refused _seg.npy: an array in its pickle has no numpy dtype.")
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise MaskFormatError(f"Refused _seg.npy: an array in its pickle has shape {shape!r}.")
    count = math.prod(shape)
    itemsize = 8 if dtype.hasobject else dtype.itemsize
    return count * itemsize, f"an array of shape {shape} and dtype {dtype}"


def _budgeted_array_type(budget: _AllocationBudget) -> type[np.ndarray]:
    class _BudgetedArray(np.ndarray):
        """The empty start array of numpy's pickles; sized by ``__setstate__``, which
        charges the budget from the state's shape and dtype before numpy fills it."""

        def __setstate__(self, state: Any) -> None:
            nbytes, what = _state_nbytes(state)
            budget.spend(nbytes, what)
            super().__setstate__(state)

    return _BudgetedArray


def _allowed_globals(budget: _AllocationBudget) -> dict[tuple[str, str], Any]:
    from numpy._core import multiarray, numeric

    array_type = _budgeted_array_type(budget)

    def reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        # numpy's own pickles always start from an empty array and fill it through
        # __setstate__ (charged to the budget there); anything else would let a pickle
        # allocate memory out of proportion to its size.
        if subtype is not _NDARRAY or tuple(shape) != (0,):
            raise MaskFormatError(
                "Refused _seg.npy: its pickle rebuilds an array in a way numpy never writes."
            )
        return multiarray._reconstruct(array_type, (0,), dtype)

    def scalar(dtype: Any, obj: Any = None) -> Any:
        if not isinstance(dtype, np.dtype):
            raise MaskFormatError("Refused _seg.npy: a scalar in its pickle has no numpy dtype.")
        if dtype.hasobject:
            return obj  # what numpy itself returns for an object "scalar"
        if dtype.itemsize > _MAX_SCALAR_BYTES:
            raise MaskFormatError(
                f"Refused _seg.npy: its pickle asks for a numpy scalar of {dtype.itemsize:,} "
                f"bytes (dtype {dtype}); at most {_MAX_SCALAR_BYTES:,} are accepted."
            )
        if not isinstance(obj, bytes) or len(obj) != dtype.itemsize:
            # Without its bytes numpy would allocate a zero-filled scalar of any size.
            raise MaskFormatError(
                f"Refused _seg.npy: a numpy scalar of dtype {dtype} in its pickle does not "
                "carry its own bytes."
            )
        budget.spend_scalar(dtype.itemsize, f"a scalar of dtype {dtype}")
        return multiarray.scalar(dtype, obj)

    def frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.itemsize == 0:
            raise MaskFormatError("Refused _seg.npy: a buffer array in its pickle has a bad dtype.")
        budget.spend(len(memoryview(buf).cast("B")), f"a buffer array of dtype {dtype}")
        return numeric._frombuffer(buf, dtype, shape, order)

    allowed: dict[tuple[str, str], Any] = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = reconstruct
        allowed[(mod, "scalar")] = scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = frombuffer
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
    array numpy itself writes. Every array, buffer and scalar the pickle builds is
    charged, from its dtype and shape and before it is allocated, to a budget of
    ``max_decoded_bytes``; numpy scalars must carry their own bytes, are at most
    64 KiB each and 16 MiB together.

    Parameters
    ----------
    file : binary file
        The pickle stream.
    max_bytes : int, optional
        Allocation budget (default: :data:`DEFAULT_LIMITS` ``.max_decoded_bytes``).
    """

    def __init__(self, file: Any, *, max_bytes: int | None = None):
        super().__init__(file)
        self.budget = _AllocationBudget(
            DEFAULT_LIMITS.max_decoded_bytes if max_bytes is None else max_bytes
        )
        self._allowed = _allowed_globals(self.budget)

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        try:
            return self._allowed[(module, name)]
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
    return np.asarray(masks)  # a plain ndarray, not the unpickler's budgeted subclass


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
        ``max_file_bytes``, ``max_pixels`` and ``max_decoded_bytes`` (everything the
        pickle builds) apply.

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
            obj = RestrictedUnpickler(
                io.BytesIO(data[offset:]), max_bytes=limits.max_decoded_bytes
            ).load()
        except MaskFormatError:
            raise
        except Exception as exc:  # corrupt pickles raise many types
            raise MaskFormatError(f"Could not read the _seg.npy pickle: {exc}") from exc
        masks = _masks_from_object(obj)
    else:
        shp = header["shape"]
        if not isinstance(shp, tuple) or not all(isinstance(v, int) and v >= 0 for v in shp):
            raise MaskFormatError(f"Malformed .npy header shape {shp!r}.")
        if math.prod(shp) > limits.max_pixels:
            raise MaskFormatError(f"The .npy array {shp} is over {limits.max_pixels:,} pixels.")
        if math.prod(shp) * dtype.itemsize > limits.max_decoded_bytes:
            raise MaskFormatError(
                f"The .npy array {shp} of {dtype} is {math.prod(shp) * dtype.itemsize:,} bytes; "
                f"at most {limits.max_decoded_bytes:,} are accepted."
            )
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
