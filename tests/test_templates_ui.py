"""Templates and clones through the service and Textual's Pilot (test driver)."""

from __future__ import annotations

import stat
import xml.etree.ElementTree as ET

import libvirt
import pytest
from textual.widgets import Checkbox, Input, Log, RadioButton

from tests.notes import notes_of, run_noted
from vmtui.core.clones import clone, templates
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import SelectionBar, StatusBar, VmtuiApp
from vmtui.ui.dialogs import ConfirmDialog
from vmtui.ui.templates_ui import CloneScreen, PrepareTemplateScreen

from .conftest import ALPHA, BRAVO, ECHO, wait_for


def make_app(uri: str) -> VmtuiApp:
    return VmtuiApp(LibvirtService(uri, stats_interval=3600, reconnect=False), Config())


async def ready(app, pilot) -> None:
    await wait_for(lambda: app.ready and app.table.row_count > 0, what="list loaded")
    await app.service.wait_loaded()
    await pilot.pause()


def cell(app, uuid, col) -> str:
    return str(app.table.get_cell(uuid, col))


def field_error(screen, name: str) -> str:
    w = screen.query_one(f"#err-{name}")
    return str(w.content) if w.display else ""


# --- service -----------------------------------------------------------------------


async def test_marker_reaches_the_domain_model(service):
    assert service.domains[ECHO].template is False
    await service.call(lambda c: templates.set_marked(c.lookupByUUIDString(ECHO), True))
    info = await service.refresh_domain(ECHO)
    assert info.template is True
    # titles pass on a fresh load reads it too
    await service.refresh_all()
    await service.wait_loaded()
    assert service.domains[ECHO].template is True
    # a running VM cannot become a template
    with pytest.raises(Exception) as exc:
        await service.call(lambda c: templates.set_marked(c.lookupByUUIDString(ALPHA), True))
    assert "shut it off" in str(exc.value)


# --- list: mark, filter, start asks ----------------------------------------------------


async def test_mark_filter_and_confirm_start(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(ECHO)
        await pilot.press("m")
        await wait_for(lambda: app.table.domains[ECHO].template, what="echo marked")
        await pilot.pause()
        assert cell(app, ECHO, "state") == "template"
        assert "template" in str(app.query_one(SelectionBar).content)
        assert "(1 template)" in str(app.query_one(StatusBar).content)
        # the metadata libvirt holds
        xml = await app.service.domain_xml(ECHO, inactive=True)
        assert templates.is_template_xml(xml)
        # the state filter has a templates stop
        for _ in range(4):
            await pilot.press("t")
        await pilot.pause()
        assert app.table.state_filter_label == "templates"
        assert app.table.visible_uuids() == [ECHO]
        # starting a template asks first; "no" leaves it shut off
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert app.table.domains[ECHO].state == "shut off"
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(lambda: app.table.domains[ECHO].is_running, what="template started")
        # a running VM cannot be marked; unmark works any time
        await pilot.press("m")
        await wait_for(lambda: not app.table.domains[ECHO].template, what="echo unmarked")
        assert not templates.is_template_xml(await app.service.domain_xml(ECHO, inactive=True))


async def test_mark_refused_for_running_vm(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(ALPHA)
        await pilot.press("m")
        await pilot.pause()
        assert not app.table.domains[ALPHA].template
        assert app.check_action("template_mark", ()) is None  # greyed out
        app.action_template_mark()  # the palette / a direct call explains
        await pilot.pause()
        assert any("running" in str(n.message) for n in notes_of(app).all)


# --- clone dialog --------------------------------------------------------------------


async def _open_clone(app, pilot, uuid, key="l") -> CloneScreen:
    app.table.select(uuid)
    await pilot.press(key)
    await wait_for(lambda: isinstance(app.screen, CloneScreen), what="clone screen")
    screen = app.screen
    await wait_for(lambda: screen.query_one("#clone-name", Input).value and screen.plan is not None,
                   what="suggested name and plan")
    return screen


async def test_clone_dialog_validates_and_clones(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        screen = await _open_clone(app, pilot, ECHO)
        name = screen.query_one("#clone-name", Input)
        assert name.value == "echo-clone"
        plan_text = str(screen.query_one("#clone-disks").content)
        assert "echo-clone.qcow2" in plan_text and "shared, not copied" in plan_text
        # a name that is taken: error on the name field
        name.value = "bravo"
        await wait_for(lambda: "already exists" in field_error(screen, "name"), what="name error")
        name.value = "a/b"
        await wait_for(lambda: "'/'" in field_error(screen, "name"), what="slash error")
        name.value = ""
        await wait_for(lambda: "Enter a name" in field_error(screen, "name"), what="empty error")
        await pilot.press("ctrl+s")  # refused while a field is wrong
        await pilot.pause()
        assert isinstance(app.screen, CloneScreen)
        name.value = "echo-copy"
        await wait_for(lambda: screen.plan is not None and screen.plan.new_name == "echo-copy", what="plan")
        assert field_error(screen, "name") == ""
        await pilot.press("ctrl+s")
        await wait_for(lambda: not isinstance(app.screen, CloneScreen), what="clone done")
        await wait_for(lambda: any(d.name == "echo-copy" for d in app.table.domains.values()), what="row")
        new = next(d for d in app.table.domains.values() if d.name == "echo-copy")
        assert new.uuid != ECHO and not new.template
        root = ET.fromstring(await app.service.domain_xml(new.uuid, inactive=True))
        assert root.find("devices/disk/source").get("file").endswith("/echo-copy.qcow2")
        assert root.find("devices/interface/mac").get("address") != "52:54:00:00:00:05"
        await wait_for(lambda: app.table.selected_uuid == new.uuid, what="new VM selected")


async def test_clone_refused_for_running_vm_and_linked_mode(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(ALPHA)
        await pilot.press("l")
        await pilot.pause()
        assert not isinstance(app.screen, CloneScreen)
        screen = await _open_clone(app, pilot, BRAVO)
        # bravo: a raw disk plus a shareable one
        assert [d.action for d in screen.plan.disks] == ["copy", "share"]
        screen.query_one("#mode-linked", RadioButton).value = True
        await wait_for(lambda: screen.plan is not None and screen.plan.mode == "linked", what="linked plan")
        assert "overlay" in str(screen.query_one("#clone-disks").content)
        assert "must not change" in str(screen.query_one("#clone-warnings").content)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CloneScreen)


async def test_from_template_without_cloud_init_step(small_uri, monkeypatch):
    """'u' on a template: clone (linked by default), then the cloud-init step
    -- skipped with a note when that part of vmtui is missing -- then start."""
    import builtins
    real_import = builtins.__import__

    def no_seed(name, *args, **kw):
        if name.endswith("provision.seed") or name.endswith("cloudinit_editor") or \
                (args and args[2] and "cloudinit_editor" in args[2]):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_seed)
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        app.table.select(ECHO)
        await pilot.press("u")  # not a template yet
        await pilot.pause()
        assert not isinstance(app.screen, CloneScreen)
        await pilot.press("m")
        await wait_for(lambda: app.table.domains[ECHO].template, what="marked")
        screen = await _open_clone(app, pilot, ECHO, key="u")
        assert screen.query_one("#mode-linked", RadioButton).value
        assert screen.query_one("#clone-start", Checkbox).value
        await pilot.press("ctrl+s")
        await wait_for(lambda: any(d.name == "echo-clone" and d.is_running for d in app.table.domains.values()),
                       what="new VM running")
        assert any("not available" in str(n.message) for n in notes_of(app).all)
        new = next(d for d in app.table.domains.values() if d.name == "echo-clone")
        await wait_for(lambda: app.table.selected_uuid == new.uuid, what="new VM selected")
        assert not new.template


# --- prepare as template ----------------------------------------------------------------


async def test_prepare_firstboot_stores_config(small_uri):
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 40)) as pilot:
        await ready(app, pilot)
        app.table.select(ECHO)
        app.push_screen(PrepareTemplateScreen(app.service, app.table.domains[ECHO], sysprep=False))
        await pilot.pause()
        screen = app.screen
        assert "first-boot cloud-init" in str(screen.query_one("#prepare-method").content)
        screen.query_one("#item-hostname", Checkbox).value = False
        await pilot.press("ctrl+s")
        await wait_for(lambda: screen.result is not None, what="prepared")
        assert "No disk was changed" in str(screen.query_one("#prepare-result").content)
        meta = templates.meta_from_xml(await app.service.domain_xml(ECHO, inactive=True))
        assert meta.marked and meta.method == "firstboot"
        assert meta.items == ["ssh-hostkeys", "machine-id", "net-rules", "cloud-init"]
        assert "systemd-machine-id-setup" in meta.firstboot
        await wait_for(lambda: app.table.domains[ECHO].template, what="listed as template")


async def test_prepare_with_virt_sysprep_shows_output(small_uri, tmp_path):
    fake = tmp_path / "virt-sysprep"
    fake.write_text("#!/bin/sh\necho \"[   0.0] Examining the guest ...\"\necho \"args: $*\"\n"
                    "echo \"[   1.2] Performing ssh-hostkeys\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 40)) as pilot:
        await ready(app, pilot)
        app.push_screen(PrepareTemplateScreen(app.service, app.table.domains[ECHO], sysprep=str(fake)))
        await pilot.pause()
        screen = app.screen
        assert "virt-sysprep" in str(screen.query_one("#prepare-method").content)
        await pilot.press("ctrl+s")
        await wait_for(lambda: screen.result is not None, what="prepared")
        text = "\n".join(screen.query_one("#prepare-log", Log).lines)
        assert "Examining the guest" in text and "-a /var/lib/libvirt/images/echo.qcow2" in text
        assert "/var/lib/libvirt/images/install.iso" not in text  # CD-ROM left alone
        assert "Done with virt-sysprep" in str(screen.query_one("#prepare-result").content)
        meta = templates.meta_from_xml(await app.service.domain_xml(ECHO, inactive=True))
        assert meta.method == "virt-sysprep" and meta.firstboot is None and meta.marked


async def test_prepare_sysprep_failure_records_nothing(small_uri, tmp_path):
    fake = tmp_path / "virt-sysprep"
    fake.write_text("#!/bin/sh\necho 'virt-sysprep: error: no operating system found' >&2\nexit 1\n")
    fake.chmod(0o755)
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 40)) as pilot:
        await ready(app, pilot)
        app.push_screen(PrepareTemplateScreen(app.service, app.table.domains[ECHO], sysprep=str(fake)))
        await pilot.pause()
        screen = app.screen
        await pilot.press("ctrl+s")
        await wait_for(lambda: "exit status 1" in str(screen.query_one("#prepare-result").content),
                       what="failure shown")
        assert "no operating system" in "\n".join(screen.query_one("#prepare-log", Log).lines)
        meta = templates.meta_from_xml(await app.service.domain_xml(ECHO, inactive=True))
        assert meta == templates.TemplateMeta()


async def test_from_template_passes_first_boot_config_to_cloud_init(small_uri, monkeypatch):
    """With the cloud-init editor and attach_seed present (stand-ins here, the
    real ones come from the cloud-init part), 'u' opens the editor with the
    template's first-boot config in the user-data, keeps it in whatever the
    user wrote, and attaches the seed to the new VM in its pool."""
    import sys
    import types
    from dataclasses import dataclass

    from textual.screen import Screen

    @dataclass
    class CloudInitDocs:
        user_data: str
        meta_data: str
        network_config: str | None = None

    calls: dict = {}

    def attach_seed(conn, domain_name, pool, docs, *, detach_after_first_boot=False, progress=None, uuid=None):
        calls.update(domain=domain_name, pool=pool, docs=docs, detach=detach_after_first_boot)
        assert conn.lookupByUUIDString(uuid).name() == domain_name  # the new VM, by its UUID
        return f"/var/lib/libvirt/images/{domain_name}-cidata.iso"

    class CloudInitEditorScreen(Screen):
        def __init__(self, service, *, hostname, initial=None):
            super().__init__()
            calls.update(hostname=hostname, initial=initial)

        def on_mount(self):
            # the user replaces the user-data with their own
            self.dismiss(CloudInitDocs("#cloud-config\npackages: [nginx]\n", self_meta(calls)))

    def self_meta(c):
        return c["initial"].meta_data

    seed = types.ModuleType("vmtui.core.provision.seed")
    seed.CloudInitDocs, seed.attach_seed = CloudInitDocs, attach_seed
    editor = types.ModuleType("vmtui.ui.cloudinit_editor")
    editor.CloudInitEditorScreen = CloudInitEditorScreen
    monkeypatch.setitem(sys.modules, "vmtui.core.provision.seed", seed)
    monkeypatch.setitem(sys.modules, "vmtui.ui.cloudinit_editor", editor)

    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        config = templates.firstboot_config(["machine-id", "ssh-hostkeys"])

        def prepare(c):
            dom = c.lookupByUUIDString(ECHO)
            templates.record_prepared(dom, "firstboot", ["machine-id", "ssh-hostkeys"], config)
            templates.set_marked(dom, True)

        await app.service.call(prepare)
        await app.service.refresh_domain(ECHO)
        await wait_for(lambda: app.table.domains[ECHO].template, what="marked")
        screen = await _open_clone(app, pilot, ECHO, key="u")
        screen.query_one("#clone-name", Input).value = "web-7"
        await wait_for(lambda: screen.plan is not None and screen.plan.new_name == "web-7", what="plan")
        await pilot.press("ctrl+s")
        await wait_for(lambda: any(d.name == "web-7" and d.is_running for d in app.table.domains.values()),
                       what="new VM running")
        assert calls["hostname"] == "web-7" and calls["domain"] == "web-7" and calls["pool"] == "default"
        assert "systemd-machine-id-setup" in calls["initial"].user_data  # shown in the editor
        new = next(d for d in app.table.domains.values() if d.name == "web-7")
        assert f"instance-id: {new.uuid}" in calls["initial"].meta_data
        import yaml
        final = yaml.safe_load(calls["docs"].user_data)
        assert final["packages"] == ["nginx"]  # the user's
        assert "systemd-machine-id-setup" in final["bootcmd"][0][2]  # the template's
        assert final["ssh_deletekeys"] is True
        assert calls["detach"] is True
        await wait_for(lambda: any("cloud-init seed" in str(n.message) for n in notes_of(app).all),
                       what="done note")


async def test_clone_failure_midway_cleans_up_and_says_so(small_uri, monkeypatch):
    """The disk copy succeeds, defining the domain fails: the copy is removed,
    no domain is left, the error is on the screen (not a traceback)."""
    def broken(*args, **kw):
        raise libvirt.libvirtError("XML error: pretend libvirt refused the domain")

    monkeypatch.setattr(clone, "clone_xml", broken)
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await ready(app, pilot)
        screen = await _open_clone(app, pilot, ECHO)
        await pilot.press("ctrl+s")
        await wait_for(lambda: "pretend libvirt refused" in field_error(screen, "disks"), what="error shown")
        assert isinstance(app.screen, CloneScreen) and not screen.busy
        assert "partial copies were removed" in str(screen.query_one("#clone-progress-text").content)

        def leftovers(c):
            vols = [v.name() for v in c.storagePoolLookupByName("default").listAllVolumes(0)]
            return vols, clone.name_taken(c, "echo-clone")

        vols, defined = await app.service.call(leftovers)
        assert "echo-clone.qcow2" not in vols and "echo.qcow2" in vols
        assert not defined


async def test_plan_names_and_field_errors(service):
    """plan_clone on the test driver: free names, unique volume names, the field at fault."""
    def work(c):
        out = {"suggest": clone.suggest_name(c, "echo")}
        pool = c.storagePoolLookupByName("default")
        pool.createXML("<volume><name>echo-2.qcow2</name><capacity>1048576</capacity>"
                       "<target><format type='qcow2'/></target></volume>", 0)
        out["plan"] = clone.plan_clone(c, ECHO, "echo-2", "full", "default")
        errors = {}
        for args in ((ECHO, "alpha", "full", None), (ECHO, "x", "full", "nope"), (ECHO, "x", "sideways", None),
                     (ALPHA, "x", "full", None)):
            try:
                clone.plan_clone(c, *args)
            except clone.CloneError as err:
                errors[args[1:]] = (err.field, err.cause)
        out["errors"] = errors
        return out

    out = await service.call(work)
    assert out["suggest"] == "echo-clone"
    plan = out["plan"]
    assert plan.disks[0].new_name == "echo-2-1.qcow2"  # echo-2.qcow2 is taken
    assert plan.bytes_to_copy == 512 * 1024 ** 2
    errs = out["errors"]
    assert errs[("alpha", "full", None)] == ("name", "a VM named 'alpha' already exists")
    assert errs[("x", "full", "nope")][0] == "pool"
    assert errs[("x", "sideways", None)][0] == "mode"
    assert errs[("x", "full", None)][0] == "" and "shut it off" in errs[("x", "full", None)][1]
