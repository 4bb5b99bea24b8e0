"""One action on many VMs, across hosts.

:func:`run_bulk` runs an action (:data:`ACTIONS`) on every VM given, each
on its own host's service, concurrently with at most ``per_host`` at once
per host (one slow host never holds up the others, and no host gets more
than a few calls at a time). A failure is kept with the VM's name and the
reason and never stops the rest; VMs the action does not apply to (starting
a running VM) are skipped with the reason, before anything runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ..connection.rows import DomainInfo
from ..errors import VmtuiError
from .model import row_key

if TYPE_CHECKING:  # pragma: no cover
    from ..connection.service import LibvirtService
    from ..migrate import MigrationOptions

log = logging.getLogger(__name__)

PER_HOST = 3  # actions in flight at once on one host (a link has 4 threads)

WAITING, RUNNING, DONE, FAILED, SKIPPED = "waiting", "running", "done", "failed", "skipped"


@dataclass
class BulkOptions:
    snapshot_name: str = ""  # "" : made from the time
    dest: "LibvirtService | None" = None  # migrate: where to
    migration: "MigrationOptions | None" = None


def _why_not_start(d: DomainInfo, o: BulkOptions) -> str | None:
    if d.is_active:
        return f"already {d.state}"
    if d.template:
        return "a template (start it alone with s: its clones depend on its disks)"
    return None


def _why_not_running(d: DomainInfo, o: BulkOptions) -> str | None:
    return None if d.is_running else f"{d.state}, not running"


def _why_not_active(d: DomainInfo, o: BulkOptions) -> str | None:
    return None if d.is_active else f"{d.state}"


def _why_not_paused(d: DomainInfo, o: BulkOptions) -> str | None:
    return None if d.is_paused else f"{d.state}, not paused"


def _why_not_persistent(d: DomainInfo, o: BulkOptions) -> str | None:
    return None if d.persistent else "transient (no definition)"


def _why_not_migrate(d: DomainInfo, o: BulkOptions) -> str | None:
    dest = o.dest
    if dest is not None and (dest.name or dest.display_uri) == (d.host or ""):
        return f"already on {d.host}"
    if o.migration is not None:
        if o.migration.live and not d.is_active:
            return f"{d.state}: only running VMs migrate live"
        if not o.migration.live and d.is_active:
            return f"{d.state}: an offline migration moves shut-off VMs"
    return None


def _no_reason(d: DomainInfo, o: BulkOptions) -> str | None:
    return None


async def _start(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    await svc.start(d.uuid)
    return "started"


async def _shutdown(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    await svc.shutdown(d.uuid)
    return "asked to shut down"


async def _force_off(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    await svc.force_off(d.uuid)
    return "forced off"


async def _pause(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    await svc.pause(d.uuid)
    return "paused"


async def _resume(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    await svc.resume(d.uuid)
    return "resumed"


async def _autostart_on(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    await svc.set_autostart(d.uuid, True)
    return "starts at host boot"


async def _autostart_off(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    await svc.set_autostart(d.uuid, False)
    return "no longer starts at host boot"


def snapshot_name(now: float | None = None) -> str:
    return time.strftime("bulk-%Y%m%d-%H%M%S", time.localtime(now))


async def _snapshot(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    from ..storage import snapshots

    name = o.snapshot_name or snapshot_name()
    await svc.call(lambda c: snapshots.create_snapshot(c, d.uuid, name, "taken by a bulk action of vmtui"),
                   action=f"create snapshot '{name}' of", obj=f"domain '{d.name}'", timeout=max(svc.timeout, 600))
    return f"snapshot '{name}' taken"


async def _delete(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    result = await svc.delete(d.uuid, ())
    if result.errors:
        raise VmtuiError("delete", f"domain '{d.name}'", "; ".join(result.errors))
    return "deleted (its disks are kept)"


async def _migrate(svc: "LibvirtService", d: DomainInfo, o: BulkOptions) -> str:
    from ..migrate import MigrationOptions
    from ..migrate.job import migrate

    if o.dest is None:
        raise VmtuiError("migrate", f"domain '{d.name}'", "no destination host chosen")
    result = await migrate(svc, o.dest, d.uuid, o.migration or MigrationOptions(live=d.is_active))
    return f"migrated to {result.dest} in {result.seconds:.1f} s"


@dataclass(frozen=True)
class BulkAction:
    name: str
    label: str  # in the menu and the confirmation: "Start"
    key: str  # its key in the bulk menu
    why_not: Callable[[DomainInfo, BulkOptions], str | None]
    run: Callable[["LibvirtService", DomainInfo, BulkOptions], Awaitable[str]]
    warning: str = ""  # said in the confirmation


ACTIONS: list[BulkAction] = [
    BulkAction("start", "Start", "s", _why_not_start, _start),
    BulkAction("shutdown", "Shut down", "h", _why_not_running, _shutdown),
    BulkAction("force_off", "Force off", "F", _why_not_active, _force_off,
               "Like pulling the power cord: unsaved data in the guests is lost."),
    BulkAction("pause", "Pause", "p", _why_not_running, _pause),
    BulkAction("resume", "Resume", "r", _why_not_paused, _resume),
    BulkAction("autostart_on", "Autostart on", "a", _why_not_persistent, _autostart_on),
    BulkAction("autostart_off", "Autostart off", "A", _why_not_persistent, _autostart_off),
    BulkAction("snapshot", "Snapshot", "z", _no_reason, _snapshot),
    BulkAction("migrate", "Migrate", "M", _why_not_migrate, _migrate),
    BulkAction("delete", "Delete", "D", _no_reason, _delete,
               "Running VMs are forced off; definitions are removed; disks are kept."),
]
BY_NAME = {a.name: a for a in ACTIONS}


@dataclass
class Outcome:
    key: str
    name: str
    host: str
    state: str = WAITING  # waiting, running, done, failed, skipped
    message: str = ""


@dataclass
class BulkReport:
    action: str
    outcomes: list[Outcome] = field(default_factory=list)

    def _with(self, state: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == state]

    @property
    def done(self) -> list[Outcome]:
        return self._with(DONE)

    @property
    def failed(self) -> list[Outcome]:
        return self._with(FAILED)

    @property
    def skipped(self) -> list[Outcome]:
        return self._with(SKIPPED)

    def summary(self) -> str:
        """One paragraph: how many, and each failure by name and reason."""
        label = BY_NAME[self.action].label if self.action in BY_NAME else self.action
        parts = [f"{label}: {len(self.done)} of {len(self.outcomes)} done"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        text = ", ".join(parts) + "."
        for o in self.failed:
            text += f"\n{_who(o)}: {o.message}"
        return text


def _who(o: Outcome) -> str:
    return f"'{o.name}' on {o.host}" if o.host else f"'{o.name}'"


def plan_bulk(action: BulkAction, targets: list[tuple["LibvirtService", DomainInfo]],
              options: BulkOptions | None = None) -> BulkReport:
    """The outcomes before running: the VMs the action does not apply to are skipped, with why."""
    options = options or BulkOptions()
    report = BulkReport(action.name)
    for svc, d in targets:
        why = action.why_not(d, options)
        if why is None and svc.readonly:
            why = "read-only connection"
        report.outcomes.append(Outcome(row_key(d), d.name, d.host, SKIPPED if why else WAITING, why or ""))
    return report


async def run_bulk(action: BulkAction, targets: list[tuple["LibvirtService", DomainInfo]], *,
                   options: BulkOptions | None = None, per_host: int = PER_HOST,
                   progress: Callable[[Outcome], Any] | None = None,
                   report: BulkReport | None = None) -> BulkReport:
    """Run ``action`` on ``targets`` ((service, VM) pairs); never raises for
    one VM's failure. ``progress(outcome)`` hears every change of state."""
    options = options or BulkOptions()
    if not options.snapshot_name and action.name == "snapshot":
        options.snapshot_name = snapshot_name()
    report = report or plan_bulk(action, targets, options)
    limits: dict[int, asyncio.Semaphore] = {}

    def tell(o: Outcome) -> None:
        if progress is not None:
            try:
                progress(o)
            except Exception:  # a broken display must not stop the work
                log.exception("bulk progress callback failed")

    async def one(svc: "LibvirtService", d: DomainInfo, o: Outcome) -> None:
        sem = limits.setdefault(id(svc), asyncio.Semaphore(max(1, per_host)))
        async with sem:
            o.state = RUNNING
            tell(o)
            try:
                o.message = await action.run(svc, d, options)
                o.state = DONE
            except VmtuiError as err:
                o.state, o.message = FAILED, err.message.replace("\n", " ")
            except Exception as err:  # never stop the others; a bug still says something
                log.exception("bulk %s of %s failed", action.name, d.name)
                o.state, o.message = FAILED, f"{type(err).__name__}: {err}"
            tell(o)

    jobs = []
    for (svc, d), o in zip(targets, report.outcomes):
        if o.state == SKIPPED:
            tell(o)
            continue
        jobs.append(one(svc, d, o))
    await asyncio.gather(*jobs)
    return report
