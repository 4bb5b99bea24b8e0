"""The kickstart editor: write, check and deliver an Anaconda kickstart.

:class:`KickstartEditorScreen` is a TextArea with a pykickstart syntax
version (RHEL 9, Fedora 40 ...), live validation (debounced, off the event
loop) listing errors and deprecated commands with their line numbers, F8 /
Shift+F8 to jump between them, a starter template from the wizard's answers
(passwords hashed to SHA-512 crypt before they reach the text), load from /
save to a file, and a line saying how the kickstart reaches the installer
(an OEMDRV CD-ROM, or the initrd) and why.

Opened from the wizard (ISO / network installs of Anaconda-based OSes) it
dismisses with ``{"text", "version", "delivery"}`` (F10) or None (Esc);
``k`` on the domain list opens it on its own to edit a file.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from ..core.create.builder import TargetNames, disk_targets
from ..core.files import userfile
from ..core.provision import kickstart as ks
from .base import VModal, VScreen
from .dialogs import AskText
from .footer import KeyFooter
from .forms import dialog_buttons

#: Seconds of quiet typing before the text is checked again.
DEBOUNCE = 0.35


def host_timezone() -> str:
    """This machine's time zone name (``Europe/Berlin``), else ``UTC``."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz:
        return tz
    try:
        link = os.readlink("/etc/localtime")
        if "zoneinfo/" in link:
            return link.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        text = Path("/etc/timezone").read_text().strip()
        if text:
            return text
    except OSError:
        pass
    return "UTC"


def host_language() -> str:
    lang = os.environ.get("LANG", "")
    if lang and lang not in ("C", "POSIX") and not lang.startswith("C."):
        return lang
    return "en_US.UTF-8"


def install_disk(spec: Any) -> str:
    """The kickstart name of the VM's first disk: vda (virtio), sda (SATA/SCSI), hda (IDE)."""
    disks = getattr(spec, "disks", None) or []
    bus = getattr(disks[0], "bus", "virtio") if disks else "virtio"
    return TargetNames().next(bus)


@dataclass
class StarterAnswers:
    """What the starter template is built from (passwords hashed already)."""

    lang: str = "en_US.UTF-8"
    keyboard: str = "us"
    timezone: str = "UTC"
    root_password_hash: str | None = None
    user: str | None = None
    user_password_hash: str | None = None
    disk: str = "vda"
    packages: tuple[str, ...] = ("@^minimal-environment",)
    post: str | None = None

    def text(self) -> str:
        return ks.starter_kickstart(self.lang, self.keyboard, self.timezone, self.root_password_hash,
                                    self.user, self.user_password_hash, disk=self.disk,
                                    packages=self.packages, post=self.post)


class StarterDialog(VModal["StarterAnswers | None"]):
    """The wizard's answers for the starter kickstart; passwords are hashed here."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("f10", "ok", "Insert")]

    def __init__(self, defaults: StarterAnswers) -> None:
        super().__init__()
        self.defaults = defaults

    def compose(self) -> ComposeResult:
        d = self.defaults

        def field(label: str, widget: Input) -> Horizontal:
            return Horizontal(Label(label, classes="ks-starter-label"), widget, classes="ks-starter-row")

        with Vertical(classes="dialog", id="ks-starter"):
            yield Label("Starter kickstart (replaces the text; Ctrl+Z undoes)", classes="dialog-title")
            with VerticalScroll(id="ks-starter-fields"):
                yield field("Language", Input(d.lang, id="ks-lang", compact=True))
                yield field("Keyboard", Input(d.keyboard, id="ks-keyboard", compact=True))
                yield field("Time zone", Input(d.timezone, id="ks-timezone", compact=True))
                yield field("Root password", Input(id="ks-rootpw", password=True, compact=True,
                                                   placeholder="blank: root locked"))
                yield field("User (wheel)", Input(d.user or "", id="ks-user", placeholder="none", compact=True))
                yield field("User password", Input(id="ks-userpw", password=True, compact=True))
                yield field("Install disk", Input(d.disk, id="ks-disk", compact=True))
                yield field("%packages", Input(", ".join(d.packages), id="ks-packages", compact=True,
                                               placeholder="comma separated"))
                yield field("%post", Input(d.post or "", id="ks-post", compact=True,
                                           placeholder="commands; ';' separates lines"))
                yield Static("Passwords are stored as SHA-512 crypt hashes, never as typed.", classes="field-hint")
                yield Static("", id="ks-starter-error", classes="field-error")
            yield dialog_buttons("Insert", "ks-starter-ok", cancel_id="ks-starter-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#ks-starter-error").display = False
        self.query_one("#ks-lang", Input).focus()

    def answers(self) -> StarterAnswers | str:
        from ..core.provision.cloudinit import hash_password

        val = lambda wid: self.query_one(wid, Input).value.strip()  # noqa: E731
        user = val("#ks-user") or None
        if user and not all(c.isalnum() or c in "._-" for c in user):
            return "The user name may hold letters, digits, '.', '_' and '-'"
        for wid, what in (("#ks-lang", "a language"), ("#ks-keyboard", "a keyboard layout"),
                          ("#ks-timezone", "a time zone"), ("#ks-disk", "the install disk")):
            if not val(wid):
                return f"Give {what}"
        root_pw = self.query_one("#ks-rootpw", Input).value
        user_pw = self.query_one("#ks-userpw", Input).value
        if user_pw and not user:
            return "A user password needs a user name"
        packages = tuple(p.strip() for p in val("#ks-packages").split(",") if p.strip())
        post = "\n".join(p.strip() for p in val("#ks-post").split(";") if p.strip()) or None
        return StarterAnswers(
            lang=val("#ks-lang"), keyboard=val("#ks-keyboard"), timezone=val("#ks-timezone"),
            root_password_hash=hash_password(root_pw) if root_pw else None, user=user,
            user_password_hash=hash_password(user_pw) if user_pw else None,
            disk=val("#ks-disk").removeprefix("/dev/"), packages=packages or ("@^minimal-environment",), post=post)

    @on(Button.Pressed, "#ks-starter-ok")
    @on(Input.Submitted)
    def action_ok(self) -> None:
        result = self.answers()
        if isinstance(result, str):
            err = self.query_one("#ks-starter-error", Static)
            err.update(escape(result))
            err.display = True
            return
        self.dismiss(result)

    @on(Button.Pressed, "#ks-starter-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def delivery_text(kind: str | None) -> str:
    """How the kickstart reaches the installer, and why, for an install source
    kind (None: opened on its own); at most two lines of 80 columns."""
    if kind is None:
        return ("Delivery follows the install source: ISO/CD-ROM → a 2nd CD-ROM labelled OEMDRV; "
                f"network install → ks.cfg in the initrd + {ks.KICKSTART_INITRD_ARG}")
    method, why = ks.delivery_for(kind)
    if method == ks.OEMDRV:
        return ("Delivery: OEMDRV CD-ROM, as this is an ISO/CD-ROM install: a 2nd CD-ROM labelled "
                "OEMDRV holds ks.cfg, Anaconda reads it by itself")
    if method == ks.INITRD:
        return ("Delivery: initrd, as this is a network install: ks.cfg is appended to the installer's "
                f"initrd, the kernel gets {ks.KICKSTART_INITRD_ARG}")
    return f"Delivery: none. {why}"


class KickstartEditorScreen(VScreen["dict | None"]):
    """Edit and check a kickstart; see the module doc."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("f8", "next_problem", "Next problem"),
        Binding("shift+f8", "previous_problem", "Previous", show=False),
        Binding("ctrl+t", "starter", "Starter"),
        Binding("f4", "version", "Syntax", show=False),
        Binding("ctrl+o", "open", "Open"),
        Binding("ctrl+s", "save", "Save"),
        Binding("f10", "use", "Use"),
    ]

    def __init__(self, *, text: str = "", version: str | None = None, install_kind: str | None = None,
                 spec: Any = None, os_info: Any = None, path: str | None = None, title: str | None = None) -> None:
        super().__init__()
        self.initial_text = text
        self.install_kind = install_kind
        self.spec = spec
        self.os_info = os_info
        self.path = path
        self.for_vm = install_kind is not None
        self.title_text = title
        versions = ks.available_versions()
        chosen = version or ks.version_for_os(os_info, getattr(spec, "os", None))
        if chosen not in versions:
            versions.append(chosen)
        self.versions = versions
        self.version = chosen
        self.problems: list[ks.Problem] = []
        self.checked: tuple[str, str] | None = None  # (text, version) the problems are for
        self.saved_text = text
        self._timer: Timer | None = None

    # --- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="ks-title", classes="screen-title")
        with Horizontal(id="ks-top"):
            yield Label("Syntax", id="ks-version-label")
            yield Select([(self.version_label(v), v) for v in self.versions], value=self.version,
                         allow_blank=False, id="ks-version", compact=True)
            yield Static("", id="ks-status")
        yield Static(escape(delivery_text(self.install_kind)), id="ks-delivery")
        # Tab moves the focus (to the problem list), Esc closes the screen; no
        # blinking cursor: it would repaint twice a second over slow SSH links
        editor = TextArea(self.initial_text, id="ks-text", show_line_numbers=True, soft_wrap=False)
        editor.cursor_blink = False
        yield editor
        yield OptionList(id="ks-problems")
        yield KeyFooter(compact=True)

    @staticmethod
    def version_label(v: str) -> str:
        if v.startswith("RHEL"):
            return f"RHEL {v[4:]}"
        if v.startswith("F") and v[1:].isdigit():
            return f"Fedora {v[1:]}"
        return v

    def on_mount(self) -> None:
        self._update_title()
        self.query_one("#ks-text", TextArea).focus()
        self.check_now()

    def _update_title(self) -> None:
        if self.title_text:
            where = self.title_text
        elif self.path:
            where = self.path
        else:
            where = "(not saved)"
        dirty = " *" if self.text != self.saved_text and not self.for_vm else ""
        self.query_one("#ks-title", Static).update(escape(f" Kickstart — {where}{dirty}"))

    @property
    def text(self) -> str:
        return self.query_one("#ks-text", TextArea).text

    # --- validation -------------------------------------------------------------

    @on(TextArea.Changed, "#ks-text")
    def _text_changed(self) -> None:
        self._update_title()
        if self.checked == (self.text, self.version) and self._timer is None:
            return  # nothing new to check (e.g. the text set when the screen opened)
        self.query_one("#ks-status", Static).update("checking…")
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE, self.check_now)

    @on(Select.Changed, "#ks-version")
    def _version_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.BLANK and event.value != self.version:
            self.version = str(event.value)
            self.check_now()

    def check_now(self) -> None:
        self._timer = None
        self._check(self.text, self.version)

    def problems_of(self, text: str, version: str) -> list[ks.Problem]:
        """Blocking (pykickstart): the problems of ``text``, by line, errors
        first -- for a VM, disks it names that the VM will not have too."""
        if not text.strip():
            return []
        disks = disk_targets(self.spec) if self.spec is not None else None
        return sorted(ks.check_kickstart(text, version, disks), key=lambda p: (p.line, p.severity != ks.ERROR))

    @work(exclusive=True, group="ks-check")
    async def _check(self, text: str, version: str) -> None:
        found = await asyncio.to_thread(self.problems_of, text, version)
        if (text, version) != (self.text, self.version):
            return  # stale: a newer check follows
        self.problems = found
        self.checked = (text, version)
        self._show_problems()

    def _show_problems(self) -> None:
        ol = self.query_one("#ks-problems", OptionList)
        ol.clear_options()
        errors = sum(p.severity == ks.ERROR for p in self.problems)
        warnings = len(self.problems) - errors
        status = self.query_one("#ks-status", Static)
        label = self.version_label(self.version)
        if not self.text.strip():
            status.update(f"empty · {label}")
            ol.add_option(Option("Empty: Ctrl+T inserts a starter kickstart, Ctrl+O opens a file.", disabled=True))
            return
        if not self.problems:
            status.update(f"✓ valid for {label}")
            ol.add_option(Option(f"✓ No problems: pykickstart accepts this as {label}.", disabled=True))
            return
        parts = []
        if errors:
            parts.append(f"{errors} error{'s' if errors != 1 else ''}")
        if warnings:
            parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
        status.update(f"✗ {', '.join(parts)} · {label}")
        for i, p in enumerate(self.problems):
            where = f"line {p.line:>3}" if p.line else "        "
            tag = "error  " if p.severity == ks.ERROR else "warning"
            ol.add_option(Option(f"{where}  {tag}  {escape(p.message)}", id=f"p{i}"))

    @on(OptionList.OptionSelected, "#ks-problems")
    def _problem_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and event.option.id.startswith("p"):
            self.goto_problem(int(event.option.id[1:]))

    def goto_problem(self, index: int) -> None:
        p = self.problems[index]
        ta = self.query_one("#ks-text", TextArea)
        if p.line:
            row = min(p.line - 1, ta.document.line_count - 1)
            ta.move_cursor((row, 0))
            ta.scroll_cursor_visible(center=True)
        ol = self.query_one("#ks-problems", OptionList)
        ol.highlighted = index
        ta.focus()
        self.notify(escape(str(p)), timeout=4)

    def _jump(self, forward: bool) -> None:
        lined = [(i, p) for i, p in enumerate(self.problems) if p.line]
        if not lined:
            self.notify("No problems with a line to jump to.", timeout=3)
            return
        row = self.query_one("#ks-text", TextArea).cursor_location[0] + 1
        if forward:
            after = [i for i, p in lined if p.line > row]
            index = after[0] if after else lined[0][0]
        else:
            before = [i for i, p in lined if p.line < row]
            index = before[-1] if before else lined[-1][0]
        self.goto_problem(index)

    def action_next_problem(self) -> None:
        self._jump(True)

    def action_previous_problem(self) -> None:
        self._jump(False)

    def action_version(self) -> None:
        self.query_one("#ks-version", Select).focus()

    # --- starter template -------------------------------------------------------

    def starter_defaults(self) -> StarterAnswers:
        a = StarterAnswers(lang=host_language(), timezone=host_timezone())
        if self.spec is not None:
            a.disk = install_disk(self.spec)
        return a

    def action_starter(self) -> None:
        def done(answers: StarterAnswers | None) -> None:
            if answers is None:
                return
            ta = self.query_one("#ks-text", TextArea)
            ta.replace(answers.text(), (0, 0), ta.document.end)
            ta.move_cursor((0, 0))
            self.check_now()

        self.app.push_screen(StarterDialog(self.starter_defaults()), done)

    # --- files --------------------------------------------------------------------

    def action_open(self) -> None:
        def chosen(path: str | None) -> None:
            if not path:
                return
            p = Path(path).expanduser()
            try:
                text = userfile.read_text(p, userfile.MAX_KICKSTART)
            except userfile.UserFileError as err:
                where = f" (line {err.line})" if err.line else ""
                self.notify(f"Cannot read {p}: {err.reason}{where}", title="Kickstart", severity="error",
                            timeout=8)
                return
            self.path = str(p)
            self.saved_text = text
            self.query_one("#ks-text", TextArea).load_text(text)
            self._update_title()
            self.check_now()

        self.app.push_screen(AskText("Open a kickstart file", self.path or "ks.cfg", "Open", required=False), chosen)

    def action_save(self) -> None:
        def chosen(path: str | None) -> None:
            if not path:
                return
            p = Path(path).expanduser()
            text = self.text
            try:
                userfile.write_private_text(p, text)  # 0600: it may hold password hashes
            except (OSError, userfile.UserFileError) as err:
                why = err.reason if isinstance(err, userfile.UserFileError) else (err.strerror or err)
                self.notify(f"Cannot write {p}: {why}", title="Kickstart", severity="error", timeout=8)
                return
            self.path = str(p)
            self.saved_text = text
            self._update_title()
            errors = sum(q.severity == ks.ERROR for q in self.problems)
            note = f" ({errors} error{'s' if errors != 1 else ''} left: F8 jumps to them)" if errors else ""
            self.notify(f"Saved {p}{note}", title="Kickstart", timeout=5)

        self.app.push_screen(AskText("Save the kickstart to", self.path or "ks.cfg", "Save", required=False), chosen)

    # --- leaving --------------------------------------------------------------------

    def action_use(self) -> None:
        if not self.for_vm:
            self.notify("Opened on its own: Ctrl+S saves the file.", timeout=4)
            return
        text = self.text
        if not text.strip():
            self.notify("The kickstart is empty: Ctrl+T inserts a starter, Esc leaves without one.",
                        severity="warning", timeout=5)
            return
        if self.checked != (text, self.version):
            self.problems = self.problems_of(text, self.version)
            self.checked = (text, self.version)
            self._show_problems()
        errors = [p for p in self.problems if p.severity == ks.ERROR]
        if errors:
            self.notify(f"{len(errors)} error(s) left, first: {escape(str(errors[0]))}", title="Kickstart",
                        severity="error", timeout=8)
            self._jump(True)
            return
        method = ks.delivery_for(self.install_kind or "")[0]
        self.dismiss({"text": text, "version": self.version, "delivery": method})

    def action_close(self) -> None:
        if self.text == self.saved_text:
            self.dismiss(None)
            return
        from .dialogs import ConfirmDialog

        def answer(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        if self.for_vm:
            question = "Leave without using the changes? (F10 uses them; the VM keeps what it had.)"
        else:
            question = "Leave without saving the changes? (Ctrl+S saves them.)"
        self.app.push_screen(ConfirmDialog("Kickstart changed", question, yes="Discard"), answer)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "use" and not self.for_vm:
            return False  # hidden: nothing to use it for
        return True
