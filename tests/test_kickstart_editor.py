"""The kickstart editor through Textual's Pilot: live validation with lines,
jumping between problems, syntax versions, the starter template (hashed
passwords), files, and `k` on the domain list."""

from __future__ import annotations

import pytest
from textual.widgets import Input, OptionList, Select, TextArea

from vmtui.core.provision.cloudinit import is_password_hash
from vmtui.core.provision.kickstart import validate_kickstart
from vmtui.core.create.vmspec import DiskSpec, VmSpec
from vmtui.ui.kickstart_editor import KickstartEditorScreen, StarterDialog

from .conftest import wait_for
from .test_ui import make_app, ready

BAD = "text\nlang en_US.UTF-8\nbogus --flag\nrootpw --lock\nautostep\nfrobnicate\n"


async def checked(screen: KickstartEditorScreen) -> None:
    await wait_for(lambda: screen.checked == (screen.text, screen.version), timeout=10, what="validation")


def problem_lines(screen) -> list[str]:
    ol = screen.query_one("#ks-problems", OptionList)
    return [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]


async def open_editor(app, pilot, **kw) -> KickstartEditorScreen:
    await ready(app, pilot)
    screen = KickstartEditorScreen(**kw)
    app.push_screen(screen)
    await pilot.pause()
    await checked(screen)
    return screen


async def test_k_opens_the_editor_standalone(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("k")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, KickstartEditorScreen) and not screen.for_vm
        await checked(screen)
        assert "Empty" in problem_lines(screen)[0]
        assert "OEMDRV" in str(screen.query_one("#ks-delivery").content)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, KickstartEditorScreen)


async def test_invalid_command_is_listed_with_its_line_and_f8_jumps(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(app, pilot, text=BAD, version="RHEL9")
        lines = problem_lines(screen)
        assert lines[0].startswith("line   3  error") and "Unknown command: bogus" in lines[0]
        assert lines[1].startswith("line   5  warning") and "deprecated" in lines[1]
        assert lines[2].startswith("line   6  error") and "frobnicate" in lines[2]
        assert "2 errors, 1 warning" in str(screen.query_one("#ks-status").content)
        ta = screen.query_one("#ks-text", TextArea)
        assert ta.cursor_location == (0, 0)
        await pilot.press("f8")
        assert ta.cursor_location == (2, 0)
        await pilot.press("f8")
        assert ta.cursor_location == (4, 0)
        await pilot.press("f8")
        assert ta.cursor_location == (5, 0)
        await pilot.press("f8")  # wraps around
        assert ta.cursor_location == (2, 0)
        await pilot.press("shift+f8")
        assert ta.cursor_location == (5, 0)


async def test_typing_revalidates_after_a_pause(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(app, pilot, text="text\n", version="RHEL9")
        assert "No problems" in problem_lines(screen)[0]
        ta = screen.query_one("#ks-text", TextArea)
        ta.move_cursor((1, 0))
        await pilot.press(*"nosuchcmd")
        assert "checking" in str(screen.query_one("#ks-status").content)
        await checked(screen)
        assert "line   2  error" in problem_lines(screen)[0]


async def test_switching_the_syntax_version_changes_the_results(small_uri):
    text = "text\nlang en_US.UTF-8\ninstall\nrootpw --lock\n"
    assert validate_kickstart(text, "RHEL8")[0].severity == "warning"  # deprecated there, removed in RHEL9
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(app, pilot, text=text, version="RHEL9")
        assert "install has been removed" in problem_lines(screen)[0]
        assert "error" in problem_lines(screen)[0]
        screen.query_one("#ks-version", Select).value = "RHEL8"
        await pilot.pause()
        await checked(screen)
        assert screen.version == "RHEL8"
        assert "warning" in problem_lines(screen)[0] and "deprecated" in problem_lines(screen)[0]


async def test_version_defaults_from_the_os():
    assert KickstartEditorScreen(spec=VmSpec(name="x", os="fedora39")).version == "F39"
    assert KickstartEditorScreen(spec=VmSpec(name="x", os="rocky8")).version == "RHEL8"
    assert KickstartEditorScreen().version == "RHEL9"


async def test_starter_template_validates_clean_and_hashes_passwords(small_uri):
    app = make_app(small_uri)
    spec = VmSpec(name="f", os="fedora39", disks=[DiskSpec(bus="sata")])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(app, pilot, spec=spec, install_kind="iso", title="VM 'f'")
        await pilot.press("ctrl+t")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, StarterDialog)
        assert dialog.query_one("#ks-disk", Input).value == "sda"  # the VM's first disk is SATA
        dialog.query_one("#ks-timezone", Input).value = "Europe/Berlin"
        dialog.query_one("#ks-rootpw", Input).value = "s3cret-root"
        dialog.query_one("#ks-user", Input).value = "admin"
        dialog.query_one("#ks-userpw", Input).value = "s3cret-user"
        dialog.query_one("#ks-post", Input).value = "echo one; echo two"
        await pilot.press("f10")
        await pilot.pause()
        assert app.screen is screen
        await checked(screen)
        text = screen.text
        assert "s3cret" not in text
        rootpw = next(line for line in text.splitlines() if line.startswith("rootpw"))
        assert rootpw.startswith("rootpw --iscrypted ") and is_password_hash(rootpw.split()[-1].strip("'"))
        assert "user --name=admin --groups=wheel --iscrypted --password=" in text
        assert "timezone Europe/Berlin --utc" in text and "ignoredisk --only-use=sda" in text
        assert "%post --log=/root/ks-post.log\necho one\necho two\n%end" in text
        assert screen.problems == [] and "No problems" in problem_lines(screen)[0]
        assert "valid for Fedora 39" in str(screen.query_one("#ks-status").content)
        # F10 hands it to the wizard with the delivery for an ISO install
        await pilot.press("f10")
        await pilot.pause()
        assert app.screen is not screen


async def test_use_refuses_a_kickstart_with_errors(small_uri):
    app = make_app(small_uri)
    results = []
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        screen = KickstartEditorScreen(text=BAD, version="RHEL9", install_kind="url")
        app.push_screen(screen, results.append)
        await pilot.pause()
        await pilot.press("f10")
        await pilot.pause()
        assert app.screen is screen and results == []
        assert screen.query_one("#ks-text", TextArea).cursor_location == (2, 0)
        screen.query_one("#ks-text", TextArea).load_text("text\nrootpw --lock\n")
        await pilot.press("f10")
        await pilot.pause()
        assert results == [{"text": "text\nrootpw --lock\n", "version": "RHEL9", "delivery": "initrd"}]


async def test_open_and_save_files(small_uri, tmp_path):
    src = tmp_path / "in.ks"
    src.write_text(BAD)
    out = tmp_path / "out.ks"
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(app, pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one(Input).value = str(src)
        await pilot.press("enter")
        await pilot.pause()
        await checked(screen)
        assert screen.text == BAD and screen.path == str(src)
        assert "Unknown command: bogus" in problem_lines(screen)[0]
        ta = screen.query_one("#ks-text", TextArea)
        ta.load_text("text\nrootpw --lock\n")
        await pilot.pause()
        assert "*" in str(screen.query_one("#ks-title").content)  # unsaved
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one(Input).value = str(out)
        await pilot.press("enter")
        await pilot.pause()
        assert out.read_text() == "text\nrootpw --lock\n"
        assert "*" not in str(screen.query_one("#ks-title").content)
        # a file that cannot be read: a readable notification, the text stays
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one(Input).value = str(tmp_path / "missing.ks")
        await pilot.press("enter")
        await pilot.pause()
        assert screen.text == "text\nrootpw --lock\n"
        assert any("Cannot read" in str(n.message) for n in app._notifications)


async def test_leaving_with_unsaved_changes_asks(small_uri):
    from vmtui.ui.dialogs import ConfirmDialog
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(app, pilot)
        screen.query_one("#ks-text", TextArea).load_text("text\n")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await pilot.pause()
        assert not isinstance(app.screen, (ConfirmDialog, KickstartEditorScreen))
        # for a VM: unchanged, Esc just goes back; changed, it asks, and "no" keeps editing
        results = []
        screen = KickstartEditorScreen(text="text\n", install_kind="iso")
        app.push_screen(screen, results.append)
        await pilot.pause()
        screen.query_one("#ks-text", TextArea).load_text("text\nrootpw --lock\n")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and results == []
        screen.query_one("#ks-text", TextArea).load_text("text\n")
        await pilot.press("escape")
        await pilot.pause()
        assert results == [None]


# --- the wizard's kickstart step -----------------------------------------------------


async def test_wizard_kickstart_step_for_an_anaconda_os(small_uri, monkeypatch):
    """ISO install of Fedora: the optional step appears, the editor's starter goes
    into the spec, the summary and the F2 preview show it, and the created VM's
    install run has the OEMDRV CD-ROM."""
    import asyncio
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from vmtui.core.create import installer
    from vmtui.core import storage
    from vmtui.ui.wizard import FinishStep, KickstartStep, PreviewScreen

    from .test_kickstart_delivery import read_oemdrv
    from .test_wizard import choose_os, next_step, open_wizard, set_input

    uploaded = {}

    def fake_upload(conn, pool, name, path, progress):  # the test driver cannot upload volumes
        uploaded[name] = Path(path).read_bytes()
        return storage.create_volume(conn, pool, name, len(uploaded[name]), "raw", "thin")

    monkeypatch.setattr(installer, "_upload", fake_upload)
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        await next_step(wiz, pilot)
        fedora = next(o.short_id for o in wiz.ctx.osdb.search("fedora") if o.is_anaconda and o.short_id[6:].isdigit())
        await choose_os(wiz, pilot, "fedora", fedora)
        await next_step(wiz, pilot)
        await set_input(wiz, pilot, "#memory", "2G")
        await set_input(wiz, pilot, "#vcpus", "1")
        await next_step(wiz, pilot)
        if wiz.index == 2:  # below the OS's recommendation: Next again accepts the warning
            await next_step(wiz, pilot)
        await set_input(wiz, pilot, "#vol-size", "10G")
        await next_step(wiz, pilot)
        step = wiz.steps[wiz.index]
        assert isinstance(step, KickstartStep)
        assert "step 5 of 6" in str(wiz.query_one("#wizard-title").content)
        assert "No kickstart" in str(step.query_one("#wizard-ks-status").content)
        step.query_one("#ks-edit").press()
        await wait_for(lambda: isinstance(app.screen, KickstartEditorScreen), what="editor")
        editor = app.screen
        assert editor.version == f"F{fedora[6:]}" or editor.version.startswith("F")
        await pilot.press("ctrl+t")
        await pilot.pause()
        app.screen.query_one("#ks-rootpw", Input).value = "hunter2"
        await pilot.press("f10")
        await pilot.pause()
        await checked(editor)
        await pilot.press("f10")
        await wait_for(lambda: app.screen is wiz, what="back in the wizard")
        ks = wiz.spec.install.kickstart
        assert ks["delivery"] == "oemdrv" and ks["version"] == editor.version and "hunter2" not in ks["text"]
        status = str(step.query_one("#wizard-ks-status").content)
        assert "valid" in status and "OEMDRV" in status
        await next_step(wiz, pilot)
        assert isinstance(wiz.steps[wiz.index], FinishStep)
        await set_input(wiz, pilot, "#name", "ksvm")
        assert "Kickstart: syntax F" in str(wiz.query_one("#summary").content)
        await pilot.press("f2")
        await wait_for(lambda: isinstance(app.screen, PreviewScreen), what="preview")
        prev = app.screen
        await wait_for(lambda: prev.texts is not None, timeout=15, what="preview built")
        assert "ks-oemdrv.iso,device=cdrom" in prev.query_one("#virt-install").text
        await pilot.press("escape")
        await pilot.pause()
        await next_step(wiz, pilot)  # Finish
        await wait_for(lambda: any(d.name == "ksvm" for d in app.table.domains.values()), timeout=30,
                       what=f"created {[n.message for n in app._notifications]}")
        (name, data), = uploaded.items()
        assert read_oemdrv(data) == ("OEMDRV", ks["text"].encode())
        dom = await asyncio.to_thread(app.service.conn.lookupByName, "ksvm")
        live = ET.fromstring(await asyncio.to_thread(dom.XMLDesc, 0))
        assert [d.find("source").get("file").rsplit("/", 1)[1] for d in live.iter("disk")
                if d.get("device") == "cdrom"] == ["install.iso", name]


async def test_wizard_skips_the_kickstart_step_and_drops_it_for_other_sources(small_uri):
    from vmtui.ui.wizard import KickstartStep

    from .test_wizard import choose_os, choose_source, next_step, open_wizard, set_input

    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        await next_step(wiz, pilot)
        rocky = next(o.short_id for o in wiz.ctx.osdb.search("rocky") if o.is_anaconda)
        await choose_os(wiz, pilot, "rocky", rocky)
        step = next(s for s in wiz.steps if isinstance(s, KickstartStep))
        assert step.applies()
        wiz.spec.install.kickstart = {"text": "text\n", "version": "RHEL9", "delivery": "oemdrv"}
        # back to the source step: a cloud image takes no kickstart
        await pilot.press("ctrl+r")
        await pilot.pause()
        await choose_source(wiz, pilot, "import")
        await set_input(wiz, pilot, "#image", "default/charlie.qcow2")
        await next_step(wiz, pilot)
        assert wiz.spec.install.kickstart is None and not step.applies()
        assert any("kickstart was dropped" in str(n.message) for n in app._notifications)


async def test_editor_warns_about_disks_the_vm_does_not_have(small_uri):
    app = make_app(small_uri)
    spec = VmSpec(name="f", os="fedora39", disks=[DiskSpec(bus="sata")])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(app, pilot, spec=spec, install_kind="iso",
                                   text="text\nrootpw --lock\nignoredisk --only-use=vda\n")
        assert problem_lines(screen) == ["line   3  warning  the VM has no disk 'vda' (its disks: sda)"]


async def test_browsing_the_os_list_keeps_the_kickstart_until_the_step_is_left(small_uri):
    from vmtui.ui.wizard import KickstartStep

    from .test_wizard import choose_os, next_step, open_wizard, set_input

    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        await next_step(wiz, pilot)
        rocky = next(o.short_id for o in wiz.ctx.osdb.search("rocky") if o.is_anaconda)
        await choose_os(wiz, pilot, "rocky", rocky)
        wiz.spec.install.kickstart = {"text": "text\n", "version": "RHEL9", "delivery": "oemdrv"}
        debian = next(o.short_id for o in wiz.ctx.osdb.search("debian") if not o.is_anaconda)
        await choose_os(wiz, pilot, "debian", debian)  # passing over it in the list
        assert wiz.spec.install.kickstart is not None
        await choose_os(wiz, pilot, "rocky", rocky)
        await next_step(wiz, pilot)
        assert wiz.spec.install.kickstart is not None
        await pilot.press("ctrl+r")
        await pilot.pause()
        await choose_os(wiz, pilot, "debian", debian)
        await next_step(wiz, pilot)  # leaving the step with Debian: the kickstart goes
        assert wiz.spec.install.kickstart is None
        assert not next(s for s in wiz.steps if isinstance(s, KickstartStep)).applies()
