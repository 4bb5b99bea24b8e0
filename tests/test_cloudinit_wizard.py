"""The wizard's cloud-image source with its cloud-init seed (test driver;
the seed upload is faked: the test driver has no volume upload)."""

from __future__ import annotations

import yaml
from textual.widgets import Checkbox

from vmtui.core import storage
from vmtui.core.create import installer
from vmtui.core.provision import seed
from vmtui.ui.cloudinit_editor import CloudInitEditorScreen
from vmtui.ui.wizard import NewVmWizard

from .conftest import wait_for
from .test_wizard import choose_source, make_app, next_step, open_wizard, set_input, walk_to_finish


def fake_attach(monkeypatch):
    """The seed's upload, faked (a raw volume of that name); each call is
    (VM name, pool, docs, detach after the first boot) as the definition says."""
    calls = []

    def upload(conn, pool, volume, docs):
        calls.append([volume.removesuffix("-cidata.iso"), pool, docs, None])
        return storage.create_volume(conn, pool, volume, 1024 ** 2, "raw", "thin")

    real_define = installer._define

    def define(conn, xml):
        rec = seed.seed_record(xml)
        if rec is not None and calls:
            calls[-1][3] = rec.detach_after_first_boot
        return real_define(conn, xml)

    monkeypatch.setattr(installer, "_upload_seed", upload)
    monkeypatch.setattr(installer, "_define", define)
    return calls


async def test_cloud_image_with_edited_seed(small_uri, monkeypatch, tmp_path):
    monkeypatch.setattr("vmtui.core.provision.library.default_dir", lambda: tmp_path / "lib")
    calls = fake_attach(monkeypatch)
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await choose_source(wiz, pilot, "cloud")
        await set_input(wiz, pilot, "#cloud-image", "default/echo.qcow2")
        wiz.query_one("#cloudinit-edit").press()
        await wait_for(lambda: isinstance(app.screen, CloudInitEditorScreen), what="editor open")
        ed = app.screen
        await pilot.pause()
        ed.ta("user-data").load_text("#cloud-config\npackages: [nginx]\nusers:\n  - name: admin\n")
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, NewVmWizard), what="back in the wizard")
        assert "custom: 1 user, 1 packages" in str(wiz.query_one("#cloudinit-summary").content)
        wiz.query_one("#cloudinit-detach", Checkbox).value = True
        await next_step(wiz, pilot)
        await wait_for(lambda: wiz.index == 1, what="the image probed, on to the OS step")
        ci = wiz.spec.install.cloud_init
        assert yaml.safe_load(ci["user_data"]) == {"packages": ["nginx"], "users": [{"name": "admin"}]}
        assert ci["detach_after_first_boot"] is True
        assert yaml.safe_load(ci["meta_data"])["instance-id"].startswith("iid-vmtui-")
        await walk_to_finish(wiz, pilot, name="cloud-web")
        await next_step(wiz, pilot)  # Finish
        await wait_for(lambda: not isinstance(app.screen, NewVmWizard), timeout=30,
                       what=f"wizard closed {[n.message for n in app._notifications]}")
    ((name, pool, docs, detach),) = calls
    assert (name, pool, detach) == ("cloud-web", "default", True)
    assert yaml.safe_load(docs.user_data)["packages"] == ["nginx"]
    assert yaml.safe_load(docs.meta_data)["local-hostname"] == "cloud-web"


async def test_cloud_image_without_editing_gets_default_seed(small_uri, monkeypatch):
    calls = fake_attach(monkeypatch)
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await choose_source(wiz, pilot, "cloud")
        await set_input(wiz, pilot, "#cloud-image", "default/echo.qcow2")
        await next_step(wiz, pilot)
        await wait_for(lambda: wiz.index == 1, what="the image probed, on to the OS step")
        assert wiz.spec.install.cloud_init is None
        await walk_to_finish(wiz, pilot, name="cloud-def")
        await next_step(wiz, pilot)
        await wait_for(lambda: not isinstance(app.screen, NewVmWizard), timeout=30,
                       what=f"wizard closed {[n.message for n in app._notifications]}")
        assert wiz.spec.install.cloud_init["detach_after_first_boot"] is False
    ((name, _pool, docs, detach),) = calls
    assert yaml.safe_load(docs.user_data) == {"hostname": "cloud-def", "growpart": {"mode": "auto", "devices": ["/"]},
                                              "resize_rootfs": True}
    assert yaml.safe_load(docs.meta_data)["local-hostname"] == "cloud-def"


async def test_i_opens_the_saved_configs(small_uri, monkeypatch, tmp_path):
    from vmtui.core.provision.library import Library
    from vmtui.core.provision.seed import CloudInitDocs
    from vmtui.ui.cloudinit_editor import CloudInitLibraryScreen

    monkeypatch.setattr("vmtui.core.provision.library.default_dir", lambda: tmp_path / "lib")
    Library().save("base", CloudInitDocs("#cloud-config\nhostname: x\n", ""))
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready and app.table.row_count > 0, what="list loaded")
        await pilot.press("i")
        await wait_for(lambda: isinstance(app.screen, CloudInitLibraryScreen), what="library open")
        assert [c.name for c in app.screen.configs] == ["base"]
        await pilot.press("escape")
        await wait_for(lambda: app.screen is app.list_screen, what="back on the list")


async def test_attach_a_saved_config_to_the_selected_vm(small_uri, monkeypatch, tmp_path):
    from textual.widgets import Checkbox

    from vmtui.core.provision import seed
    from vmtui.core.provision.library import Library
    from vmtui.core.provision.seed import CloudInitDocs
    from vmtui.ui.cloudinit_editor import AttachSeedDialog, CloudInitLibraryScreen

    monkeypatch.setattr("vmtui.core.provision.library.default_dir", lambda: tmp_path / "lib")
    Library().save("base", CloudInitDocs("#cloud-config\npackages: [git]\n", ""))
    calls = []

    def attach(conn, name, pool, docs, *, detach_after_first_boot=False, progress=None, uuid=None):
        calls.append((name, pool, docs, detach_after_first_boot))
        assert uuid == bravo.uuid  # the VM selected on the list, by its UUID
        return f"/var/lib/libvirt/images/{name}-cidata.iso"

    monkeypatch.setattr(seed, "attach_seed", attach)
    app = make_app(small_uri)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready and app.table.row_count > 0, what="list loaded")
        bravo = next(d for d in app.table.domains.values() if d.name == "bravo")
        app.table.select(bravo.uuid)
        await pilot.pause()
        await pilot.press("i")
        await wait_for(lambda: isinstance(app.screen, CloudInitLibraryScreen), what="library open")
        await pilot.pause()
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, CloudInitEditorScreen), what="editor open")
        ed = app.screen
        meta = yaml.safe_load(ed.ta("meta-data").text)
        assert meta["local-hostname"] == "bravo" and meta["instance-id"].startswith("iid-vmtui-")
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, AttachSeedDialog), what="pool question")
        app.screen.query_one("#attach-detach", Checkbox).value = True
        app.screen.query_one("#ok").press()
        await wait_for(lambda: bool(calls), what="attach called")
        await wait_for(lambda: any("Attached" in n.message for n in app._notifications), what="notification")
    ((name, pool, docs, detach),) = calls
    assert (name, pool, detach) == ("bravo", "default", True)
    assert yaml.safe_load(docs.user_data) == {"packages": ["git"]}


async def test_cloud_source_seed_bus_guest_agent_and_an_image_that_cannot_be_probed(small_uri, monkeypatch):
    from textual.widgets import Select

    from .test_wizard import error_of

    calls = fake_attach(monkeypatch)
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await choose_source(wiz, pilot, "cloud")
        # a host path nobody can read: refused under the field, never guessed as raw
        await set_input(wiz, pilot, "#cloud-image", "/srv/cloud/nowhere.qcow2")
        await next_step(wiz, pilot)
        await wait_for(lambda: "Cannot tell the image's format" in error_of(wiz, "install.image"),
                       what="the probe's error under the image field")
        assert wiz.index == 0
        await set_input(wiz, pilot, "#cloud-image", "default/echo.qcow2")
        wiz.query_one("#seed-bus", Select).value = "scsi"
        wiz.query_one("#guest-agent", Checkbox).value = False
        await pilot.pause()
        await next_step(wiz, pilot)
        await wait_for(lambda: wiz.index == 1, what="on to the OS step")
        assert error_of(wiz, "install.image") == ""
        assert wiz.spec.install.cloud_init["seed_bus"] == "scsi" and wiz.spec.guest_agent is False
        await walk_to_finish(wiz, pilot, name="cloud-scsi")
        # F2 shows what will be defined: the seed, and --cloud-init on the virt-install line
        from vmtui.ui.wizard import PreviewScreen

        await pilot.press("f2")
        await wait_for(lambda: isinstance(app.screen, PreviewScreen) and app.screen.texts is not None,
                       timeout=15, what="preview built")
        final, _install, cmdline = app.screen.texts
        (dev,) = seed.seed_disk_elements(final, "/var/lib/libvirt/images/cloud-scsi-cidata.iso")
        assert dev.find("target").get("bus") == "scsi"
        assert "--cloud-init user-data=user-data,meta-data=meta-data" in cmdline
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, NewVmWizard), what="back in the wizard")
        await next_step(wiz, pilot)
        await wait_for(lambda: not isinstance(app.screen, NewVmWizard), timeout=30, what="wizard closed")
        xml = await app.service.call(lambda c: c.lookupByName("cloud-scsi").XMLDesc(0))
    assert calls and calls[0][0] == "cloud-scsi"
    (dev,) = seed.seed_disk_elements(xml, None, "cloud-scsi-cidata.iso")
    assert dev.get("device") == "cdrom" and dev.find("target").get("bus") == "scsi"
    assert "org.qemu.guest_agent.0" not in xml


async def test_an_os_id_the_database_lacks_names_the_vm_after_itself(small_uri, monkeypatch):
    """Typing an id this osinfo-db lacks (newer than it, or a typo) offers that
    id with generic values -- never the nearest release under its own name."""
    from pathlib import Path

    from textual.widgets import OptionList

    from vmtui.core.create import osinfo

    from .test_wizard import error_of

    db = osinfo.OsDb.load([Path(__file__).resolve().parent / "data" / "osinfo"])
    monkeypatch.setattr(osinfo, "default_db", lambda: db)
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        await next_step(wiz, pilot)
        assert wiz.index == 1
        await set_input(wiz, pilot, "#os-search", "exampleos 3")
        ol = wiz.query_one("#os-list", OptionList)
        ids = [ol.get_option_at_index(i).id for i in range(ol.option_count)]
        assert ids[:3] == ["unknown:exampleos3", "exampleos2", "exampleos1"]
        assert "closest: exampleos2, exampleos1" in str(ol.get_option_at_index(0).prompt)
        await pilot.pause()
        assert wiz.spec.os == "exampleos3" and wiz.spec.name == "exampleos3"
        assert wiz.os_info.short_id == "linux2022"  # generic Linux values
        await next_step(wiz, pilot)
        assert wiz.index == 1 and "'exampleos3' is not in this host's osinfo-db" in error_of(wiz, "os")
        await next_step(wiz, pilot)  # a warning: Next again goes on
        assert wiz.index == 2
        assert "exampleos3 (not in osinfo-db" in wiz.summary_text()
        # a known release by its name still picks it
        await wiz.run_action("back")
        await pilot.pause()
        await set_input(wiz, pilot, "#os-search", "exampleos")
        assert wiz.spec.os == "exampleos2" and wiz.spec.name == "exampleos2"
