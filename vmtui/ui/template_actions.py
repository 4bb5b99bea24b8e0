"""The app's actions behind the list keys m, T, u and l (:class:`TemplateActions`,
mixed into VmtuiApp), and which of them apply to a VM.

Kept apart from :mod:`vmtui.ui.templates_ui` (the clone and prepare screens)
so that starting vmtui does not import those screens, the clone machinery
and what they pull in: the actions import them when a key is pressed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from textual import work
from textual.css.query import NoMatches

from ..core.errors import VmtuiError
from ..core.connection.rows import DomainInfo
from ..core.fleet.model import key_of

if TYPE_CHECKING:
    from ..core.clones import clone
    from .templates_ui import CloneOutcome

log = logging.getLogger(__name__)


def template_action_enabled(action: str, d: DomainInfo) -> bool | None:
    """Whether one of our actions applies to ``d`` (None: not ours)."""
    match action:
        case "template_mark":
            return d.persistent and (d.template or d.is_shut_off)
        case "prepare_template":
            return d.persistent and d.is_shut_off
        case "from_template":
            return d.template and d.is_shut_off
        case "clone":
            return d.is_shut_off
    return None


class TemplateActions:
    """``action_*`` for the list keys m, T, u, l (VmtuiApp inherits these)."""

    def action_template_mark(self) -> None:
        d = self._selected_or_none("template_mark")
        if d is None:
            return
        marked = not d.template
        uuid = d.uuid
        svc = self.service_of(d)
        from ..core.clones import templates

        async def job() -> None:
            await svc.call(lambda c: templates.set_marked_by_uuid(c, uuid, marked),
                           action="mark as template" if marked else "unmark template",
                           obj=f"domain '{d.name}'")
            await svc.refresh_domain(uuid)

        self._run("Template", job, f"'{d.name}' is {'now' if marked else 'no longer'} a template")

    def action_prepare_template(self) -> None:
        if d := self._selected_or_none("prepare_template"):
            from .templates_ui import PrepareTemplateScreen
            self.push_screen(PrepareTemplateScreen(self.service_of(d), d))

    def action_clone(self) -> None:
        d = self._selected_or_none("clone")
        if d is None:
            return
        from .templates_ui import CloneScreen

        def done(outcome: CloneOutcome | None) -> None:
            if outcome is None:
                return
            notes = "; ".join(outcome.result.notes)
            self.notify(f"Cloned '{d.name}' as '{outcome.result.name}'" + (f" ({notes})" if notes else ""),
                        title="Clone", timeout=6)
            self._select_when_listed(key_of(d.host, outcome.result.uuid))

        self.push_screen(CloneScreen(self.service_of(d), d), done)

    def action_from_template(self) -> None:
        if d := self._selected_or_none("from_template"):
            self._from_template(d)

    @work(group="from-template")
    async def _from_template(self, d: DomainInfo) -> None:
        from .templates_ui import NewFromTemplateScreen
        outcome = await self.push_screen_wait(NewFromTemplateScreen(self.service_of(d), d))
        if outcome is None:
            return
        try:
            await self._after_template_clone(d, outcome)
        except Exception as err:  # never a traceback: the VM exists, say what is missing
            log.exception("new VM from template failed after the clone")
            self.notify(f"'{outcome.result.name}' was created, but the next step failed: {err}",
                        title="New VM from template", severity="error", timeout=15)

    async def _after_template_clone(self, d: DomainInfo, outcome: "CloneOutcome") -> None:
        from ..core.clones import templates
        res = outcome.result
        svc = self.service_of(d)
        self._select_when_listed(key_of(d.host, res.uuid))
        try:
            meta = await svc.call(lambda c: templates.meta_by_uuid(c, d.uuid),
                                  action="read the template metadata of", obj=f"domain '{d.name}'")
        except VmtuiError as err:
            self.notify(err.message, title="New VM from template", severity="error", timeout=12)
            meta = templates.TemplateMeta()
        seeded = await self._cloud_init_step(svc, res, outcome.pool, meta.firstboot)
        msg = f"Created '{res.name}' from template '{d.name}'"
        if seeded:
            msg += " with a cloud-init seed"
        adopt = getattr(self, "adopt_vm", None)
        if adopt is not None:  # its boot is followed; its seed goes once cloud-init finished with it
            adopt(res.uuid, svc)
        if outcome.start:
            try:
                await svc.start(res.uuid)
                msg += ", started"
            except VmtuiError as err:
                self.notify(err.message, title="Start", severity="error", timeout=12)
        self.notify(msg, title="New VM from template", timeout=6)

    async def _cloud_init_step(self, svc, res: "clone.CloneResult", pool: str | None, firstboot: str | None) -> bool:
        """The cloud-init editor, then the seed ISO. Lazily imported: another
        part of vmtui provides them; without them the step is skipped with a note."""
        from ..core.clones import templates
        try:
            from ..core.provision.seed import CloudInitDocs, attach_seed  # type: ignore[import-not-found]
            from .cloudinit_editor import CloudInitEditorScreen  # type: ignore[import-not-found]
        except ImportError:
            note = "The cloud-init step is not available in this build: skipped."
            if firstboot:
                note += " The template's first-boot config was NOT applied to the new VM."
            self.notify(note, title="New VM from template", severity="warning", timeout=12)
            return False
        initial = CloudInitDocs(
            user_data=templates.merge_user_data("#cloud-config\n", firstboot),
            meta_data=f"instance-id: {res.uuid}\nlocal-hostname: {res.name}\n")
        docs = await self.push_screen_wait(CloudInitEditorScreen(svc, hostname=res.name, initial=initial))
        if docs is None:
            if firstboot:
                self.notify("cloud-init skipped: the template's first-boot config was not applied.",
                            title="New VM from template", severity="warning", timeout=10)
            return False
        docs.user_data = templates.merge_user_data(docs.user_data, firstboot)
        if not pool:
            self.notify("No storage pool for the seed ISO: cloud-init skipped.",
                        title="New VM from template", severity="warning", timeout=10)
            return False
        try:
            await svc.call(lambda c: attach_seed(c, res.name, pool, docs, detach_after_first_boot=True,
                                                 uuid=res.uuid),
                           action="attach the cloud-init seed to", obj=f"domain '{res.name}'",
                           timeout=600)
        except VmtuiError as err:
            self.notify(err.message, title="cloud-init", severity="error", timeout=12)
            return False
        return True

    def _select_when_listed(self, uuid: str) -> None:
        """Select the new VM (its row key) once its row is there (the defined event brings it)."""
        async def wait() -> None:
            for _ in range(100):
                try:
                    listed = self.list_screen.is_mounted and uuid in self.table.domains
                except NoMatches:  # the app is shutting down
                    return
                if not self.list_screen.is_mounted:
                    return
                if listed:
                    try:
                        self.table.select(uuid)
                    except Exception:
                        pass
                    return
                await asyncio.sleep(0.05)
        self.run_worker(wait(), group="select-new")

    @work(group="start")
    async def start_checked(self, d: DomainInfo) -> None:
        """Start ``d`` (the VM selected at key time) once
        :func:`confirm_start` agrees."""
        from .templates_ui import confirm_start
        svc = self.service_of(d)
        if await confirm_start(self, svc, d.uuid, d.name, template=d.template):
            self._run("Start", lambda: svc.start(d.uuid), f"Started '{d.name}'")
