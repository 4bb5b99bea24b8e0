"""Running a migration: the checks, libvirt's call, progress and cancel.

:func:`migrate` takes two connected services (source and destination),
checks first (:func:`vmtui.core.migrate.precheck`; any error refuses with
every reason), then runs libvirt's migration on a worker of the source with
the destination's connection held open, polls the job's statistics
(``jobStats``: data processed and remaining, memory dirty rate, expected
downtime) for ``progress`` and aborts the job (``abortJob``) when ``cancel``
is set. When it fails, the error says why and where the VM is now: a failed
or cancelled migration leaves it running on the source.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import libvirt

from ..errors import VmtuiError
from ..sizes import fmt_bytes
from . import CopiedDisk, MigrationOptions, MigrationPlan, precheck

if TYPE_CHECKING:  # pragma: no cover
    from ..connection.service import LibvirtService

log = logging.getLogger(__name__)

POLL = 0.5  # s between two looks at the job
NO_LIMIT = 10 * 365 * 86400.0  # a migration takes what it takes; cancel stops it


class MigrationRefused(VmtuiError):
    """A check failed: nothing was started."""

    def __init__(self, plan: MigrationPlan) -> None:
        self.plan = plan
        super().__init__("migrate", f"domain '{plan.name}' to {plan.dest}", " ".join(plan.errors),
                         f"Nothing was changed: '{plan.name}' stays on {plan.source}.")


class MigrationCancelled(VmtuiError):
    """Cancelled on request; the VM stayed on the source."""


@dataclass
class MigrationProgress:
    """One look at the migration job (``virDomainGetJobStats``)."""

    elapsed_ms: int | None = None
    data_total: int | None = None
    data_processed: int | None = None
    data_remaining: int | None = None
    dirty_rate: int | None = None  # memory pages dirtied per second
    page_size: int | None = None
    expected_downtime_ms: int | None = None
    disk_total: int | None = None
    disk_processed: int | None = None
    disk_remaining: int | None = None

    @property
    def fraction(self) -> float | None:
        if self.data_total and self.data_processed is not None:
            return min(1.0, self.data_processed / self.data_total)
        return None

    def text(self) -> str:
        bits = []
        if self.data_total:
            done = self.fraction or 0.0
            bits.append(f"{done * 100:.0f}% of {fmt_bytes(self.data_total)}")
        if self.data_remaining is not None:
            bits.append(f"{fmt_bytes(self.data_remaining)} left")
        if self.disk_total:
            bits.append(f"disks {fmt_bytes(self.disk_processed or 0)}/{fmt_bytes(self.disk_total)}")
        if self.dirty_rate is not None:
            rate = self.dirty_rate * (self.page_size or 4096)
            bits.append(f"memory dirtied {fmt_bytes(rate)}/s")
        if self.expected_downtime_ms is not None:
            bits.append(f"expected downtime {self.expected_downtime_ms} ms")
        if self.elapsed_ms is not None:
            bits.append(f"{self.elapsed_ms / 1000:.1f} s")
        return ", ".join(bits) or "starting"


@dataclass
class MigrationResult:
    uuid: str
    name: str
    source: str
    dest: str
    live: bool
    seconds: float
    copied: list[CopiedDisk] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    last: MigrationProgress | None = None

    def summary(self) -> str:
        how = "live" if self.live else "offline"
        text = f"Migrated '{self.name}' ({how}) from {self.source} to {self.dest} in {self.seconds:.1f} s"
        if self.copied:
            text += f"; copied {', '.join(c.target for c in self.copied)}"
            text += f" (the source's disk{'s stay' if len(self.copied) > 1 else ' stays'} on {self.source})"
        return text


def job_progress(conn: libvirt.virConnect, uuid: str) -> MigrationProgress | None:
    """Blocking: the domain's job right now; None when it has none."""
    stats = conn.lookupByUUIDString(uuid).jobStats(0)
    if not stats or stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
        return None

    def get(key: str) -> int | None:
        value = stats.get(key)
        return int(value) if value is not None else None

    return MigrationProgress(
        elapsed_ms=get("time_elapsed"), data_total=get("data_total"), data_processed=get("data_processed"),
        data_remaining=get("data_remaining"), dirty_rate=get("memory_dirty_rate"),
        page_size=get("memory_page_size"), expected_downtime_ms=get("downtime"),
        disk_total=get("disk_total"), disk_processed=get("disk_processed"), disk_remaining=get("disk_remaining"))


async def plan_migration(src: "LibvirtService", dst: "LibvirtService", uuid: str,
                         opts: MigrationOptions) -> MigrationPlan:
    """The checks, on the source's worker (the destination held open)."""
    d = src.domains.get(uuid)
    name = d.name if d else uuid
    return await src.call_with(
        dst, lambda s, t: precheck(s, t, uuid, opts, source=src.name or src.display_uri,
                                   dest=dst.name or dst.display_uri, src_uri=src.uri, dst_uri=dst.uri),
        action="check the migration of", obj=f"domain '{name}' to {dst.name or dst.display_uri}",
        timeout=max(src.timeout, 60))


def _run(plan: MigrationPlan) -> Callable[[libvirt.virConnect, libvirt.virConnect], str]:
    def run(sconn: libvirt.virConnect, dconn: libvirt.virConnect) -> str:
        dom = sconn.lookupByUUIDString(plan.uuid)
        if plan.flags & libvirt.VIR_MIGRATE_PEER2PEER:
            dom.migrateToURI3(plan.dest_uri, plan.params, plan.flags)
            return plan.name
        return dom.migrate3(dconn, plan.params, plan.flags).name()
    return run


async def migrate(src: "LibvirtService", dst: "LibvirtService", uuid: str, opts: MigrationOptions, *,
                  progress: Callable[[MigrationProgress], None] | None = None,
                  cancel: asyncio.Event | None = None, poll: float = POLL,
                  plan: MigrationPlan | None = None) -> MigrationResult:
    """Check, then migrate domain ``uuid`` from ``src`` to ``dst``.

    Raises :class:`MigrationRefused` (a check failed: nothing started),
    :class:`MigrationCancelled`, or VmtuiError (libvirt's reason, and where
    the VM is now)."""
    if plan is None:
        plan = await plan_migration(src, dst, uuid, opts)
    if not plan.ok:
        raise MigrationRefused(plan)
    obj = f"domain '{plan.name}' from {plan.source} to {plan.dest}"
    started = time.monotonic()
    task = asyncio.ensure_future(src.call_with(dst, _run(plan), timeout=NO_LIMIT, action="migrate", obj=obj))
    aborted = False
    downtime_set = plan.max_downtime_ms is None or not plan.live
    last: MigrationProgress | None = None
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll)
            if task in done:
                break
            if cancel is not None and cancel.is_set() and not aborted:
                aborted = True
                try:
                    await src.call(lambda c: c.lookupByUUIDString(uuid).abortJob(), action="cancel the migration of",
                                   obj=f"domain '{plan.name}'")
                except VmtuiError as err:
                    log.info("abort of %s: %s", plan.name, err)
                continue
            if not plan.live:
                continue
            try:
                now = await src.call(lambda c: job_progress(c, uuid), action="read the migration progress of",
                                     obj=f"domain '{plan.name}'")
            except VmtuiError as err:
                log.info("migration progress of %s: %s", plan.name, err)
                continue
            if now is None:
                continue
            last = now
            if not downtime_set:
                downtime_set = True
                ms = int(plan.max_downtime_ms or 0)
                try:
                    await src.call(lambda c: c.lookupByUUIDString(uuid).migrateSetMaxDowntime(ms, 0),
                                   action="set the maximum downtime of", obj=f"domain '{plan.name}'")
                except VmtuiError as err:
                    log.warning("%s", err.message)
            if progress is not None:
                progress(now)
        task.result()
    except VmtuiError as err:
        where = await _where_now(src, dst, uuid, plan)
        if aborted:
            raise MigrationCancelled("migrate", obj, "cancelled", where) from None
        hint = "\n".join(h for h in (err.hint, where) if h)
        raise type(err)(err.action, err.obj, err.cause, hint, err.code) from None
    except asyncio.CancelledError:
        # the caller went away: the migration must not go on unseen
        if not task.done():
            try:
                await asyncio.shield(src.call(lambda c: c.lookupByUUIDString(uuid).abortJob(),
                                              action="cancel the migration of", obj=f"domain '{plan.name}'"))
            except VmtuiError:
                pass
        raise
    finally:
        if not task.done():
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
    seconds = time.monotonic() - started
    await asyncio.gather(src.refresh_domain(uuid), dst.refresh_domain(uuid), return_exceptions=True)
    return MigrationResult(uuid=uuid, name=plan.name, source=plan.source, dest=plan.dest, live=plan.live,
                           seconds=seconds, copied=list(plan.copied), notes=list(plan.notes), last=last)


async def _where_now(src: "LibvirtService", dst: "LibvirtService", uuid: str, plan: MigrationPlan) -> str:
    """After a failure: where the VM is, in words."""
    try:
        info = await src.refresh_domain(uuid)
    except VmtuiError:
        info = None
    if info is not None:
        return f"'{plan.name}' is {info.state} on {plan.source}, as before."
    try:
        there = await dst.refresh_domain(uuid)
    except VmtuiError:
        there = None
    if there is not None:
        return f"'{plan.name}' is {there.state} on {plan.dest} now."
    return f"Check where '{plan.name}' is: it is not listed on {plan.source} any more."
