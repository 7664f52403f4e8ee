"""Arrays of numbers read from files the user names: ``.npy`` and ``.csv``, read once, safely.

Both game files (``{file: ...}`` references) and the command line (``sweep --report-reward
FILE``) read arrays here. A file that is not what it claims never gets further than a check:

* only regular files are opened (a FIFO named ``x.npy`` would block the reader forever, a
  device would never end);
* a ``.npy`` header is read and checked before any data: the magic string (a 0-byte file or
  an ``.npz`` archive saved as ``.npy`` fail here), a real or integer dtype (no complex,
  boolean, object or structured arrays; pickles are never loaded), one or two dimensions,
  and exactly as many bytes after the header as its shape claims (a header that claims
  10^12 elements is refused before anything is allocated);
* a float64 array in native byte order is memory-mapped (``np.load(mmap_mode="r")``), not
  copied: the pages are read when the values are, and only once;
* errors never quote the file's content (a ``.csv`` of secrets stays secret): they name
  the row and column.

Every problem raises :class:`ValueError` with a message in words; the callers add the file,
line and field (game files) or the option (command line).
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np

Array = np.ndarray

#: The suffixes an array file may have.
ARRAY_SUFFIXES = (".npy", ".csv")
#: Longest ``.npy`` header read (numpy's own default limit).
_MAX_HEADER = 10_000


def regular_file(path: Path) -> os.stat_result:
    """``stat`` of ``path`` (symlinks followed), which must be a regular file.

    Raises
    ------
    ValueError
        for a missing file, a symlink loop, a name with a NUL byte, or anything that is not
        a regular file (directory, FIFO, socket, device).
    """
    if "\x00" in str(path):
        raise ValueError("the file name contains a NUL byte")
    try:
        info = path.stat()
    except OSError as exc:
        raise ValueError(exc.strerror or type(exc).__name__) from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file (a directory, FIFO, socket or device)")
    return info


def read_array(path: Path) -> Array:
    """The numbers in a ``.npy`` or ``.csv`` file, as a 1-D or 2-D float array.

    A native float64 ``.npy`` is returned memory-mapped and read-only; anything else is read
    into memory and converted to float64 (integers exactly up to 2^53).

    Raises
    ------
    ValueError
        for anything but a regular ``.npy``/``.csv`` file of a 1-D or 2-D array of real numbers.
    """
    if path.suffix not in ARRAY_SUFFIXES:
        raise ValueError(f"expected a {' or '.join(ARRAY_SUFFIXES)} file")
    info = regular_file(path)
    return _read_npy(path, info.st_size) if path.suffix == ".npy" else _read_csv(path)


def _read_npy(path: Path, size: int) -> Array:
    with open(path, "rb") as f:
        shape, fortran, dtype = npy_header(f, size, "iuf")
        offset = f.tell()
    if len(shape) not in (1, 2):
        raise ValueError(f"holds a {len(shape)}-D array; expected 1-D or 2-D")
    if not all(shape):
        return np.zeros(shape)
    if dtype == np.float64 and dtype.isnative:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    array = np.fromfile(path, dtype=dtype, count=math.prod(shape), offset=offset)
    return array.reshape(shape, order="F" if fortran else "C").astype(float)


def npy_header(f: BinaryIO, size: int, kinds: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` data of ``size`` bytes that ``f`` is at
    the start of, checked before any data is read; ``f`` is left at the first byte of data.

    Raises
    ------
    ValueError
        for no ``.npy`` magic, an unknown format version, an unreadable header, a dtype whose
        kind is not in ``kinds`` (numpy's ``dtype.kind``: ``"iuf"`` for real numbers; never
        structured or object arrays, so nothing is unpickled), or a header that claims
        another number of bytes than ``size`` holds after it.
    """
    start = f.tell()
    try:
        version = np.lib.format.read_magic(f)
    except ValueError:
        raise ValueError("not a .npy file (no .npy header; an .npz archive or an empty file?)") from None
    reader = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if reader is None:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    try:
        shape, fortran, dtype = reader(f, max_header_size=_MAX_HEADER)
    except ValueError:
        raise ValueError("the .npy header cannot be read") from None
    if dtype.kind not in kinds or dtype.fields is not None or dtype.shape != ():
        expected = "real numbers (integer or float)" if kinds == "iuf" else f"dtype kind {kinds!r}"
        raise ValueError(f"holds {_dtype_words(dtype)}; expected {expected}")
    claimed = math.prod(shape) * dtype.itemsize
    after = size - (f.tell() - start)
    if claimed != after:
        raise ValueError(
            f"the header claims a {shape} array ({claimed} bytes of data) but the file holds "
            f"{after} bytes after it"
        )
    return tuple(int(extent) for extent in shape), bool(fortran), dtype


def _dtype_words(dtype: np.dtype) -> str:
    if dtype.fields is not None:
        return "records (a structured dtype)"
    return {"c": "complex numbers", "b": "booleans", "O": "Python objects", "U": "text", "S": "bytes"}.get(
        dtype.kind, f"values of dtype {dtype.str}"
    )


_LOADTXT_POSITION = re.compile(r"at row (\d+), column (\d+)")


def _read_csv(path: Path) -> Array:
    try:
        array = np.loadtxt(path, delimiter=",", ndmin=1, dtype=float, encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except ValueError as exc:
        # numpy's message quotes the offending text; ours names only where it is
        position = _LOADTXT_POSITION.search(str(exc))
        if position is not None:
            row, column = int(position[1]) + 1, int(position[2])
            raise ValueError(f"row {row}, column {column} is not a number") from None
        if "number of columns changed" in str(exc):
            raise ValueError("the rows have different numbers of values") from None
        raise ValueError("not a comma-separated table of numbers") from None
    if array.ndim not in (1, 2):
        raise ValueError(f"holds a {array.ndim}-D array; expected 1-D or 2-D")
    return array
