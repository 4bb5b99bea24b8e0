"""The settings of one VM (``e`` on the list or the details screen):
virt-manager's details pages. The sections on the left, the chosen one on
the right; each form is checked field by field as it changes, Ctrl+S saves
it (live where libvirt can, else at the next boot: the result says which),
and the line at the bottom says what the next boot will change."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.widgets import ContentSwitcher, OptionList, Static
from textual.widgets.option_list import Option

from ...core.connection.service import LibvirtService
from ...core.edit import apply
from ...core.edit.apply import EditorState
from ...core.edit.pending import pending_text
from ...core.edit.result import EditResult
from ...core.errors import VmtuiError
from ..dialogs import ConfirmDialog
from ..footer import KeyFooter
from ..forms import DomainScreen
from .base import SettingsPane, result_text
from .devices import AgentPane, DisplayPane, RngPane, SerialPane, TpmPane
from .general import BootPane, CpusPane, MemoryPane, OverviewPane
from .nics import NicsPane

SECTIONS: list[tuple[str, type[SettingsPane]]] = [
    ("overview", OverviewPane),
    ("cpus", CpusPane),
    ("memory", MemoryPane),
    ("boot", BootPane),
    ("nics", NicsPane),
    ("display", DisplayPane),
    ("serial", SerialPane),
    ("agent", AgentPane),
    ("tpm", TpmPane),
    ("rng", RngPane),
]


class SectionList(OptionList):
    """The sections; the highlighted one is shown, Enter goes into it."""

    BINDINGS = [Binding("enter", "select", "Edit section")]


class SettingsScreen(DomainScreen):
    """A VM's settings, section by section."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+s", "apply", "Apply"),
        Binding("ctrl+r", "revert", "Revert"),
        Binding("f5", "reload", "Reload"),
    ]

    def __init__(self, service: LibvirtService, uuid: str, name: str, section: str = "overview") -> None:
        super().__init__(service, uuid, name)
        self.state: EditorState | None = None
        self.first_section = section
        self.panes: dict[str, SettingsPane] = {}

    def compose(self) -> ComposeResult:
        yield Static(f" Settings — {escape(self.domain_name)}", id="settings-title", classes="screen-title")
        with Horizontal(id="settings-main"):
            yield SectionList(*[Option(cls.section, id=key) for key, cls in SECTIONS], id="settings-sections")
            with ContentSwitcher(initial=f"pane-{self.first_section}", id="settings-panes"):
                for key, cls in SECTIONS:
                    pane = cls(self, id=f"pane-{key}")
                    self.panes[key] = pane
                    yield pane
        yield Static("Loading…", id="settings-pending")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        sections = self.query_one(SectionList)
        sections.highlighted = [k for k, _ in SECTIONS].index(self.first_section)
        sections.focus()
        self.load()
        self.set_interval(1.0, self._follow_state)

    def _follow_state(self) -> None:
        """The VM started or stopped meanwhile (the service's own list, kept by
        libvirt's events: no call): read it again, so that what the sections
        say about now and the next boot stays true."""
        d = self.service.domains.get(self.uuid)
        if d is None or self.state is None:
            return
        if bool(d.is_active) != self.state.settings.running:
            self.load()

    # --- loading ------------------------------------------------------------------

    @property
    def current(self) -> SettingsPane:
        return self.panes[self.query_one(ContentSwitcher).current.removeprefix("pane-")]

    @work(exclusive=True, group="settings-load")
    async def load(self, saved: SettingsPane | None = None) -> None:
        try:
            state = await self.service.call(lambda c: apply.load_editor(c, self.uuid),
                                            action="read the settings of", obj=f"domain '{self.domain_name}'")
        except VmtuiError as err:
            self.query_one("#settings-pending", Static).update(Text(err.message, style="bold red"))
            self.notify(err.message, title="Settings", severity="error", timeout=12)
            return
        self.state = state
        for pane in self.panes.values():
            pane.show(state, keep_edits=pane is not saved)
        s = state.settings
        where = "running" if s.running else "shut off"
        self.query_one("#settings-title", Static).update(f" Settings — {escape(s.name)} ({where})")
        self.show_pending()
        self.refresh_bindings()

    def show_pending(self) -> None:
        assert self.state is not None
        s = self.state.settings
        line = self.query_one("#settings-pending", Static)
        if not s.running:
            line.update(Text("Shut off: what you save is used when it starts.", style="dim"))
        elif self.state.pending:
            line.update(Text(pending_text(self.state.pending), style="bold yellow"))
        else:
            line.update(Text("No changes wait for the next boot.", style="dim"))

    def saved(self, pane: SettingsPane, result: EditResult) -> None:
        """A section was saved: say what applies now and what at the next
        boot, and read the VM again."""
        pane.status(result_text(result))
        severity = "warning" if result.running and result.next_boot else "information"
        self.notify(escape(result.summary()), title=f"Settings: {pane.section}", severity=severity, timeout=10)
        self.load(saved=pane)

    # --- sections -----------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#settings-sections")
    def _section(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.query_one(ContentSwitcher).current = f"pane-{event.option.id}"
            self.refresh_bindings()

    @on(OptionList.OptionSelected, "#settings-sections")
    def _enter(self, event: OptionList.OptionSelected) -> None:
        self.current.focus_first()

    # --- actions --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("apply", "revert"):  # the list sections save with their own keys
            try:
                current = self.current
            except NoMatches:  # not composed yet (the footer below asks early)
                return None
            if not current.has_form:
                return False
            return True if self.state is not None else None
        return True

    def action_apply(self) -> None:
        pane = self.current
        if pane.has_form and self.state is not None:
            self.run_worker(pane.apply(), group="settings-save")

    def action_revert(self) -> None:
        pane = self.current
        if pane.has_form and self.state is not None:
            pane.show(self.state)
            pane.status(Text("Back to the saved settings.", style="dim"))

    def action_reload(self) -> None:
        self.load()

    @work(group="settings-back")
    async def action_back(self) -> None:
        dirty = [p.section for p in self.panes.values() if p.dirty]
        if dirty:
            ok = await self.app.push_screen_wait(ConfirmDialog(
                "Unsaved changes", f"Leave without saving the changes to {', '.join(dirty)}?", yes="Leave"))
            if not ok:
                return
        self.dismiss()
