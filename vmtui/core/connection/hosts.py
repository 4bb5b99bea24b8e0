"""Several hosts at once: one LibvirtService per URI."""

from __future__ import annotations

import asyncio
from typing import Callable

from .service import LibvirtService, normalize_uri


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

    async def open(self, uri: str) -> LibvirtService:
        """The service for ``uri``, connected (raises ConnectError on failure)."""
        key = normalize_uri(uri)
        svc = self._services.get(key)
        if svc is None:
            svc = self._factory(uri)
            await svc.connect()
            self._services[key] = svc
        return svc

    async def close(self, uri: str) -> None:
        svc = self._services.pop(normalize_uri(uri), None)
        if svc is not None:
            await svc.close()

    async def close_all(self) -> None:
        services, self._services = list(self._services.values()), {}
        await asyncio.gather(*(s.close() for s in services), return_exceptions=True)
