"""The wizard's cloud-image source with its cloud-init seed (test driver;
the seed upload is faked: the test driver has no volume upload)."""

from __future__ import annotations

import yaml
from textual.widgets import Checkbox

from vmtui.core.create import installer
from vmtui.ui.cloudinit_editor import CloudInitEditorScreen
from vmtui.ui.wizard import NewVmWizard

from .conftest import wait_for
from .test_wizard import choose_source, make_app, next_step, open_wizard, set_input, walk_to_finish


def fake_attach(monkeypatch):
    calls = []

    def attach(conn, name, pool, docs, detach):
        calls.append((name, pool, docs, detach))
        return f"/var/lib/libvirt/images/{name}-cidata.iso"

    monkeypatch.setattr(installer, "_attach_seed", attach)
    return calls


async def test_cloud_image_with_edited_seed(small_uri, monkeypatch, tmp_path):
    monkeypatch.setattr("vmtui.core.provision.library.default_dir", lambda: tmp_path / "lib")
    calls = fake_attach(monkeypatch)
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await choose_source(wiz, pilot, "cloud")
        await set_input(wiz, pilot, "#cloud-image", "default/charlie.qcow2")
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
        assert wiz.index == 1
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
        await set_input(wiz, pilot, "#cloud-image", "default/charlie.qcow2")
        await next_step(wiz, pilot)
        assert wiz.spec.install.cloud_init is None
        await walk_to_finish(wiz, pilot, name="cloud-def")
        await next_step(wiz, pilot)
        await wait_for(lambda: not isinstance(app.screen, NewVmWizard), timeout=30,
                       what=f"wizard closed {[n.message for n in app._notifications]}")
        assert wiz.spec.install.cloud_init["detach_after_first_boot"] is False
    ((name, _pool, docs, detach),) = calls
    assert yaml.safe_load(docs.user_data) == {"hostname": "cloud-def"}
    assert yaml.safe_load(docs.meta_data)["local-hostname"] == "cloud-def"


async def test_app_removes_the_seed_when_a_vm_shuts_down(small_uri, monkeypatch):
    """The app reacts to the 'stopped' (guest shut down) event of a VM whose
    seed is to go after the first boot with the core check;
    tests/real/test_real_cloudinit.py checks what the check does (and
    tests/test_false_alarms.py that VMs without such a seed are left alone)."""
    import libvirt

    from vmtui.core.provision import seed

    checked = []

    def cleanup(conn, uuid):
        checked.append(uuid)
        return "/var/lib/libvirt/images/alpha-cidata.iso"

    def seed_due(conn, uuid):
        dom = conn.lookupByUUIDString(uuid)
        rec = seed.SeedRecord(f"/var/lib/libvirt/images/{dom.name()}-cidata.iso", "default",
                              f"{dom.name()}-cidata.iso", True)
        conn.defineXML(seed.set_seed_metadata(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), rec))

    monkeypatch.setattr(seed, "cleanup_after_first_boot", cleanup)
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(lambda: app.ready and app.table.row_count > 0, what="list loaded")
        alpha = next(d for d in app.table.domains.values() if d.name == "alpha")
        delta = next(d for d in app.table.domains.values() if d.name == "delta")
        for uuid in (alpha.uuid, delta.uuid):  # running: their definitions get the record
            await app.service.call(lambda c, u=uuid: seed_due(c, u))
        await app.service.shutdown(alpha.uuid)
        await wait_for(lambda: checked == [alpha.uuid], timeout=10, what="seed check after the stop")
        await wait_for(lambda: any("removed its cloud-init seed" in n.message for n in app._notifications),
                       what="notification")
        # a forced stop (destroy) is not a successful first boot
        await app.service.force_off(delta.uuid)
        await pilot.pause(0.5)
        assert checked == [alpha.uuid]


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
