"""Deterministic mutations of seed files: what a damaged disk, a bad export or a hostile
sender does to a file.

Byte-level mutations apply to every format (bit flips, interesting bytes, truncation,
inserted and deleted runs, a duplicated chunk); format-aware ones aim at the fields readers
trust: DICOM element length fields (found with pydicom's own parser, so they hit real length
fields, not random bytes), PNG chunk lengths and IHDR sizes, and for text formats (CSV, YAML)
separators, quotes, path-like ids, NUL bytes, anchors and deep nesting. Every mutation draws
from a ``numpy.random.Generator``, so a seed gives the same corpus on every machine.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Seed", "dicom_length_fields", "png_chunks", "mutate"]

_INTERESTING_8 = (0x00, 0x01, 0x7F, 0x80, 0xFF)
_INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF, 0xFFFF, 0x10000)
_TEXT_INSERTS = (
    ",", ";", "\n", "\r\n", '"', "'", "\x00", "\\", "/", "../", "ID_x/../../y", "/etc/passwd",
    "C:\\\\Windows\\\\x", "nan", "inf", "-1", "1e309", "9" * 40, "", "\ufeff", "\u0661\u0662",
    "&a [1, 2]", "*a", "!!python/object/apply:os.system ['true']", "{", "[", "]", "}", ": ",
    "- ", "? ", "%YAML 1.1\n", "---\n", "...\n", "\t", "#", "ID_", "CQ500-CT-", "_any",
)


@dataclass(frozen=True)
class Seed:
    """One seed file: its name (for reports), bytes and the format's special offsets."""

    name: str
    data: bytes
    kind: str  # "dicom", "png" or "text"
    lengths: tuple[tuple[int, int], ...] = ()  # (offset, size in bytes) of length fields
    dims: tuple[tuple[int, int], ...] = ()  # (offset, size) of size fields (PNG IHDR)


def dicom_length_fields(data: bytes) -> tuple[tuple[int, int], ...]:
    """(offset, size) of every top-level element's length field, from pydicom's own parser."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO

    out: list[tuple[int, int]] = []
    ds = dcmread(DicomBytesIO(data), force=True)
    for group in (ds.file_meta, ds):
        for tag in list(group.keys()):
            raw = group.get_item(tag)
            tell = getattr(raw, "value_tell", None)
            if tell is None:
                continue
            vr = getattr(raw, "VR", None)
            explicit = not getattr(raw, "is_implicit_VR", True)
            size = 2 if explicit and vr not in ("OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UC",
                                                 "UN", "UR", "UT") else 4
            if tell - size >= 0:
                out.append((tell - size, size))
    return tuple(out)


def png_chunks(data: bytes) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """(length fields, IHDR width/height fields) of a PNG's chunks."""
    lengths, dims = [], []
    i = 8
    while i + 8 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        lengths.append((i, 4))
        if data[i + 4:i + 8] == b"IHDR":
            dims += [(i + 8, 4), (i + 12, 4)]
        i += 12 + n
    return tuple(lengths), tuple(dims)


def _pos(rng: np.random.Generator, n: int) -> int:
    return int(rng.integers(0, max(n, 1)))


def _bit_flips(d: bytearray, rng: np.random.Generator, seed: Seed) -> str:
    k = int(rng.integers(1, 9))
    for _ in range(k):
        if d:
            d[_pos(rng, len(d))] ^= 1 << int(rng.integers(8))
    return f"flip {k} bits"


def _interesting(d: bytearray, rng: np.random.Generator, seed: Seed) -> str:
    p = _pos(rng, len(d))
    if d:
        d[p] = int(rng.choice(_INTERESTING_8))
    return f"byte {p} set"


def _truncate(d: bytearray, rng: np.random.Generator, seed: Seed) -> str:
    p = _pos(rng, len(d))
    del d[p:]
    return f"truncate at {p}"


def _insert(d: bytearray, rng: np.random.Generator, seed: Seed) -> str:
    p, n = _pos(rng, len(d) + 1), int(rng.integers(1, 64))
    d[p:p] = rng.bytes(n)
    return f"insert {n} bytes at {p}"


def _delete(d: bytearray, rng: np.random.Generator, seed: Seed) -> str:
    p, n = _pos(rng, len(d)), int(rng.integers(1, 64))
    del d[p:p + n]
    return f"delete {n} bytes at {p}"


def _duplicate(d: bytearray, rng: np.random.Generator, seed: Seed) -> str:
    p, n = _pos(rng, len(d)), int(rng.integers(1, 256))
    q = _pos(rng, len(d) + 1)
    d[q:q] = d[p:p + n]
    return f"copy {n} bytes from {p} to {q}"


def _field(fields: tuple[tuple[int, int], ...], what: str) -> Callable[..., str]:
    def damage(d: bytearray, rng: np.random.Generator, seed: Seed) -> str:
        table = getattr(seed, fields)
        if not table:
            return _bit_flips(d, rng, seed)
        off, size = table[_pos(rng, len(table))]
        if off + size > len(d):
            return "field beyond end"
        old = int.from_bytes(d[off:off + size], "big" if seed.kind == "png" else "little")
        choice = int(rng.integers(4))
        value = (int(rng.choice(_INTERESTING_32)) if choice == 0 else old * int(rng.integers(2, 1000))
                 if choice == 1 else old + int(rng.integers(-8, 9)) if choice == 2
                 else int(rng.integers(0, 2 ** (8 * size))))
        value %= 2 ** (8 * size)
        d[off:off + size] = value.to_bytes(size, "big" if seed.kind == "png" else "little")
        return f"{what} at {off}: {old} -> {value}"
    return damage


def _text_insert(d: bytearray, rng: np.random.Generator, seed: Seed) -> str:
    token = str(rng.choice(np.array(_TEXT_INSERTS, dtype=object)))
    if rng.random() < 0.05:
        token = token * int(rng.integers(2, 3000))  # long fields and deep nesting
    p = _pos(rng, len(d) + 1)
    d[p:p] = token.encode("utf-8")
    return f"insert {token[:20]!r}x{max(len(token), 1)} at {p}"


def _text_line(d: bytearray, rng: np.random.Generator, seed: Seed) -> str:
    lines = bytes(d).split(b"\n")
    i, j = _pos(rng, len(lines)), _pos(rng, len(lines))
    op = int(rng.integers(3))
    if op == 0:
        lines.insert(i, lines[j])
    elif op == 1 and len(lines) > 1:
        del lines[i]
    else:
        lines[i] = lines[i].replace(b",", b",,", 1) if rng.random() < 0.5 else lines[i][: _pos(rng, len(lines[i]) + 1)]
    d[:] = b"\n".join(lines)
    return f"line op {op} at {i}"


def _png_recrc(d: bytearray) -> None:
    """Recompute chunk CRCs so mutations reach the decoder instead of the CRC check."""
    i = 8
    while i + 12 <= len(d):
        (n,) = struct.unpack(">I", d[i:i + 4])
        if i + 12 + n > len(d):
            return
        d[i + 8 + n:i + 12 + n] = struct.pack(">I", zlib.crc32(bytes(d[i + 4:i + 8 + n])) & 0xFFFFFFFF)
        i += 12 + n


_BYTES = (_bit_flips, _interesting, _truncate, _insert, _delete, _duplicate)
_BY_KIND: dict[str, tuple[Callable[..., str], ...]] = {
    "dicom": _BYTES + (_field("lengths", "length"),) * 4,
    "png": _BYTES + (_field("lengths", "chunk length"), _field("dims", "IHDR size"),
                     _field("dims", "IHDR size")),
    "text": (_bit_flips, _truncate, _delete, _duplicate) + (_text_insert,) * 4 + (_text_line,) * 2,
}


def mutate(seed: Seed, rng: np.random.Generator, max_steps: int = 3) -> tuple[bytes, str]:
    """One mutated copy of ``seed`` (1..max_steps stacked mutations) and what was done."""
    d = bytearray(seed.data)
    ops = _BY_KIND[seed.kind]
    done = [ops[_pos(rng, len(ops))](d, rng, seed) for _ in range(int(rng.integers(1, max_steps + 1)))]
    if seed.kind == "png" and rng.random() < 0.7:
        _png_recrc(d)
        done.append("CRCs fixed")
    return bytes(d), "; ".join(done)
