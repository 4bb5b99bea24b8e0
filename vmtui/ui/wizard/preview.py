"""The domain XML (install-time and final) and the equivalent virt-install
command line of the pending VM."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TextArea

from ...core.connection.service import LibvirtService
from ...core.create.vmspec import VmSpec
from ...core.errors import VmtuiError
from ..base import VScreen
from ..footer import KeyFooter


class PreviewScreen(VScreen):
    """The domain XML and the equivalent virt-install command line."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("t", "toggle", "Final/install XML")]

    def __init__(self, service: LibvirtService, spec: VmSpec, osdb=None) -> None:
        super().__init__()
        self.service = service
        self.spec = spec
        self.osdb = osdb  # the OS database: --osinfo names only an OS it knows
        self.texts: tuple[str, str, str] | None = None
        self.show_install = False

    def compose(self) -> ComposeResult:
        yield Static(" Preview — virt-install command line and domain XML", classes="screen-title")
        yield TextArea("", read_only=True, id="virt-install", soft_wrap=True)
        yield TextArea("Building…", read_only=True, id="preview-xml", show_line_numbers=True)
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.build()

    @work(exclusive=True)
    async def build(self) -> None:
        from ...core.create.installer import preview
        try:
            self.texts = await preview(self.service, self.spec, osdb=self.osdb)
        except (VmtuiError, ValueError) as err:
            self.query_one("#preview-xml", TextArea).load_text(str(err))
            return
        self._show()

    def _show(self) -> None:
        if self.texts is None:
            return
        final, install, cmd = self.texts
        self.query_one("#virt-install", TextArea).load_text(cmd)
        self.query_one("#preview-xml", TextArea).load_text(install if self.show_install else final)
        self.query_one("#preview-xml", TextArea).border_title = (
            "install-time XML" if self.show_install else "persistent (final) XML")

    def action_toggle(self) -> None:
        self.show_install = not self.show_install
        self._show()
