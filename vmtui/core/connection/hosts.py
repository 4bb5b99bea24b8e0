"""Several hosts at once: one LibvirtService per URI, each with a name.

The name is what the fleet's list shows in its Host column and what the
rows are keyed by (``DomainInfo.host``): a saved connection's name, else one
made from the URI (``lab1`` for ``qemu+ssh://root@lab1/system``), made
unique among the open hosts.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from .service import LibvirtService, normalize_uri


def default_name(uri: str) -> str:
    """A short name for the host behind ``uri``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    scheme = parts.scheme.split("+", 1)[0]
    path = parts.path.strip("/")
    if scheme == "test":
        stem = PurePosixPath(parts.path).stem
        return stem if stem and stem != "default" else "test"
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if host:
        return host if path in ("", "system") else f"{host}-{path}"
    socket = parse_qs(parts.query).get("socket", [""])[0]
    if socket:
        # /run/<user>/libvirt/libvirt-sock -> <user>
        names = [p for p in PurePosixPath(socket).parts[1:] if p not in ("libvirt", "libvirt-sock", "run", "var")]
        if names:
            return names[-1]
    return "local" if path in ("", "system") else f"local-{path}"


def unique_name(wanted: str, taken: set[str] | list[str]) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3`` ... whichever is free."""
    wanted = " ".join((wanted or "host").split())
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


class HostRegistry:
    """Opens, keeps and closes connection services, one per URI.

    Each service has its own thread pool, events and reconnect loop, so a
    slow or lost host never holds up another.
    """

    def __init__(self, factory: Callable[[str], LibvirtService] | None = None) -> None:
        self._factory = factory or (lambda uri: LibvirtService(uri))
        self._services: dict[str, LibvirtService] = {}

    def __contains__(self, uri: str) -> bool:
        return normalize_uri(uri) in self._services

    def __iter__(self):
        return iter(list(self._services.values()))

    def __len__(self) -> int:
        return len(self._services)

    def get(self, uri: str) -> LibvirtService | None:
        return self._services.get(normalize_uri(uri))

    def named(self, name: str) -> LibvirtService | None:
        return next((s for s in self._services.values() if s.name == name), None)

    def names(self) -> list[str]:
        return [s.name for s in self._services.values()]

    def add(self, uri: str, name: str = "") -> LibvirtService:
        """The service for ``uri`` (made, not connected, when new), named
        ``name`` or after its URI, unique among the others."""
        key = normalize_uri(uri)
        svc = self._services.get(key)
        if svc is None:
            svc = self._factory(uri)
            svc.name = unique_name(name or default_name(uri), set(self.names()))
            self._services[key] = svc
        return svc

    def adopt(self, service: LibvirtService, name: str = "") -> LibvirtService:
        """Keep an existing service (named as :meth:`add` would)."""
        key = normalize_uri(service.uri)
        if key not in self._services:
            others = {s.name for s in self._services.values()}
            service.rename(unique_name(name or service.name or default_name(service.display_uri), others))
            self._services[key] = service
        return self._services[key]

    async def open(self, uri: str, name: str = "") -> LibvirtService:
        """The service for ``uri``, connected (raises ConnectError on failure)."""
        key = normalize_uri(uri)
        fresh = key not in self._services
        svc = self.add(uri, name)
        if fresh:
            try:
                await svc.connect()
            except BaseException:
                self._services.pop(key, None)
                raise
        return svc

    async def close(self, uri: str) -> None:
        svc = self._services.pop(normalize_uri(uri), None)
        if svc is not None:
            await svc.close()

    async def close_all(self) -> None:
        services, self._services = list(self._services.values()), {}
        await asyncio.gather(*(s.close() for s in services), return_exceptions=True)
