"""A connection wrapper that counts libvirt calls (for tests and bench/)."""

from __future__ import annotations

from collections import Counter

import libvirt


class CountingConnection:
    """Wraps a virConnect; every method call is counted by name."""

    def __init__(self, conn: libvirt.virConnect) -> None:
        self._conn = conn
        self.counts: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __getattr__(self, name: str):
        attr = getattr(self._conn, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.counts[name] += 1
            return attr(*args, **kwargs)

        return counted


def counting_opener(holder: list):
    """An ``open_func`` for LibvirtService that keeps each wrapper in ``holder``."""

    def open_(uri: str, readonly: bool):
        conn = libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
        wrapped = CountingConnection(conn)
        holder.append(wrapped)
        return wrapped

    return open_
