"""Resource limits of the DICOM readers, checked from headers *before* anything is allocated.

A damaged or hostile file must not make brainlib allocate more than a small multiple of its
own size. Three holes were found by fuzzing (docs/FUZZING.md) and are closed here:

* a damaged length field (``0xFFFFFFF0``) made pydicom call ``file.read(4 GiB)``, which
  allocates the whole request up front: :class:`BoundedReader` never asks for more bytes
  than the file still holds;
* a JPEG 2000 / JPEG codestream whose own size (SIZ / SOF marker) is larger than the header's
  Rows x Columns made the decoder allocate for the codestream's size (a 20000 x 20000
  codestream in a 512 x 512 CT slice took 2.9 GB and 9 s; 60000 x 60000 was killed for lack
  of memory): :func:`check_codestreams` compares them before decoding;
* a deflated data set (transfer syntax 1.2.840.10008.1.2.1.99) is inflated whole by pydicom:
  :func:`check_inflated_size` inflates at most :data:`MAX_INFLATED_BYTES` first.

Every limit is a named constant with its reason; every refusal is an
:class:`~brainlib.io.errors.ImplausibleImageError` naming the file.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from typing import Any

from brainlib.io.errors import ImplausibleImageError, MissingPixelDataError

__all__ = ["MAX_FILE_BYTES", "MAX_IMAGE_SIDE", "MAX_DECODED_BYTES", "MAX_INFLATED_BYTES",
           "BoundedReader", "check_codestreams", "check_inflated_size", "check_size"]

#: Largest DICOM file read (bytes). A 512 x 512 CT slice is 0.5 MB, a two-frame 256 x 1024
#: bone scan 1 MB; 512 MiB leaves room for any single image and still fits in memory.
MAX_FILE_BYTES = 512 * 2**20
#: Largest Rows or Columns accepted. CT is 512 (RSNA, CQ500) or 1024; NM whole-body 1024;
#: 4096 leaves room for any clinical 2-D image while 4096 x 4096 x 4 B = 64 MB stays small.
MAX_IMAGE_SIDE = 4096
#: Largest decoded pixel buffer (all frames, bytes). 16 frames of 1024 x 1024 x 32 bit = 64 MB;
#: 256 MiB keeps a refused bomb far below this machine's memory.
MAX_DECODED_BYTES = 256 * 2**20
#: Largest inflated data set of a deflated file (bytes); same reason as MAX_DECODED_BYTES.
MAX_INFLATED_BYTES = 256 * 2**20

_DEFLATED = b"1.2.840.10008.1.2.1.99"
_J2K_SYNTAXES = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
                 "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                 "1.2.840.10008.1.2.4.203")
_JPEG_SYNTAXES = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                  "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
#: JPEG start-of-frame markers (SOF0-SOF15 without DHT C4, JPG C8, DAC CC) and JPEG-LS SOF55.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
#: How far into a frame the codestream's size marker is looked for (JP2 boxes may precede it).
_MARKER_SEARCH = 65536


class BoundedReader(io.BufferedReader):
    """A binary file whose ``read(n)`` never asks for more than the bytes left in the file.

    CPython allocates the whole ``n`` of ``read(n)`` before reading; pydicom passes element
    lengths straight from the file, so a damaged length meant a multi-gigabyte allocation.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self.size = os.fstat(self.fileno()).st_size

    def read(self, n: int | None = -1) -> bytes:  # type: ignore[override]
        if n is not None and n > 0:
            n = min(n, self.size - self.tell())
            if n <= 0:
                return b""
        return super().read(n)


def check_size(path: str, rows: int, cols: int, frames: int = 1, bytes_per_pixel: float = 2.0,
               samples: int = 1) -> None:
    """Refuse a header whose image would exceed MAX_IMAGE_SIDE or MAX_DECODED_BYTES."""
    if not (1 <= rows <= MAX_IMAGE_SIDE and 1 <= cols <= MAX_IMAGE_SIDE):
        raise ImplausibleImageError(path, f"matrix {rows} x {cols} outside 1..{MAX_IMAGE_SIDE} "
                                          "(refused before decoding)")
    need = rows * cols * max(frames, 1) * max(samples, 1) * bytes_per_pixel
    if need > MAX_DECODED_BYTES:
        raise ImplausibleImageError(path, f"{frames} frame(s) of {rows} x {cols} would take "
                                          f"{need / 2**20:.0f} MiB, above {MAX_DECODED_BYTES // 2**20} MiB "
                                          "(refused before decoding)")


def check_inflated_size(path: str, head: bytes, fh: Any) -> None:
    """For a deflated data set, inflate at most MAX_INFLATED_BYTES before pydicom inflates it all.

    ``head`` is the start of the file, ``fh`` an open binary file (left at its start).
    """
    if _DEFLATED not in head[:4096] or head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
        return
    (meta_len,) = struct.unpack("<I", head[140:144])
    fh.seek(144 + meta_len)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        while chunk := fh.read(1 << 20):
            total += len(inflater.decompress(chunk, MAX_INFLATED_BYTES + 1 - total))
            while inflater.unconsumed_tail and total <= MAX_INFLATED_BYTES:
                total += len(inflater.decompress(inflater.unconsumed_tail, MAX_INFLATED_BYTES + 1 - total))
            if total > MAX_INFLATED_BYTES:
                raise ImplausibleImageError(path, f"deflated data set inflates to more than "
                                                  f"{MAX_INFLATED_BYTES // 2**20} MiB (refused)")
    except zlib.error:
        pass  # not a valid deflate stream: pydicom reports it as a corrupt file
    finally:
        fh.seek(0)


def _j2k_size(frame: bytes) -> tuple[int, int, int] | None:
    """(rows, cols, components) from a JPEG 2000 SIZ marker, None if there is none."""
    i = frame.find(b"\xff\x4f\xff\x51", 0, _MARKER_SEARCH)
    if i < 0 or len(frame) < i + 42:
        return None
    xsiz, ysiz, xo, yo = struct.unpack(">IIII", frame[i + 8:i + 24])
    (csiz,) = struct.unpack(">H", frame[i + 40:i + 42])
    return ysiz - yo, xsiz - xo, csiz


def _jpeg_size(frame: bytes) -> tuple[int, int, int] | None:
    """(rows, cols, components) from the first JPEG / JPEG-LS SOF marker, None if none."""
    if frame[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= min(len(frame), _MARKER_SEARCH):
        if frame[i] != 0xFF:
            return None
        marker = frame[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        (length,) = struct.unpack(">H", frame[i + 2:i + 4])
        if marker in _SOF:
            if len(frame) < i + 10:
                return None
            rows, cols = struct.unpack(">HH", frame[i + 5:i + 9])
            return rows, cols, frame[i + 9]
        i += 2 + length
    return None


def check_codestreams(path: str, pixel_data: bytes, syntax: str, rows: int, cols: int,
                      frames: int, samples: int = 1) -> None:
    """Refuse compressed frames whose codestream promises another size than the header.

    Raises:
        ImplausibleImageError: a frame's codestream is larger than Rows x Columns (or has more
            components than SamplesPerPixel): its decoder would allocate for that size.
        MissingPixelDataError: the encapsulated frames or the size marker cannot be found.
    """
    if syntax in _J2K_SYNTAXES:
        kind, parse = "JPEG 2000", _j2k_size
    elif syntax in _JPEG_SYNTAXES:
        kind, parse = "JPEG", _jpeg_size
    else:
        return  # RLE and native data are decoded into buffers sized from the checked header
    from pydicom.encaps import generate_frames

    try:
        for k, frame in enumerate(generate_frames(pixel_data, number_of_frames=frames)):
            if k >= frames:
                break
            size = parse(bytes(frame[:_MARKER_SEARCH]))
            if size is None:
                raise MissingPixelDataError(path, f"frame {k + 1}: no {kind} size marker in the codestream")
            if size[0] != rows or size[1] != cols or size[2] > max(samples, 1) or size[2] < 1:
                raise ImplausibleImageError(
                    path, f"frame {k + 1}: {kind} codestream is {size[0]} x {size[1]} with {size[2]} "
                          f"component(s), the header says {rows} x {cols} with {samples} "
                          "(refused before decoding)")
    except (ValueError, struct.error, IndexError) as exc:
        raise MissingPixelDataError(path, f"encapsulated pixel data cannot be split into frames "
                                          f"({type(exc).__name__}: {exc})") from exc
