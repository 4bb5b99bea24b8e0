"""Sizes and rates: parse what people type, format what libvirt reports."""

from __future__ import annotations

import re

import humanize

_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024 ** 2, "mb": 1000 ** 2, "mib": 1024 ** 2,
    "g": 1024 ** 3, "gb": 1000 ** 3, "gib": 1024 ** 3,
    "t": 1024 ** 4, "tb": 1000 ** 4, "tib": 1024 ** 4,
    "p": 1024 ** 5, "pb": 1000 ** 5, "pib": 1024 ** 5,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str, default_unit: str = "") -> int:
    """'20G' -> bytes. Single letters (K, M, G, T) are powers of 1024, like
    qemu-img and virsh; KB/MB/GB are powers of 1000; KiB/MiB/GiB are 1024.

    Raises ValueError with a message fit for the field that was typed in.
    """
    m = _SIZE_RE.match(text or "")
    if not m:
        raise ValueError(f"'{text}' is not a size: use a number with an optional unit, e.g. 20G, 512M, 1.5T")
    number, unit = m.group(1), (m.group(2) or default_unit).lower()
    if unit not in _UNITS:
        raise ValueError(f"unknown unit '{m.group(2)}': use K, M, G, T (or KiB, MiB, GiB, TiB)")
    value = float(number) * _UNITS[unit]
    if value != int(value) and _UNITS[unit] == 1:
        raise ValueError("a size in bytes must be a whole number")
    return int(value)


def format_size(n: int) -> str | int:
    """Bytes as the shortest exact size :func:`parse_size` reads back: 20G,
    512M, 64K, or plain bytes (an int)."""
    for unit, factor in (("T", 1024 ** 4), ("G", 1024 ** 3), ("M", 1024 ** 2), ("K", 1024)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return int(n)


def format_memory(mib: int) -> str:
    """MiB as the shortest exact size: 2G, 1536M."""
    return f"{mib // 1024}G" if mib and mib % 1024 == 0 else f"{mib}M"


def fmt_bytes(n: int | float | None) -> str:
    if n is None:
        return "-"
    if abs(n) < 1024:
        return f"{int(n)} B"
    return humanize.naturalsize(n, binary=True, format="%.1f")


def fmt_kib(kib: int | None) -> str:
    return "-" if kib is None else fmt_bytes(int(kib) * 1024)


def fmt_rate(bps: float | None) -> str:
    """Bytes per second, compact: '1.2 MiB/s', '0 B/s'."""
    if bps is None:
        return "-"
    return fmt_bytes(bps) + "/s"


def fmt_percent(p: float | None) -> str:
    return "-" if p is None else f"{p:.0f}%" if p >= 10 else f"{p:.1f}%"
