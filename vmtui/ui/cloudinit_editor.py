"""The cloud-init editor: user-data, meta-data and network-config in YAML
editors with live validation, a form for the common settings, and the saved
configs library.

:class:`CloudInitEditorScreen` dismisses with the edited
:class:`~vmtui.core.provision.seed.CloudInitDocs` (Ctrl+S) or None (Esc).
:class:`CloudInitLibraryScreen` (``i`` on the domain list) manages the saved
configs.

The form and the YAML are one document: leaving the form writes its values
into user-data (:func:`cloudinit_form.apply_form`, only the keys that changed,
everything else untouched), entering it reads them back
(:func:`cloudinit_form.form_from_yaml`). A password typed into the form is hashed
(SHA-512 crypt) on the way into the YAML; the plain text is never kept.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.timer import Timer
from textual.widgets import (
    Button,
    Input,
    Label,
    OptionList,
    Select,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)
from textual.widgets.option_list import Option

from ..core.errors import VmtuiError
from ..core.files import safeyaml, userfile
from ..core.provision import cloudinit, seed
from ..core.provision.cloudinit import Problem
from ..core.provision.cloudinit_form import (
    CloudConfigForm,
    UserForm,
    WriteFileForm,
    apply_form,
    form_from_yaml,
    groups_text,
    parse_lines,
    render_entry,
    sudo_from,
    sudo_text,
    tri_from,
    tri_value,
)
from ..core.provision.library import Library, LibraryError, validate_name
from ..core.provision.seed import CloudInitDocs, complete_docs, default_docs
from .base import VModal, VScreen
from .dialogs import AskText
from .footer import KeyFooter
from .forms import dialog_buttons, side_by_side

log = logging.getLogger(__name__)

VALIDATE_DELAY = 0.3  # seconds of quiet typing before validating
TRI = [("not set", "unset"), ("yes", "yes"), ("no", "no")]


def validate_docs(texts: dict[str, str]) -> list[tuple[str, Problem]]:
    """(document, problem) for the three documents (each checked as the
    spec validation checks it); an empty meta-data or network-config is fine
    (meta-data is completed when the seed is built)."""
    out = []
    for doc in cloudinit.DOCUMENTS:
        text = texts.get(doc, "")
        if doc != "user-data" and not text.strip():
            continue
        out += [(doc, p) for p in cloudinit.check_document(doc, text)]
    return out


# --- small modals ---------------------------------------------------------------


class PickConfig(VModal["str | None"]):
    """Choose a saved config by name."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Load a saved cloud-init config", classes="dialog-title")
            yield OptionList(*[Option(escape(n), id=str(i)) for i, n in enumerate(self.names)], id="pick")
            yield Static("Enter loads it into the editor (user-data and network-config are replaced; "
                         "this VM's instance-id and hostname stay).", classes="dim")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.names[int(event.option.id)])

    def action_cancel(self) -> None:
        self.dismiss(None)


# --- the editor -------------------------------------------------------------------


class CloudInitEditorScreen(VScreen["CloudInitDocs | None"]):
    """Edit the NoCloud documents of one VM (or one saved config)."""

    BINDINGS = [
        Binding("ctrl+s", "done", "Done"),
        Binding("escape", "cancel", "Cancel"),
        Binding("f8", "next_error", "Next error"),
        Binding("f2", "show('user-data')", "user-data", show=False),
        Binding("f3", "show('meta-data')", "meta-data", show=False),
        Binding("f4", "show('network-config')", "network", show=False),
        Binding("f5", "show('form')", "Form"),
        Binding("ctrl+l", "load_library", "Load saved"),
        Binding("ctrl+o", "save_library", "Save as"),
    ]

    def __init__(self, service: Any, *, hostname: str, initial: CloudInitDocs | None = None,
                 library: Library | None = None, title: str | None = None) -> None:
        super().__init__()
        self.service = service
        self.hostname = hostname
        self.library = library if library is not None else Library()
        self.heading = title or (f"cloud-init for '{hostname}'" if hostname else "cloud-init")
        docs = complete_docs(initial, hostname) if initial is not None else default_docs(hostname)
        self.initial = docs
        self.problems: list[tuple[str, Problem]] = []
        self._problem_index = -1
        self._timer: Timer | None = None
        self._generation = 0
        self._form: CloudConfigForm | None = None  # what the form shows (None: not loaded)
        self._form_source: str | None = None  # user-data the form was read from
        self._user_index = 0
        self._file_index = 0
        self._rendered: dict[str, Any] = {}
        self._loading = False  # True while the editor (not the user) fills the form

    @contextmanager
    def _quiet(self):
        """The form's change handlers ignore what is set inside (the editor fills the form)."""
        was = self._loading
        self._loading = True
        try:
            yield
        finally:
            self._loading = was

    # --- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(escape(self.heading), id="ci-title", classes="screen-title")
        with TabbedContent(id="ci-tabs", initial="user-data"):
            for doc in cloudinit.DOCUMENTS:
                text = {"user-data": self.initial.user_data, "meta-data": self.initial.meta_data,
                        "network-config": self.initial.network_config or ""}[doc]
                with TabPane(doc, id=doc):
                    yield TextArea(text, language="yaml", id=f"ta-{doc}", show_line_numbers=True,
                                   tab_behavior="focus", soft_wrap=False, classes="ci-text")
            with TabPane("Form", id="form"):
                yield from self._compose_form()
        yield Static("", id="ci-status")
        yield OptionList(id="ci-problems")
        yield KeyFooter(compact=True)

    def _compose_form(self) -> ComposeResult:
        with VerticalScroll(id="ci-form"):
            yield Static("", id="f-note", classes="field-error")
            yield side_by_side(("Hostname", Input(id="f-hostname", placeholder="web1")),
                               ("FQDN", Input(id="f-fqdn", placeholder="web1.example.org")))
            yield side_by_side(("Locale", Input(id="f-locale", placeholder="en_US.UTF-8")),
                               ("Timezone", Input(id="f-timezone", placeholder="Europe/Berlin")))
            yield Label("Users", classes="field-label ci-section")
            with Horizontal(classes="row"):
                yield Select([], id="f-user-pick", allow_blank=True, prompt="(no users)")
                yield Button("Add user", id="f-user-add")
                yield Button("Remove", id="f-user-del")
            with Vertical(id="f-user-box"):
                yield side_by_side(("Name", Input(id="f-user-name")),
                                   ("Groups (comma separated)", Input(id="f-user-groups", placeholder="sudo, adm")))
                sudo = Input(id="f-user-sudo", placeholder="ALL=(ALL) NOPASSWD:ALL")
                yield side_by_side(("sudo rule (blank: none)", sudo), ("Shell", Input(id="f-user-shell",
                                                                                     placeholder="/bin/bash")))
                yield Label("SSH authorized keys (one per line)", classes="field-label")
                yield TextArea(id="f-user-keys", soft_wrap=True, tab_behavior="focus", classes="ci-small")
                with Horizontal(classes="row"):
                    yield Input(id="f-user-keyfile", placeholder="~/.ssh/id_ed25519.pub")
                    yield Button("Add key from file", id="f-user-keyfile-add")
                yield Label("New password (hashed with SHA-512 before it is written; blank keeps the current)",
                            classes="field-label")
                yield Input(id="f-user-password", password=True)
                yield Static("", id="f-user-pwstate", classes="dim")
            yield Label("Packages (one per line)", classes="field-label ci-section")
            yield TextArea(id="f-packages", tab_behavior="focus", classes="ci-small")
            yield side_by_side(*((key, Select(TRI, id=f"f-{key.replace('_', '-')}", allow_blank=False, value="unset"))
                                 for key in ("package_update", "package_upgrade", "ssh_pwauth")))
            yield Label("Root disk: grow the partition and file system to a disk larger than the image "
                        "(\"not set\": the image's default)", classes="field-label ci-section")
            yield side_by_side(*((key, Select(TRI, id=f"f-{key.replace('_', '-')}", allow_blank=False, value="unset"))
                                 for key in ("growpart", "resize_rootfs")))
            yield Label("runcmd (one command per line; [\"argv\", \"list\"] in JSON)",
                        classes="field-label ci-section")
            yield TextArea(id="f-runcmd", tab_behavior="focus", classes="ci-small")
            yield Label("write_files", classes="field-label ci-section")
            with Horizontal(classes="row"):
                yield Select([], id="f-file-pick", allow_blank=True, prompt="(no files)")
                yield Button("Add file", id="f-file-add")
                yield Button("Remove", id="f-file-del")
            with Vertical(id="f-file-box"):
                yield side_by_side(("Path", Input(id="f-file-path", placeholder="/etc/motd")),
                                   ("Permissions", Input(id="f-file-perms", placeholder="0644")),
                                   ("Owner", Input(id="f-file-owner", placeholder="root:root")))
                yield Label("Content", classes="field-label")
                yield TextArea(id="f-file-content", tab_behavior="focus", classes="ci-small")

    def on_mount(self) -> None:
        self.query_one("#f-note").display = False
        self.query_one("#ci-problems").display = False
        self.ta("user-data").focus()
        self._validate_now()

    # --- access ---------------------------------------------------------------

    def ta(self, doc: str) -> TextArea:
        return self.query_one(f"#ta-{doc}", TextArea)

    def texts(self) -> dict[str, str]:
        return {doc: self.ta(doc).text for doc in cloudinit.DOCUMENTS}

    def docs(self) -> CloudInitDocs:
        t = self.texts()
        return CloudInitDocs(t["user-data"], t["meta-data"], t["network-config"] if t["network-config"].strip()
                             else None)

    @property
    def active_tab(self) -> str:
        return self.query_one("#ci-tabs", TabbedContent).active

    def _set_text(self, doc: str, text: str) -> None:
        ta = self.ta(doc)
        if ta.text != text:
            ta.replace(text, (0, 0), ta.document.end)  # keeps undo (Ctrl+Z)

    # --- live validation ---------------------------------------------------------

    @on(TextArea.Changed, ".ci-text")
    def _text_changed(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._generation += 1
        self._timer = self.set_timer(VALIDATE_DELAY, self._validate_now)

    def _validate_now(self) -> None:
        self._timer = None
        self._generation += 1
        self._run_validation(self._generation, self.texts())

    @work(thread=True, exclusive=True, group="ci-validate")
    def _run_validation(self, generation: int, texts: dict[str, str]) -> None:
        try:
            found = validate_docs(texts)
        except Exception as err:  # a validator bug must not break typing
            log.exception("validation failed")
            found = [("user-data", Problem(0, 0, "", f"validation failed: {err}"))]
        try:
            self.app.call_from_thread(self._show_problems, generation, found)
        except Exception:  # the editor closed meanwhile
            log.debug("validation result dropped", exc_info=True)

    def _show_problems(self, generation: int, found: list[tuple[str, Problem]]) -> None:
        if generation != self._generation or not self.is_mounted:
            return  # typed again meanwhile, or closed
        self.problems = found
        self._problem_index = -1
        box = self.query_one("#ci-problems", OptionList)
        box.clear_options()
        for doc, p in found:
            box.add_option(Option(escape(f"{doc} {p.line}:{p.column}  {p.path + ': ' if p.path else ''}{p.message}")))
        box.display = bool(found)
        status = self.query_one("#ci-status", Static)
        if found:
            n = len(found)
            status.update(f"✗ {n} problem{'s' if n != 1 else ''} — F8 jumps to the next")
            status.set_class(True, "field-error")
        else:
            status.update("✓ valid: YAML and cloud-config schema (" + cloudinit.cloud_config_schema()[1] + ")")
            status.set_class(False, "field-error")

    def action_next_error(self) -> None:
        if not self.problems:
            self.notify("No problems.", timeout=2)
            return
        self._problem_index = (self._problem_index + 1) % len(self.problems)
        self.jump_to(self._problem_index)

    @on(OptionList.OptionSelected, "#ci-problems")
    def _problem_chosen(self, event: OptionList.OptionSelected) -> None:
        self._problem_index = event.option_index
        self.jump_to(event.option_index)

    def jump_to(self, index: int) -> None:
        doc, p = self.problems[index]
        self.action_show(doc)
        ta = self.ta(doc)
        row = max(0, p.line - 1)
        lines = ta.text.split("\n")
        row = min(row, len(lines) - 1)
        col = min(max(0, p.column - 1), len(lines[row]))
        ta.move_cursor((row, col), center=True)
        ta.focus()
        self.query_one("#ci-problems", OptionList).highlighted = index

    # --- tabs and the form ----------------------------------------------------------

    def action_show(self, tab: str) -> None:
        tabs = self.query_one("#ci-tabs", TabbedContent)
        if tabs.active != tab:
            tabs.active = tab  # TabActivated does the form sync

    @on(TabbedContent.TabActivated, "#ci-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id
        if tab == "form":
            self.load_form()
        else:
            self.sync_form()
            self.ta(tab).focus()

    def load_form(self) -> None:
        """Read the form's fields out of user-data."""
        note = self.query_one("#f-note", Static)
        text = self.ta("user-data").text
        try:
            form = form_from_yaml(text)
        except ValueError as err:
            self._form = None
            note.update(escape(f"user-data cannot be shown as a form until it is valid YAML: {err}. "
                               "F2 goes back to it."))
            note.display = True
            self.query_one("#ci-form").set_class(True, "ci-form-off")
            return
        note.display = False
        self.query_one("#ci-form").set_class(False, "ci-form-off")
        self._form = form
        self._form_source = text
        with self._quiet():
            for key in ("hostname", "fqdn", "locale", "timezone"):
                self.query_one(f"#f-{key}", Input).value = getattr(form, key) or ""
            self._rendered["packages"] = "\n".join(render_entry(p) for p in form.packages)
            self._rendered["runcmd"] = "\n".join(render_entry(c) for c in form.runcmd)
            self.query_one("#f-packages", TextArea).load_text(self._rendered["packages"])
            self.query_one("#f-runcmd", TextArea).load_text(self._rendered["runcmd"])
            self.query_one("#f-package-update", Select).value = tri_value(form.package_update)
            self.query_one("#f-package-upgrade", Select).value = tri_value(form.package_upgrade)
            self.query_one("#f-ssh-pwauth", Select).value = tri_value(form.ssh_pwauth)
            self.query_one("#f-growpart", Select).value = tri_value(form.growpart)
            self.query_one("#f-resize-rootfs", Select).value = tri_value(form.resize_rootfs)
            self._user_index = 0
            self._file_index = 0
            self._refresh_user_pick()
            self._load_user()
            self._refresh_file_pick()
            self._load_file()

    def collect_form(self) -> None:
        """Widgets -> self._form (no YAML yet)."""
        form = self._form
        if form is None:
            return
        for key in ("hostname", "fqdn", "locale", "timezone"):
            setattr(form, key, self.query_one(f"#f-{key}", Input).value.strip() or None)
        pk = self.query_one("#f-packages", TextArea).text
        if pk != self._rendered.get("packages"):
            form.packages = parse_lines(pk, form.packages)
        rc = self.query_one("#f-runcmd", TextArea).text
        if rc != self._rendered.get("runcmd"):
            form.runcmd = parse_lines(rc, form.runcmd)
        form.package_update = tri_from(self.query_one("#f-package-update", Select).value)
        form.package_upgrade = tri_from(self.query_one("#f-package-upgrade", Select).value)
        form.ssh_pwauth = tri_from(self.query_one("#f-ssh-pwauth", Select).value)
        form.growpart = tri_from(self.query_one("#f-growpart", Select).value)
        form.resize_rootfs = tri_from(self.query_one("#f-resize-rootfs", Select).value)
        self._collect_user()
        self._collect_file()

    def sync_form(self) -> None:
        """Write the form into user-data (when the form was loaded)."""
        if self._form is None:
            return
        self.collect_form()
        text = self.ta("user-data").text
        if self._form_source is not None and text != self._form_source:
            # user-data changed behind the form's back (library load): re-read
            self._form = None
            return
        try:
            new = apply_form(text, self._form)
        except (ValueError, RuntimeError) as err:
            self.notify(f"Cannot write the form into user-data: {err}", severity="error", timeout=8)
            return
        self.query_one("#f-user-password", Input).value = ""  # hashed now: never kept
        self._set_text("user-data", new)
        self._form_source = new
        self._show_pw_state()

    # users

    def _user_label(self, i: int, u: UserForm) -> str:
        return f"{i + 1}. {u.name or '(unnamed)'}"

    def _refresh_user_pick(self) -> None:
        form = self._form
        pick = self.query_one("#f-user-pick", Select)
        users = form.users if form else []
        pick.set_options([(self._user_label(i, u), i) for i, u in enumerate(users)])
        if users:
            self._user_index = min(self._user_index, len(users) - 1)
            pick.value = self._user_index
        self.query_one("#f-user-box").display = bool(users)

    def _current_user(self) -> UserForm | None:
        form = self._form
        if form is None or not form.users or self._user_index >= len(form.users):
            return None
        return form.users[self._user_index]

    def _load_user(self) -> None:
        u = self._current_user()
        self._rendered["user"] = None
        if u is None:
            return
        r = {"name": u.name, "groups": groups_text(u.groups), "sudo": sudo_text(u.sudo), "shell": u.shell or "",
             "keys": "\n".join(u.ssh_keys)}
        self._rendered["user"] = r
        with self._quiet():
            self.query_one("#f-user-name", Input).value = r["name"]
            self.query_one("#f-user-groups", Input).value = r["groups"]
            self.query_one("#f-user-sudo", Input).value = r["sudo"]
            self.query_one("#f-user-shell", Input).value = r["shell"]
            self.query_one("#f-user-keys", TextArea).load_text(r["keys"])
            self.query_one("#f-user-password", Input).value = ""
        self._show_pw_state()

    def _show_pw_state(self) -> None:
        u = self._current_user()
        state = self.query_one("#f-user-pwstate", Static)
        if u is None:
            text = ""
        elif u.password_hash and cloudinit.is_password_hash(u.password_hash):
            text = f"A password is set ({u.password_hash[:3]}… hash, {u.password_key})."
        elif u.password_hash:
            text = f"Warning: {u.password_key} holds a plain-text password; type a new one to hash it."
        else:
            text = "No password (SSH keys only)."
        if u is not None and u.extra.get("lock_passwd") is True:
            text += " lock_passwd is true: the password cannot log in (set it to false in user-data)."
        state.update(escape(text))

    def _collect_user(self) -> None:
        u = self._current_user()
        r = self._rendered.get("user")
        if u is None or r is None:
            return
        name = self.query_one("#f-user-name", Input).value.strip()
        if name != r["name"]:
            u.name = name
        groups = self.query_one("#f-user-groups", Input).value
        if groups != r["groups"]:
            u.groups = [g.strip() for g in groups.split(",") if g.strip()]
        sudo = self.query_one("#f-user-sudo", Input).value
        if sudo != r["sudo"]:
            u.sudo = sudo_from(sudo)
        shell = self.query_one("#f-user-shell", Input).value.strip()
        if shell != r["shell"]:
            u.shell = shell or None
        keys = self.query_one("#f-user-keys", TextArea).text
        if keys != r["keys"]:
            u.ssh_keys = [k.strip() for k in keys.splitlines() if k.strip()]
        pw = self.query_one("#f-user-password", Input).value
        if pw:
            u.password = pw
        self._rendered["user"] = {"name": u.name, "groups": groups_text(u.groups), "sudo": sudo_text(u.sudo),
                                  "shell": u.shell or "", "keys": "\n".join(u.ssh_keys)}

    # users and write_files are lists edited one item at a time: a pick list,
    # Add and Delete; these run both ("user": _user_index, _collect_user, ...)

    def _item_ops(self, kind: str):
        ops = {"user": (self._collect_user, self._load_user, self._refresh_user_pick),
               "file": (self._collect_file, self._load_file, self._refresh_file_pick)}
        return ops[kind]

    def _item_picked(self, kind: str, event: Select.Changed) -> None:
        if self._loading or not isinstance(event.value, int) or event.value == getattr(self, f"_{kind}_index"):
            return
        collect, load, _refresh = self._item_ops(kind)
        collect()
        setattr(self, f"_{kind}_index", int(event.value))
        load()

    def _item_add(self, kind: str, items: list, new: Any, focus: str) -> None:
        collect, load, refresh = self._item_ops(kind)
        collect()
        items.append(new)
        setattr(self, f"_{kind}_index", len(items) - 1)
        with self._quiet():
            refresh()
        load()
        self.query_one(focus, Input).focus()

    def _item_del(self, kind: str, items: list) -> None:
        _collect, load, refresh = self._item_ops(kind)
        index = getattr(self, f"_{kind}_index")
        del items[index]
        setattr(self, f"_{kind}_index", max(0, index - 1))
        with self._quiet():
            refresh()
        load()

    @on(Select.Changed, "#f-user-pick")
    def _user_picked(self, event: Select.Changed) -> None:
        self._item_picked("user", event)

    @on(Button.Pressed, "#f-user-add")
    def _user_add(self) -> None:
        if self._form is not None:
            self._item_add("user", self._form.users, UserForm(name="", groups=[], shell="/bin/bash"),
                           "#f-user-name")

    @on(Button.Pressed, "#f-user-del")
    def _user_del(self) -> None:
        if self._current_user() is not None:
            self._item_del("user", self._form.users)

    @on(Input.Changed, "#f-user-name")
    def _user_renamed(self, event: Input.Changed) -> None:
        u = self._current_user()
        if self._loading or u is None:
            return
        pick = self.query_one("#f-user-pick", Select)
        with self._quiet():
            opts = [(self._user_label(i, x if i != self._user_index else UserForm(name=event.value)), i)
                    for i, x in enumerate(self._form.users)]
            pick.set_options(opts)
            pick.value = self._user_index

    @on(Button.Pressed, "#f-user-keyfile-add")
    @on(Input.Submitted, "#f-user-keyfile")
    def _add_key_file(self) -> None:
        box = self.query_one("#f-user-keyfile", Input)
        raw = box.value.strip()
        if not raw:
            self.notify("Type the path of a public key file (e.g. ~/.ssh/id_ed25519.pub).", severity="warning")
            return
        path = Path(raw).expanduser()
        try:
            text = userfile.read_text(path, userfile.MAX_SSH_KEYS)
        except userfile.UserFileError as err:
            self.notify(f"Cannot read '{path}': {err.reason}", title="SSH key", severity="error", timeout=8)
            return
        keys = [k.strip() for k in text.splitlines() if k.strip() and not k.lstrip().startswith("#")]
        if not keys or any("PRIVATE KEY" in k for k in keys):
            self.notify(f"'{path}' holds no public key" + (" (it is a PRIVATE key: use the .pub file)"
                                                            if any("PRIVATE KEY" in k for k in keys) else ""),
                        title="SSH key", severity="error", timeout=8)
            return
        ta = self.query_one("#f-user-keys", TextArea)
        current = ta.text.rstrip("\n")
        ta.load_text("\n".join(([current] if current else []) + keys))
        box.value = ""
        self.notify(f"Added {len(keys)} key{'s' if len(keys) != 1 else ''} from {path}", timeout=3)

    # write_files

    def _current_file(self) -> WriteFileForm | None:
        form = self._form
        if form is None or not form.write_files or self._file_index >= len(form.write_files):
            return None
        return form.write_files[self._file_index]

    def _refresh_file_pick(self) -> None:
        files = self._form.write_files if self._form else []
        pick = self.query_one("#f-file-pick", Select)
        pick.set_options([(f"{i + 1}. {f.path or '(no path)'}", i) for i, f in enumerate(files)])
        if files:
            self._file_index = min(self._file_index, len(files) - 1)
            pick.value = self._file_index
        self.query_one("#f-file-box").display = bool(files)

    def _load_file(self) -> None:
        f = self._current_file()
        self._rendered["file"] = None
        if f is None:
            return
        r = {"path": f.path, "perms": f.permissions or "", "owner": f.owner or "", "content": f.content}
        self._rendered["file"] = r
        self.query_one("#f-file-path", Input).value = r["path"]
        self.query_one("#f-file-perms", Input).value = r["perms"]
        self.query_one("#f-file-owner", Input).value = r["owner"]
        self.query_one("#f-file-content", TextArea).load_text(r["content"])

    def _collect_file(self) -> None:
        f = self._current_file()
        r = self._rendered.get("file")
        if f is None or r is None:
            return
        path = self.query_one("#f-file-path", Input).value.strip()
        if path != r["path"]:
            f.path = path
        perms = self.query_one("#f-file-perms", Input).value.strip()
        if perms != r["perms"]:
            f.permissions = perms or None
        owner = self.query_one("#f-file-owner", Input).value.strip()
        if owner != r["owner"]:
            f.owner = owner or None
        content = self.query_one("#f-file-content", TextArea).text
        if content != r["content"]:
            f.content = content
        self._rendered["file"] = {"path": f.path, "perms": f.permissions or "", "owner": f.owner or "",
                                  "content": f.content}

    @on(Select.Changed, "#f-file-pick")
    def _file_picked(self, event: Select.Changed) -> None:
        self._item_picked("file", event)

    @on(Button.Pressed, "#f-file-add")
    def _file_add(self) -> None:
        if self._form is not None:
            self._item_add("file", self._form.write_files, WriteFileForm(path=""), "#f-file-path")

    @on(Button.Pressed, "#f-file-del")
    def _file_del(self) -> None:
        if self._current_file() is not None:
            self._item_del("file", self._form.write_files)

    # --- library ---------------------------------------------------------------

    def action_load_library(self) -> None:
        try:
            names = self.library.names()
        except LibraryError as err:
            self.notify(err.message, title="Saved configs", severity="error", timeout=8)
            return
        if not names:
            self.notify(f"No saved cloud-init configs yet (Ctrl+O saves this one; they live in "
                        f"{self.library.directory}).", title="Saved configs", timeout=6)
            return

        def chosen(name: str | None) -> None:
            if name:
                self.load_saved(name)

        self.app.push_screen(PickConfig(names), chosen)

    def load_saved(self, name: str) -> None:
        try:
            cfg = self.library.load(name)
        except LibraryError as err:
            self.notify(err.message, title="Saved configs", severity="error", timeout=8)
            return
        self.sync_form()
        current = self._meta_mapping(self.ta("meta-data").text)
        saved = self._meta_mapping(cfg.docs.meta_data) if cfg.docs.meta_data.strip() else {}
        meta = dict(saved or {})
        for key in ("instance-id", "local-hostname"):
            if current and current.get(key):
                meta[key] = current[key]
        docs = complete_docs(CloudInitDocs(cfg.docs.user_data, yaml.safe_dump(meta, sort_keys=False)
                                           if meta else ""), self.hostname)
        self._set_text("user-data", docs.user_data)
        self._set_text("meta-data", docs.meta_data)
        self._set_text("network-config", cfg.docs.network_config or "")
        self._form = None
        if self.active_tab == "form":
            self.load_form()
        self._validate_now()
        self.notify(f"Loaded '{name}'", title="Saved configs", timeout=3)

    @staticmethod
    def _meta_mapping(text: str) -> dict | None:
        try:
            data = safeyaml.load(text) if text.strip() else {}
        except yaml.YAMLError:
            return None
        return data if isinstance(data, dict) else None

    def action_save_library(self) -> None:
        self.sync_form()

        def named(name: str | None) -> None:
            if not name:
                return
            try:
                existed = self.library.exists(name)
                self.library.save(name, self.docs())
            except LibraryError as err:
                self.notify(err.message, title="Saved configs", severity="error", timeout=8)
                return
            self.notify(f"{'Replaced' if existed else 'Saved'} '{name}' in the library "
                        "(without instance-id and hostname)", title="Saved configs", timeout=4)

        self.app.push_screen(AskText("Save to the library as", self.hostname or "", "Save", validate_name), named)

    # --- done / cancel --------------------------------------------------------------

    def action_done(self) -> None:
        self.sync_form()
        found = validate_docs(self.texts())
        if found:
            self._generation += 1
            self._show_problems(self._generation, found)
            self.jump_to(0)
            self._problem_index = 0
            n = len(found)
            self.notify(f"Fix the {n} problem{'s' if n != 1 else ''} first (F8 jumps to the next).",
                        title="cloud-init", severity="error", timeout=6)
            return
        self.dismiss(self.docs())

    def action_cancel(self) -> None:
        self.sync_form()
        start = self.initial
        if self.docs() == CloudInitDocs(start.user_data, start.meta_data, start.network_config or None):
            self.dismiss(None)
            return
        from .dialogs import ConfirmDialog

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(None)

        self.app.push_screen(ConfirmDialog("Discard changes", "Discard your changes to the cloud-init documents?",
                                           yes="Discard"), answered)


# --- attaching a seed to an existing VM -------------------------------------------


class AttachSeedDialog(VModal["tuple[str, bool] | None"]):
    """Where the seed ISO goes (pool) and whether it goes again after the
    first boot. Returns (pool, detach_after_first_boot) or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, domain_name: str, pools: list[str], default_pool: str | None) -> None:
        super().__init__()
        self.domain_name, self.pools, self.default_pool = domain_name, pools, default_pool

    def compose(self) -> ComposeResult:
        from .toggles import Checkbox
        with Vertical(classes="dialog", id="attach-seed"):
            yield Label(f"Attach a cloud-init seed to '{escape(self.domain_name)}'", classes="dialog-title")
            yield Static(f"The NoCloud ISO is uploaded as volume '{escape(self.domain_name)}-cidata.iso' and "
                         "attached as a read-only CD-ROM (an earlier seed of this VM is replaced). A running VM "
                         "sees it at its next boot if the bus cannot hot-plug.", classes="dialog-body")
            yield Label("Storage pool", classes="field-label")
            opts = [(p, p) for p in self.pools]
            value = self.default_pool if self.default_pool in self.pools else (self.pools[0] if self.pools else None)
            yield Select(opts, id="attach-pool", allow_blank=False, value=value) if opts else \
                Static("No active storage pool: start one first.", classes="field-error")
            yield Checkbox("Remove the seed CD-ROM after the first boot", id="attach-detach")
            yield dialog_buttons("Attach", cancel_id="no", ok_disabled=not self.pools)

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        from .toggles import Checkbox
        self.dismiss((str(self.query_one("#attach-pool", Select).value),
                      self.query_one("#attach-detach", Checkbox).value))

    @on(Button.Pressed, "#no")
    def action_cancel(self) -> None:
        self.dismiss(None)


# --- the library screen ----------------------------------------------------------


class CloudInitLibraryScreen(VScreen[None]):
    """The saved cloud-init configs: new, edit, duplicate, rename, delete,
    import from and export to files."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n", "new", "New"),
        Binding("e", "edit", "Edit"),
        Binding("c", "duplicate", "Copy"),
        Binding("r", "rename", "Rename"),
        Binding("D,delete", "delete", "Delete"),
        Binding("I", "import_file", "Import"),
        Binding("E", "export_file", "Export"),
        Binding("a", "attach", "Attach to VM"),
    ]

    def __init__(self, service: Any, library: Library | None = None, domain_name: str | None = None,
                 domain_uuid: str | None = None) -> None:
        super().__init__()
        self.service = service
        self.library = library if library is not None else Library()
        self.domain_name = domain_name  # the VM selected on the list ('a' attaches to it)
        self.domain_uuid = domain_uuid  # ... found by its UUID: a rename or a namesake cannot swap it
        self.configs = []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "attach":
            if not self.domain_name:
                return False  # no VM selected on the list: not offered
            if self.selected is None or getattr(self.service, "readonly", False):
                return None
        return True

    def compose(self) -> ComposeResult:
        target = f" — a attaches one to '{self.domain_name}'" if self.domain_name else ""
        yield Static(escape(f"Saved cloud-init configs{target}"), id="lib-title", classes="screen-title")
        with Horizontal(id="lib-body"):
            yield OptionList(id="lib-list")
            yield TextArea("", id="lib-preview", read_only=True, language="yaml", show_line_numbers=False)
        yield Static("", id="lib-where", classes="dim")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#lib-list", OptionList).focus()

    def reload(self, select: str | None = None) -> None:
        self.configs, problems = self.library.scan()
        box = self.query_one("#lib-list", OptionList)
        box.clear_options()
        for cfg in self.configs:
            box.add_option(Option(escape(cfg.name)))
        where = f"{len(self.configs)} saved in {self.library.directory}"
        if problems:
            where += f" — {len(problems)} unreadable: " + "; ".join(problems)
        self.query_one("#lib-where", Static).update(escape(where))
        if self.configs:
            names = [c.name for c in self.configs]
            box.highlighted = names.index(select) if select in names else 0
        self._preview()

    @property
    def selected(self):
        try:
            idx = self.query_one("#lib-list", OptionList).highlighted
        except NoMatches:  # not composed yet
            return None
        return self.configs[idx] if idx is not None and 0 <= idx < len(self.configs) else None

    @on(OptionList.OptionHighlighted, "#lib-list")
    def _preview(self) -> None:
        self.refresh_bindings()
        cfg = self.selected
        text = ""
        if cfg is not None:
            text = cfg.docs.user_data
            if cfg.docs.network_config:
                text += "\n# --- network-config ---\n" + cfg.docs.network_config
        self.query_one("#lib-preview", TextArea).load_text(text or "(no saved configs: n makes one, I imports)")

    @on(OptionList.OptionSelected, "#lib-list")
    def _chosen(self) -> None:
        self.action_edit()

    def _error(self, err: VmtuiError) -> None:
        self.notify(err.message, title="Saved configs", severity="error", timeout=8)

    def _edit(self, name: str | None, docs: CloudInitDocs | None) -> None:
        editor = CloudInitEditorScreen(self.service, hostname="", initial=docs, library=self.library,
                                       title=f"saved cloud-init config '{name}'" if name else
                                       "new saved cloud-init config")

        def done(result: CloudInitDocs | None) -> None:
            if result is None:
                return
            if name:
                self._save(name, result)
                return

            def named(new: str | None) -> None:
                if new:
                    self._save(new, result, overwrite=False)

            self.app.push_screen(AskText("Name of the new config", "", "Save", validate_name), named)

        self.app.push_screen(editor, done)

    def _save(self, name: str, docs: CloudInitDocs, overwrite: bool = True) -> None:
        try:
            self.library.save(name, docs, overwrite=overwrite)
        except LibraryError as err:
            self._error(err)
            return
        self.notify(f"Saved '{name}'", timeout=3)
        self.reload(name)

    def action_new(self) -> None:
        self._edit(None, None)

    def action_edit(self) -> None:
        cfg = self.selected
        if cfg is not None:
            self._edit(cfg.name, cfg.docs)

    def action_duplicate(self) -> None:
        cfg = self.selected
        if cfg is None:
            return
        try:
            copy = self.library.duplicate(cfg.name)
        except LibraryError as err:
            self._error(err)
            return
        self.notify(f"Duplicated as '{copy.name}'", timeout=3)
        self.reload(copy.name)

    def action_rename(self) -> None:
        cfg = self.selected
        if cfg is None:
            return

        def named(new: str | None) -> None:
            if not new or new == cfg.name:
                return
            try:
                self.library.rename(cfg.name, new)
            except LibraryError as err:
                self._error(err)
                return
            self.reload(new)

        self.app.push_screen(AskText(f"Rename '{cfg.name}' to", cfg.name, "Rename", validate_name), named)

    def action_delete(self) -> None:
        cfg = self.selected
        if cfg is None:
            return
        from .dialogs import ConfirmDialog

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.library.delete(cfg.name)
            except LibraryError as err:
                self._error(err)
                return
            self.notify(f"Deleted '{cfg.name}'", timeout=3)
            self.reload()

        self.app.push_screen(ConfirmDialog("Delete saved config", f"Delete '{escape(cfg.name)}' from the library?",
                                           yes="Delete"), answered)

    def action_attach(self) -> None:
        cfg = self.selected
        name = self.domain_name
        if cfg is None or not name:
            return
        editor = CloudInitEditorScreen(self.service, hostname=name, initial=CloudInitDocs(
            cfg.docs.user_data, cfg.docs.meta_data, cfg.docs.network_config), library=self.library,
            title=f"cloud-init for '{name}' (from '{cfg.name}')")

        def edited(docs: CloudInitDocs | None) -> None:
            if docs is not None:
                self._ask_pool(name, docs)

        self.app.push_screen(editor, edited)

    @work(group="ci-attach")
    async def _ask_pool(self, name: str, docs: CloudInitDocs) -> None:
        uuid = self.domain_uuid
        try:
            where = await self.service.call(lambda c: seed.seed_pools(c, name, uuid),
                                            action="read the storage pools for", obj=f"domain '{name}'")
        except VmtuiError as err:
            self._error(err)
            return
        answer = await self.app.push_screen_wait(AttachSeedDialog(name, where.pools, where.default))
        if answer is None:
            return
        pool, detach = answer
        self.notify(f"Uploading the seed for '{name}' to pool '{pool}'…", timeout=3)
        try:
            path = await self.service.call(
                lambda c: seed.attach_seed(c, name, pool, docs, detach_after_first_boot=detach, uuid=uuid),
                action="attach the cloud-init seed to", obj=f"domain '{name}'", timeout=300)
        except VmtuiError as err:
            self._error(err)
            return
        then = " It goes once cloud-init finished with it (while vmtui runs)." if detach else ""
        self.notify(f"Attached {path} to '{name}'.{then}", title="cloud-init", timeout=6)
        adopt = getattr(self.app, "adopt_vm", None)
        if adopt is not None and uuid:
            adopt(uuid, self.service)

    def action_import_file(self) -> None:
        def path_given(path: str | None) -> None:
            if not path:
                return
            try:
                cfg = self.library.import_file(path)
            except LibraryError as err:
                self._error(err)
                return
            self.notify(f"Imported '{cfg.name}' from {path}", timeout=4)
            self.reload(cfg.name)

        self.app.push_screen(AskText("Import a config (saved-config YAML or a #cloud-config user-data file)",
                                     "", "Import"), path_given)

    def action_export_file(self) -> None:
        cfg = self.selected
        if cfg is None:
            return

        def path_given(path: str | None) -> None:
            if not path:
                return
            try:
                out = self.library.export_file(cfg.name, path)
            except LibraryError as err:
                self._error(err)
                return
            self.notify(f"Exported '{cfg.name}' to {out}", timeout=4)

        self.app.push_screen(AskText(f"Export '{cfg.name}' to file", f"./{cfg.name}.yaml", "Export"), path_given)
