"""The cloud-init editor and the saved-configs screen (Textual Pilot)."""

from __future__ import annotations

import asyncio

import pytest
import yaml
from textual.app import App
from textual.widgets import Input, OptionList, TextArea

from vmtui.core.provision import cloudinit
from vmtui.core.provision.library import Library
from vmtui.core.provision.seed import CloudInitDocs
from vmtui.core.provision.cloudinit_form import parse_lines, render_entry
from vmtui.ui.cloudinit_editor import CloudInitEditorScreen, CloudInitLibraryScreen

SIZE = (80, 24)
USER = """#cloud-config
# my comment stays
hostname: web1
mystery_module:
  keep: [1, 2]
users:
  - name: admin
    groups: [sudo]
    lock_passwd: true
    custom_key: stays
packages:
  - nginx
  - [libfoo, "1.2"]
"""


class EditorApp(App):
    CSS_PATH = "../vmtui/ui/vmtui.tcss"

    def __init__(self, screen_factory) -> None:
        super().__init__()
        self.factory = screen_factory
        self.result = "not dismissed"

    def on_mount(self) -> None:
        def done(result) -> None:
            self.result = result
        self.push_screen(self.factory(), done)


def editor_app(tmp_path, initial=None, hostname="web1"):
    lib = Library(tmp_path / "lib")
    return EditorApp(lambda: CloudInitEditorScreen(None, hostname=hostname, initial=initial, library=lib)), lib


async def settle(pilot, app) -> None:
    """Until the debounce timer has fired and the validation has been shown."""
    scr = app.screen
    await pilot.pause(0.35)
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
        if scr._timer is None and not any(w.group == "ci-validate" and not w.is_finished for w in app.workers):
            break
    await pilot.pause()


async def test_default_docs_have_hostname_and_unique_instance_id(tmp_path):
    app, _ = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        await settle(pilot, app)
        # new documents grow the root file system to the disk (growpart, resize_rootfs)
        assert yaml.safe_load(scr.ta("user-data").text) == {
            "hostname": "web1", "growpart": {"mode": "auto", "devices": ["/"]}, "resize_rootfs": True}
        meta = yaml.safe_load(scr.ta("meta-data").text)
        assert meta["local-hostname"] == "web1" and meta["instance-id"].startswith("iid-vmtui-")
        assert scr.problems == []
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert isinstance(app.result, CloudInitDocs)
    assert app.result.network_config is None


async def test_typing_invalid_yaml_shows_line_and_column_and_f8_jumps(tmp_path):
    app, _ = editor_app(tmp_path, CloudInitDocs("#cloud-config\nhostname: a\n", ""))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        ta = scr.ta("user-data")
        ta.move_cursor((2, 0))
        await pilot.press(*"packages: [x", "enter", *"users: 3")
        await settle(pilot, app)
        assert scr.problems, "no problem found"
        doc, p = scr.problems[0]
        assert doc == "user-data" and p.line == 4 and p.message.startswith("YAML syntax error")
        shown = str(scr.query_one("#ci-problems", OptionList).get_option_at_index(0).prompt)
        assert shown.startswith(f"user-data {p.line}:{p.column}")
        ta.move_cursor((0, 0))
        await pilot.press("f8")
        await pilot.pause()
        assert ta.cursor_location == (p.line - 1, p.column - 1)
        # fix it: a schema error is next, with its path
        await pilot.press("ctrl+z")  # not needed to succeed: rewrite the whole text instead
        ta.load_text("#cloud-config\npackage_update: maybe\n")
        await settle(pilot, app)
        ((doc, p),) = scr.problems
        assert (p.line, p.column, p.path) == (2, 17, "package_update")
        ta.move_cursor((0, 0))
        await pilot.press("f8")
        assert ta.cursor_location == (1, 16)
        # Done refuses while there are problems
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.result == "not dismissed"


async def test_meta_data_problems_jump_to_their_tab(tmp_path):
    app, _ = editor_app(tmp_path, CloudInitDocs("#cloud-config\n", "instance-id: i-1\n"))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        scr.ta("meta-data").load_text("instance-id: i-1\ndsmode: sometimes\n")
        await settle(pilot, app)
        ((doc, p),) = scr.problems
        assert doc == "meta-data" and p.line == 2
        await pilot.press("f8")
        await pilot.pause()
        assert scr.active_tab == "meta-data"
        assert scr.ta("meta-data").cursor_location == (1, p.column - 1)


async def test_form_round_trip_keeps_unknown_keys_and_hashes_the_password(tmp_path):
    app, _ = editor_app(tmp_path, CloudInitDocs(USER, "instance-id: i-1\n"))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        await pilot.press("f5")
        await pilot.pause()
        assert scr.active_tab == "form"
        assert scr.query_one("#f-hostname", Input).value == "web1"
        assert scr.query_one("#f-user-name", Input).value == "admin"
        assert scr.query_one("#f-packages", TextArea).text == 'nginx\n["libfoo", "1.2"]'
        scr.query_one("#f-timezone", Input).value = "Europe/Berlin"
        scr.query_one("#f-user-sudo", Input).value = "ALL=(ALL) NOPASSWD:ALL"
        scr.query_one("#f-user-keys", TextArea).load_text("ssh-ed25519 AAAAkey admin@x")
        scr.query_one("#f-user-password", Input).value = "hunter2"
        await pilot.press("f2")  # back to the YAML: the form is written into it
        await pilot.pause()
        text = scr.ta("user-data").text
        assert "hunter2" not in text
        data = yaml.safe_load(text)
        assert text.startswith("#cloud-config\n# my comment stays\n")
        assert data["mystery_module"] == {"keep": [1, 2]}
        assert data["timezone"] == "Europe/Berlin"
        user = data["users"][0]
        assert user["custom_key"] == "stays" and user["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
        assert user["ssh_authorized_keys"] == ["ssh-ed25519 AAAAkey admin@x"]
        assert cloudinit.is_password_hash(user["passwd"]) and user["passwd"].startswith("$6$")
        assert data["packages"] == ["nginx", ["libfoo", "1.2"]]
        # the password field is empty again: the plain text is gone
        assert scr.query_one("#f-user-password", Input).value == ""
        # type in the YAML, go to the form: it reads the new value back
        ta = scr.ta("user-data")
        ta.load_text(ta.text.replace("hostname: web1", "hostname: web2"))
        await pilot.press("f5")
        await pilot.pause()
        assert scr.query_one("#f-hostname", Input).value == "web2"
        assert scr.query_one("#f-timezone", Input).value == "Europe/Berlin"
        # back and forth without changes leaves the text as it is
        before = scr.ta("user-data").text
        await pilot.press("f2")
        await pilot.press("f5")
        await pilot.press("f2")
        await pilot.pause()
        assert scr.ta("user-data").text == before
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert yaml.safe_load(app.result.user_data)["hostname"] == "web2"


async def test_form_refuses_invalid_yaml_but_keeps_the_text(tmp_path):
    bad = "#cloud-config\nusers: [\n"
    app, _ = editor_app(tmp_path, CloudInitDocs(bad, "instance-id: x\n"))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        await pilot.press("f5")
        await pilot.pause()
        note = scr.query_one("#f-note")
        assert note.display and "valid YAML" in str(note.render())
        await pilot.press("f2")
        await pilot.pause()
        assert scr.ta("user-data").text == bad


async def test_key_from_file_and_new_user(tmp_path):
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAfromfile me@host\n")
    app, _ = editor_app(tmp_path, CloudInitDocs("#cloud-config\n", "instance-id: x\n"))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        await pilot.press("f5")
        await pilot.pause()
        scr.query_one("#f-user-add").press()
        await pilot.pause()
        scr.query_one("#f-user-name", Input).value = "ops"
        scr.query_one("#f-user-keyfile", Input).value = str(key)
        scr.query_one("#f-user-keyfile-add").press()
        await pilot.pause()
        assert scr.query_one("#f-user-keys", TextArea).text == "ssh-ed25519 AAAAfromfile me@host"
        scr.query_one("#f-user-keyfile", Input).value = str(tmp_path / "missing.pub")
        scr.query_one("#f-user-keyfile-add").press()
        await pilot.pause()
        await pilot.press("f2")
        await pilot.pause()
        data = yaml.safe_load(scr.ta("user-data").text)
        assert data["users"] == [{"name": "ops", "shell": "/bin/bash",
                                  "ssh_authorized_keys": ["ssh-ed25519 AAAAfromfile me@host"]}]


async def test_save_to_and_load_from_the_library(tmp_path):
    app, lib = editor_app(tmp_path, CloudInitDocs(USER, "instance-id: iid-mine\nlocal-hostname: web1\n"))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        await pilot.press("ctrl+o")
        await pilot.pause()
        inp = app.screen.query_one("#answer", Input)
        inp.value = "base"
        await pilot.press("enter")
        await pilot.pause()
        assert lib.load("base").docs.user_data == USER
        scr.ta("user-data").load_text("#cloud-config\n")
        await pilot.press("ctrl+l")
        await pilot.pause()
        await pilot.press("enter")  # the only entry
        await pilot.pause()
        assert scr.ta("user-data").text == USER
        meta = yaml.safe_load(scr.ta("meta-data").text)
        assert meta == {"instance-id": "iid-mine", "local-hostname": "web1"}  # this VM's, not the saved one's


def test_lines_round_trip():
    entries = ["nginx", ["libfoo", "1.2"], "echo 'a b'", "two\nlines"]
    text = "\n".join(render_entry(e) for e in entries)
    assert parse_lines(text, entries) == entries
    assert parse_lines('ls -l\n["ls", "-l"]\n[ -f /x ] && y', []) == ["ls -l", ["ls", "-l"], "[ -f /x ] && y"]


async def test_library_screen_new_duplicate_delete(tmp_path):
    lib = Library(tmp_path / "lib")
    lib.save("alpha", CloudInitDocs("#cloud-config\nhostname: a\n", ""))
    app = EditorApp(lambda: CloudInitLibraryScreen(None, lib))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        await pilot.pause()
        assert "hostname: a" in scr.query_one("#lib-preview", TextArea).text
        await pilot.press("c")
        await pilot.pause()
        assert lib.names() == ["alpha", "alpha (copy)"]
        await pilot.press("D")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert len(lib.names()) == 1
        # edit: the editor opens on the saved docs, Ctrl+S saves back
        await pilot.press("e")
        await pilot.pause()
        ed = app.screen
        assert isinstance(ed, CloudInitEditorScreen)
        ed.ta("user-data").load_text("#cloud-config\nhostname: edited\n")
        await pilot.press("ctrl+s")
        await pilot.pause()
        name = lib.names()[0]
        assert lib.load(name).docs.user_data == "#cloud-config\nhostname: edited\n"
        # export, then import under the same name fails clearly
        await pilot.press("E")
        await pilot.pause()
        app.screen.query_one("#answer", Input).value = str(tmp_path / "out.yaml")
        await pilot.press("enter")
        await pilot.pause()
        assert (tmp_path / "out.yaml").exists()
        await pilot.press("I")
        await pilot.pause()
        app.screen.query_one("#answer", Input).value = str(tmp_path / "out.yaml")
        await pilot.press("enter")
        await pilot.pause()
        assert len(lib.names()) == 1  # already exists: refused, with a notification


async def test_escape_asks_before_discarding_changes(tmp_path):
    app, _ = editor_app(tmp_path, CloudInitDocs("#cloud-config\n", "instance-id: x\n"))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        scr.ta("user-data").load_text("#cloud-config\nhostname: changed\n")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not scr  # the question
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is scr and app.result == "not dismissed"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert app.result is None


async def test_escape_without_changes_just_closes(tmp_path):
    app, _ = editor_app(tmp_path, CloudInitDocs("#cloud-config\n", "instance-id: x\n"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.result is None


async def test_closing_while_validating_is_harmless(tmp_path):
    app, _ = editor_app(tmp_path, CloudInitDocs("#cloud-config\n", "instance-id: x\n"))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        await pilot.press("ctrl+s")  # dismiss at once; the first validation may still run
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        assert app.screen is not scr
    assert isinstance(app.result, CloudInitDocs)


async def test_password_state_is_explained(tmp_path):
    user = "#cloud-config\nusers:\n  - name: a\n    lock_passwd: true\n    passwd: plain\n"
    app, _ = editor_app(tmp_path, CloudInitDocs(user, "instance-id: x\n"))
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        await pilot.press("f5")
        await pilot.pause()
        text = str(scr.query_one("#f-user-pwstate").render())
        assert "plain-text password" in text and "lock_passwd is true" in text


def test_plain_passwords_are_problems():
    from vmtui.ui.cloudinit_editor import validate_docs
    text = "#cloud-config\nusers:\n  - name: a\n    passwd: hunter2\n  - name: b\n    passwd: $6$abc$def\n"
    ((doc, p),) = validate_docs({"user-data": text})
    assert (doc, p.line, p.column, p.path) == ("user-data", 4, 13, "users.0.passwd")


def test_the_editor_and_the_spec_check_a_document_alike():
    """One check in core (cloudinit.check_document): the editor lists its
    problems, the spec validation shows the first with the count."""
    from vmtui.core.create.validation import validate_spec
    from vmtui.core.create.vmspec import InstallSource, VmSpec
    from vmtui.ui.cloudinit_editor import validate_docs
    text = "#cloud-config\nusers:\n  - name: a\n    passwd: hunter2\nhostname: [x]\n"
    listed = validate_docs({"user-data": text})
    assert len(listed) == 2 and {doc for doc, _p in listed} == {"user-data"}
    spec = VmSpec(name="a", install=InstallSource(kind="cloud", image="/i.qcow2", cloud_init={"user_data": text}))
    (fe,) = [e for e in validate_spec(spec) if e.field == "install.cloud_init.user_data"]
    assert fe.message == f"user-data {listed[0][1]} (and 1 more)" and fe.line == listed[0][1].line


async def test_form_turns_growpart_and_resize_rootfs_off_and_on(tmp_path):
    from textual.widgets import Select

    app, _ = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        scr = app.screen
        await settle(pilot, app)
        await pilot.press("f5")
        await pilot.pause()
        # on by default: the starter document asks for both
        assert scr.query_one("#f-growpart", Select).value == "yes"
        assert scr.query_one("#f-resize-rootfs", Select).value == "yes"
        scr.query_one("#f-growpart", Select).value = "no"
        scr.query_one("#f-resize-rootfs", Select).value = "no"
        await pilot.press("f2")
        await pilot.pause()
        data = yaml.safe_load(scr.ta("user-data").text)
        assert data["growpart"] == {"mode": "off"} and data["resize_rootfs"] is False
        assert data["hostname"] == "web1"
        await pilot.press("f5")
        await pilot.pause()
        assert scr.query_one("#f-growpart", Select).value == "no"
        scr.query_one("#f-growpart", Select).value = "yes"
        await pilot.press("f2")
        await pilot.pause()
        assert yaml.safe_load(scr.ta("user-data").text)["growpart"] == {"mode": "auto", "devices": ["/"]}
