"""The snapshots of one VM (domain-list key ``z``) as a tree: create,
revert, delete (``virsh snapshot-list --tree``, ``snapshot-create``,
``snapshot-revert``, ``snapshot-delete``)."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Label, RadioSet, Static

from ..core.storage import snapshots
from ..core.errors import VmtuiError
from ..core.connection.service import LibvirtService
from .footer import KeyFooter
from .forms import DomainItemsScreen, FieldError, SubmitDialog, dialog_buttons, labelled
from .templates_ui import clones_text, linked_clones
from .toggles import Checkbox, RadioButton


class SnapshotsScreen(DomainItemsScreen):
    """The snapshot tree of one VM; ``*`` marks the current snapshot."""

    detail_id = "#snap-detail"
    busy_group = "snaps-actions"

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("n", "create", "New"),
        Binding("v", "revert", "Revert"),
        Binding("D,delete", "delete", "Delete"),
        Binding("R,f5", "reload", "Reload"),
    ]

    def __init__(self, service: LibvirtService, uuid: str, name: str) -> None:
        super().__init__(service, uuid, name)
        self.snaps: list[tuple[int, snapshots.SnapshotInfo]] = []

    def compose(self) -> ComposeResult:
        yield Static(f" Snapshots — {escape(self.domain_name)}", id="snaps-title", classes="screen-title")
        yield DataTable(id="snaps-table", cursor_type="row")
        yield Static("Loading…", id="snap-detail")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_column("", key="current", width=1)
        t.add_columns("Name", "Created", "State", "Kind", "Description")
        t.focus()
        self.load()

    @property
    def selected(self) -> snapshots.SnapshotInfo | None:
        item = self._item_at_cursor(self.snaps)
        return item[1] if item else None

    @work(exclusive=True, group="snaps-load")
    async def load(self, select: str | None = None) -> None:
        try:
            tree = await self.service.call(lambda c: snapshots.list_snapshots(c, self.uuid),
                                           action="list the snapshots of", obj=f"domain '{self.domain_name}'")
        except VmtuiError as err:
            self._load_failed(err, "Snapshots")
            return
        keep = select or (self.selected.name if self.selected else None)
        self.snaps = tree
        t = self.query_one(DataTable)
        t.clear()
        for (depth, s), branch in zip(tree, snapshots.tree_prefixes(tree)):
            first_line = s.description.splitlines()[0] if s.description else ""
            if len(first_line) > 28:
                first_line = first_line[:27] + "…"
            t.add_row("*" if s.current else "", Text(branch + s.name, style="bold" if s.current else ""),
                      s.created_text, s.state or "-", s.kind, first_line, key=s.name)
        index = next((i for i, (_, s) in enumerate(tree) if s.name == keep), None)
        if index is None:
            index = next((i for i, (_, s) in enumerate(tree) if s.current), None)
        if index is not None:
            t.move_cursor(row=index)
        current = next((s.name for _, s in tree if s.current), None)
        self.query_one("#snaps-title", Static).update(
            f" Snapshots — {escape(self.domain_name)} ({len(tree)}"
            + (f", current: {escape(current)}" if current else "") + ")")
        self._detail()

    def _detail(self) -> None:
        s = self.selected
        w = self.query_one("#snap-detail", Static)
        if s is None:
            w.update("No snapshots. n takes one.")
            return
        lines = [Text.assemble((s.name + (" (current): " if s.current else ": "), "bold"),
                               f"taken {s.created_full}, the VM was {s.state or '?'}; {s.kind}")]
        if s.parent:
            lines.append(Text(f"parent {s.parent}", style="dim"))
        if s.children:
            lines.append(Text(f"children {', '.join(s.children)}", style="dim"))
        if s.description:
            lines.append(Text(s.description))
        w.update(Text("\n").join(lines))

    @work(group="snaps-dialog")
    async def action_create(self) -> None:
        existing = [s.name for _, s in self.snaps]
        answer = await self.app.push_screen_wait(NewSnapshotDialog(self.domain_name, self.running, existing))
        if answer is None:
            return
        name, description, memory = answer
        timeout = max(self.service.timeout, 600)

        async def job():
            return await self.service.call(
                lambda c: snapshots.create_snapshot(c, self.uuid, name, description, memory=memory),
                action=f"create snapshot '{name}' of", obj=f"domain '{self.domain_name}'", timeout=timeout)
        self._busy("New snapshot", job, f"Took snapshot '{escape(name)}' of '{escape(self.domain_name)}'", name)

    @work(group="snaps-dialog")
    async def action_revert(self) -> None:
        s = self.selected
        if s is None:
            return
        try:  # reverting rewrites the disks: linked clones on them would break
            clones = await linked_clones(self.service, self.uuid, self.domain_name)
        except VmtuiError as err:
            self.notify(err.message, title="Revert", severity="error", timeout=12)
            return
        after = await self.app.push_screen_wait(RevertDialog(self.domain_name, s, clones))
        if after is None:
            return
        name = s.name

        async def job():
            return await self.service.call(lambda c: snapshots.revert_snapshot(c, self.uuid, name, after),
                                           action=f"revert to snapshot '{name}' of",
                                           obj=f"domain '{self.domain_name}'", timeout=max(self.service.timeout, 600))
        self._busy("Revert", job, f"Reverted '{escape(self.domain_name)}' to '{escape(name)}'", name)

    @work(group="snaps-dialog")
    async def action_delete(self) -> None:
        s = self.selected
        if s is None:
            return
        below = snapshots.descendants(self.snaps, s.name)
        answer = await self.app.push_screen_wait(DeleteSnapshotDialog(self.domain_name, s, below))
        if answer is None:
            return
        name = s.name

        async def job():
            return await self.service.call(lambda c: snapshots.delete_snapshot(c, self.uuid, name, children=answer),
                                           action=f"delete snapshot '{name}' of",
                                           obj=f"domain '{self.domain_name}'", timeout=max(self.service.timeout, 600))
        done = f"Deleted snapshot '{escape(name)}'" + (f" and {len(below)} below it" if answer and below else "")
        self._busy("Delete snapshot", job, done)


class NewSnapshotDialog(SubmitDialog["tuple[str, str, bool] | None"]):
    """Name, description and, for a running VM, with or without memory."""

    ok_id = "create"

    def __init__(self, domain_name: str, running: bool, existing: list[str]) -> None:
        super().__init__()
        self.domain_name = domain_name
        self.running = running
        self.existing = existing

    def compose(self) -> ComposeResult:
        import time
        default = time.strftime("snap-%Y%m%d-%H%M%S")
        with Vertical(classes="dialog", id="new-snapshot-dialog"):
            yield Label(f"New snapshot of '{escape(self.domain_name)}'", classes="dialog-title")
            yield from labelled("Name", Input(default, id="snap-name", compact=True), "name")
            yield from labelled("Description", Input(id="snap-description", compact=True))
            if self.running:
                with RadioSet(id="snap-memory"):
                    yield RadioButton("With memory: disks + RAM; revert resumes the guest (internal)",
                                      id="mem-yes", value=True)
                    yield RadioButton("Disk only: crash-consistent, no RAM (external overlay)", id="mem-no")
                yield Static("libvirt before 9.7 cannot revert to external (disk-only) snapshots.", classes="dim")
            else:
                yield Static("The VM is shut off: a disk snapshot stored inside its qcow2 images.", classes="dim")
            yield dialog_buttons("Create", "create", compact=True)

    def on_mount(self) -> None:
        self.query_one("#snap-name", Input).focus()

    def _submit(self) -> None:
        name = self.query_one("#snap-name", Input).value
        problem = snapshots.validate_name(name, self.existing)
        self.query_one(FieldError).set(problem)
        if problem:
            return
        memory = True
        if self.running:
            memory = self.query_one("#mem-yes", RadioButton).value
        self.dismiss((name, self.query_one("#snap-description", Input).value.strip(), memory))


class RevertDialog(SubmitDialog["str | None"]):
    """Asks before reverting; returns "as taken", "running" or "paused"."""

    BINDINGS = [Binding("escape,n", "cancel", "Cancel")]
    ok_id = "revert"
    focus_cancel = True

    def __init__(self, domain_name: str, snap: snapshots.SnapshotInfo, clones: list[str] | None = None) -> None:
        super().__init__()
        self.domain_name = domain_name
        self.snap = snap
        self.clones = clones or []  # linked clones whose backing files the VM's disks are

    def compose(self) -> ComposeResult:
        s = self.snap
        with Vertical(classes="dialog", id="revert-dialog"):
            yield Label(f"Revert '{escape(self.domain_name)}' to '{escape(s.name)}'?", classes="dialog-title")
            yield Static("Everything the VM did since this snapshot is lost (disks"
                         + (" and memory" if s.memory != "no" else "") + f"). It was {s.state or '?'} then.",
                         classes="dialog-body")
            if self.clones:
                yield Static(f"Its disks are the backing files of linked clones ({escape(clones_text(self.clones))}): "
                             "reverting changes them, which breaks those clones.", classes="warning")
            yield Label("Afterwards the VM is")
            with RadioSet(id="revert-after"):
                yield RadioButton(f"as in the snapshot ({s.state or '?'})", id="after-as-taken", value=True)
                yield RadioButton("running", id="after-running")
                yield RadioButton("paused", id="after-paused")
            yield dialog_buttons("Revert", "revert", variant="error", compact=True)

    def _submit(self) -> None:
        b = self.query_one("#revert-after", RadioSet).pressed_button
        after = (b.id or "after-as-taken").removeprefix("after-").replace("-", " ") if b else "as taken"
        self.dismiss(after)


class DeleteSnapshotDialog(SubmitDialog["bool | None"]):
    """Asks before deleting; returns whether to delete the children too."""

    BINDINGS = [Binding("escape,n", "cancel", "Cancel")]
    ok_id = "delete"
    focus_cancel = True

    def __init__(self, domain_name: str, snap: snapshots.SnapshotInfo, below: list[str]) -> None:
        super().__init__()
        self.domain_name = domain_name
        self.snap = snap
        self.below = below

    def compose(self) -> ComposeResult:
        s = self.snap
        with Vertical(classes="dialog", id="delete-snapshot-dialog"):
            yield Label(f"Delete snapshot '{escape(s.name)}' of '{escape(self.domain_name)}'?",
                        classes="dialog-title")
            if self.below:
                yield Static(f"Its children ({escape(', '.join(self.below))}) are kept and hang from "
                             f"{escape(s.parent or 'the top')} unless you tick:", classes="dialog-body")
                yield Checkbox(f"Also delete the {len(self.below)} snapshot(s) below it", id="delete-children")
            else:
                yield Static("The VM itself is not changed.", classes="dialog-body")
            yield dialog_buttons("Delete", "delete", variant="error", compact=True)

    def _submit(self) -> None:
        boxes = self.query("#delete-children")
        self.dismiss(bool(boxes and boxes.first(Checkbox).value))
