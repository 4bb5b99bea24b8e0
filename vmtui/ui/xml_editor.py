"""Edit a VM's persistent XML, like ``virsh edit``.

``e`` on the XML view opens the persistent definition in ``$VISUAL`` /
``$EDITOR`` when one is set (the app is suspended meanwhile, as virsh hands
the terminal to the editor), else in :class:`XmlEditScreen`, a TextArea
with XML highlighting; ``E`` always opens the latter.

Either way, what comes back goes through :class:`EditSession`: vmtui's
checks (well-formed ``<domain>``, same name and UUID: core/xml/edit_text.py),
the diff of what changed (:class:`DiffDialog`), then libvirt's define with
schema validation. A refusal names the line; the text is kept for another
try and nothing was changed. When the definition changed on the host while
it was being edited, the diff is shown again against what the host holds.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Button, Label, Static, TextArea

from ..core.connection.service import LibvirtService
from ..core.errors import VmtuiError
from ..core.xml.edit_text import (
    Defined,
    XmlEditConflict,
    XmlEditError,
    check_edit,
    define_edited_xml,
)
from .base import VModal
from .dialogs import ConfirmDialog
from .footer import KeyFooter
from .forms import DomainScreen, dialog_buttons

#: Textual highlights XML only with the tree-sitter grammar (pyproject.toml)
XML_LANGUAGE = "xml" if find_spec("tree_sitter_xml") is not None else None


def editor_command(environ: dict | None = None) -> list[str] | None:
    """The user's editor, as virsh picks it: $VISUAL, else $EDITOR (None: neither)."""
    env = os.environ if environ is None else environ
    for var in ("VISUAL", "EDITOR"):
        value = (env.get(var) or "").strip()
        if value:
            try:
                argv = shlex.split(value)
            except ValueError:
                argv = value.split()
            if argv:
                return argv
    return None


def diff_text(diff: str) -> Text:
    """A unified diff, coloured; the +/- signs say it without colour."""
    out = Text()
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        else:
            style = ""
        out.append(line + "\n", style=style)
    out.rstrip()
    return out


class DiffDialog(VModal[bool]):
    """What an edit changes; Define, or back to editing."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "Keep editing"),
        Binding("ctrl+s,y", "answer(True)", "Define"),
    ]

    def __init__(self, name: str, diff: str, running: bool) -> None:
        super().__init__()
        self.domain_name = name
        self.diff = diff
        self.running = running

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="diff-dialog"):
            yield Label(f"Define '{escape(self.domain_name)}' with these changes?", classes="dialog-title")
            with VerticalScroll(id="diff-body"):
                yield Static(diff_text(self.diff), id="diff")
            note = ("It is running: the changes apply at its next boot (shut down and start). "
                    if self.running else "")
            yield Static(note + "libvirt checks the XML against its schema first; if it refuses, nothing "
                         "changes and the text stays in the editor.", classes="dim")
            yield dialog_buttons("Define", "define", cancel="Keep editing", cancel_id="keep")

    def on_mount(self) -> None:
        self.query_one("#define", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "define")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class EditFailedDialog(VModal[str]):
    """An edit from $EDITOR was refused: edit again, in vmtui, or discard."""

    BINDINGS = [
        Binding("e", "choose('again')", "Edit again"),
        Binding("v", "choose('here')", "Edit in vmtui"),
        Binding("escape,d", "choose('discard')", "Discard"),
    ]

    def __init__(self, name: str, message: str) -> None:
        super().__init__()
        self.domain_name = name
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="edit-failed-dialog"):
            yield Label(f"Not defined: '{escape(self.domain_name)}' is unchanged", classes="dialog-title")
            with VerticalScroll(id="edit-failed-body"):
                yield Static(Text(self.message, style="red"), classes="dialog-body")
            yield Static("Your text is kept: edit it again (e), in vmtui's editor (v), or discard it (d).",
                         classes="dim")
            yield dialog_buttons("Edit again", "again", cancel="Discard", cancel_id="discard")

    def on_mount(self) -> None:
        self.query_one("#again", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "discard")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class EditSession:
    """One edit of one VM's persistent definition: ``original`` is the
    definition it started from (updated when the host's changed meanwhile)."""

    def __init__(self, service: LibvirtService, uuid: str, name: str, original: str) -> None:
        self.service = service
        self.uuid = uuid
        self.name = name
        self.original = original

    @property
    def obj(self) -> str:
        return f"domain '{self.name}'"

    @property
    def running(self) -> bool:
        d = self.service.domains.get(self.uuid)
        return bool(d and d.is_active)

    async def submit(self, app: App, text: str) -> Defined | None:
        """Check ``text``, show the diff, define it. Defined (``changed``
        False when there was nothing to define), or None when the user went
        back to editing. Raises XmlEditError (with the line) when vmtui or
        libvirt refused it, VmtuiError for other failures; nothing changed then.
        Runs in a worker (it waits for the diff dialog)."""
        while True:
            plan = check_edit(self.original, text, self.obj)
            if not plan.changed:
                return Defined(self.name, self.original, self.running, changed=False)
            if not await app.push_screen_wait(DiffDialog(self.name, plan.diff, self.running)):
                return None
            try:
                return await self.service.call(
                    lambda c, expected=self.original: define_edited_xml(c, self.uuid, text, expected),
                    action="define", obj=self.obj)
            except XmlEditConflict:
                self.original = await self.service.domain_xml(self.uuid, inactive=True)
                app.notify(f"The definition of '{escape(self.name)}' changed on the host while you edited it: "
                           "the diff now compares your text with what the host holds.",
                           title="Edit XML", severity="warning", timeout=10)


def defined_message(defined: Defined) -> str:
    if not defined.changed:
        return f"No changes: '{defined.name}' was not defined again."
    if defined.running:
        return f"Defined '{defined.name}': it is running, the changes apply at its next boot."
    return f"Defined '{defined.name}'."


class XmlEditScreen(DomainScreen):
    """The persistent XML in an editor: Ctrl+S checks it, shows the diff and
    defines it; a refusal is shown under the title with the cursor on its
    line. Dismissed with the Defined result, or None."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Define"),
        Binding("f8", "goto_error", "Go to error"),
        Binding("ctrl+r", "revert", "Revert"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, service: LibvirtService, uuid: str, name: str, original: str, text: str | None = None,
                 error: XmlEditError | VmtuiError | None = None) -> None:
        super().__init__(service, uuid, name)
        self.session = EditSession(service, uuid, name, original)
        self.initial_text = original if text is None else text
        self.error = error
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Static(f" Edit XML — {escape(self.domain_name)} (persistent configuration)",
                     classes="screen-title")
        yield Static("", id="xml-edit-error", classes="field-error")
        yield TextArea(self.initial_text, language=XML_LANGUAGE, id="xml-edit", show_line_numbers=True,
                       soft_wrap=False, tab_behavior="focus")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.show_error(self.error)
        self.query_one("#xml-edit", TextArea).focus()

    @property
    def text(self) -> str:
        return self.query_one("#xml-edit", TextArea).text

    def show_error(self, err: VmtuiError | None) -> None:
        """Show ``err`` under the title and put the cursor on its line (None: clear)."""
        self.error = err
        box = self.query_one("#xml-edit-error", Static)
        box.update(Text(err.message) if err is not None else "")
        box.display = err is not None
        self.action_goto_error()

    def action_goto_error(self) -> None:
        line = getattr(self.error, "line", None)
        ta = self.query_one("#xml-edit", TextArea)
        if line:
            row = min(line, ta.document.line_count) - 1
            ta.move_cursor((row, 0))
            ta.move_cursor((row, len(ta.document.get_line(row))), select=True)
            ta.scroll_cursor_visible(center=True)
        ta.focus()

    def action_revert(self) -> None:
        ta = self.query_one("#xml-edit", TextArea)
        ta.replace(self.session.original, (0, 0), ta.document.end)  # Ctrl+Z undoes it
        self.show_error(None)

    def action_save(self) -> None:
        if not self.busy:
            self._save()

    @work(group="xml-edit", exclusive=True)
    async def _save(self) -> None:
        self.busy = True
        try:
            defined = await self.session.submit(self.app, self.text)
        except VmtuiError as err:
            self.show_error(err)  # above the text, the cursor on its line
            return
        finally:
            self.busy = False
        if defined is None:  # back to editing
            self.query_one("#xml-edit", TextArea).focus()
            return
        self.notify(escape(defined_message(defined)), title="Edit XML", timeout=6)
        if defined.changed:
            self.dismiss(defined)
        else:
            self.show_error(None)

    def action_cancel(self) -> None:
        if self.text == self.session.original:
            self.dismiss(None)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(None)

        self.app.push_screen(ConfirmDialog(
            "Discard changes", f"Discard your changes to the XML of '{escape(self.domain_name)}'? "
            "Nothing was defined.", yes="Discard"), answered)


# --- $EDITOR ------------------------------------------------------------------------


def _terminal_stderr() -> int | None:
    """The terminal for the editor's fd 2 (vmtui points its own fd 2 at the log)."""
    try:
        fd = sys.__stderr__.fileno()  # type: ignore[union-attr]
        return fd if os.isatty(fd) else None
    except (AttributeError, OSError, ValueError):
        return None


async def run_editor(app: App, argv: list[str], path: Path) -> str:
    """Hand the terminal to ``argv + [path]`` until it exits (the app is
    suspended meanwhile, its loop keeps running). Returns "" when the
    editor ended well, else what went wrong; raises SuspendNotSupported
    where the app cannot give the terminal away."""
    def run() -> subprocess.CompletedProcess:
        return subprocess.run([*argv, str(path)], stderr=_terminal_stderr(), check=False)

    try:
        with app.suspend():
            done = await asyncio.to_thread(run)
    except OSError as err:
        return f"cannot run the editor {argv[0]!r}: {err.strerror or err}"
    if done.returncode != 0:
        return f"the editor {argv[0]!r} exited with status {done.returncode}"
    return ""


def _file_name(name: str) -> str:
    return (re.sub(r"[^\w.-]", "_", name) or "domain")[:80] + ".xml"


async def edit_externally(screen: DomainScreen, argv: list[str], session: EditSession) -> Defined | None:
    """The virsh edit loop: the definition in a private temporary file, the
    editor, then :meth:`EditSession.submit`; on a refusal, the choice to edit
    the same text again, to go on in vmtui's editor, or to discard it.
    Runs in a worker of ``screen``. Returns what was defined, or None."""
    app = screen.app
    with tempfile.TemporaryDirectory(prefix="vmtui-edit-") as tmp:  # mode 0700
        path = Path(tmp) / _file_name(session.name)
        path.write_text(session.original, encoding="utf-8")
        while True:
            try:
                problem = await run_editor(app, argv, path)
            except SuspendNotSupported:
                app.notify("This terminal cannot be handed to $EDITOR: opening vmtui's editor.",
                           title="Edit XML", severity="warning", timeout=6)
                text = path.read_text(encoding="utf-8", errors="replace")
                return await app.push_screen_wait(XmlEditScreen(
                    session.service, session.uuid, session.name, session.original, text))
            if problem:
                app.notify(escape(problem) + ": nothing was defined.", title="Edit XML", severity="error",
                           timeout=10)
                return None
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                error: VmtuiError = VmtuiError("read", str(path), str(err))
            else:
                if text == session.original:
                    app.notify(f"No changes: '{escape(session.name)}' was not defined again.",
                               title="Edit XML", timeout=5)
                    return None
                try:
                    defined = await session.submit(app, text)
                except VmtuiError as err:
                    error = err
                else:
                    if defined is None:
                        continue  # "Keep editing" on the diff: back to the editor
                    app.notify(escape(defined_message(defined)), title="Edit XML", timeout=6)
                    return defined
            choice = await app.push_screen_wait(EditFailedDialog(session.name, error.message))
            if choice == "here":
                return await app.push_screen_wait(XmlEditScreen(
                    session.service, session.uuid, session.name, session.original,
                    path.read_text(encoding="utf-8", errors="replace"),
                    error if isinstance(error, XmlEditError) else None))
            if choice != "again":
                app.notify(f"Discarded the edit: '{escape(session.name)}' is unchanged.", title="Edit XML",
                           timeout=5)
                return None
