"""The New-VM wizard through Pilot on the test driver: every step, every source, every check."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest
from textual.widgets import Checkbox, Input, OptionList, RadioButton, Select

from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.core.create.vmspec_yaml import load_spec
from vmtui.ui.app import VmtuiApp
from vmtui.ui.forms import FieldError, field_id
from vmtui.ui.wizard import CustomizeScreen, FinishStep, NewVmWizard, PreviewScreen

from .conftest import wait_for


def make_app(uri: str) -> VmtuiApp:
    return VmtuiApp(LibvirtService(uri, stats_interval=3600, reconnect=False), Config())


async def open_wizard(app, pilot) -> NewVmWizard:
    await wait_for(lambda: app.ready and app.table.row_count > 0, what="list loaded")
    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, NewVmWizard), what="wizard open")
    wiz: NewVmWizard = app.screen
    await wait_for(lambda: wiz.ctx.osdb is not None and wiz.ctx.pools, timeout=15, what="host context")
    await pilot.pause()
    return wiz


def error_of(wiz, name: str) -> str:
    w = wiz.query_one("#" + field_id(name), FieldError)
    return str(w.content) if w.display else ""


async def choose_source(wiz, pilot, kind: str) -> None:
    wiz.query_one(f"#src-{kind}", RadioButton).value = True
    await pilot.pause()


async def set_input(wiz, pilot, wid: str, value: str) -> None:
    wiz.query_one(wid, Input).value = value
    await pilot.pause()


async def next_step(wiz, pilot) -> None:
    await pilot.press("ctrl+n")
    await pilot.pause()


async def choose_os(wiz, pilot, query: str, short_id: str) -> None:
    await set_input(wiz, pilot, "#os-search", query)
    ol = wiz.query_one("#os-list", OptionList)
    idx = next(i for i in range(ol.option_count) if ol.get_option_at_index(i).id == short_id)
    ol.highlighted = idx
    await pilot.pause()
    assert wiz.spec.os == short_id


async def walk_to_finish(wiz, pilot, *, name: str, size: str = "8G", thick: bool = False) -> None:
    """From step 2 (OS) on: defaults, chosen size, the name."""
    await choose_os(wiz, pilot, "generic linux", wiz.ctx.osdb.search("generic linux")[0].short_id)
    await next_step(wiz, pilot)
    assert wiz.index == 2
    await set_input(wiz, pilot, "#memory", "2G")
    await set_input(wiz, pilot, "#vcpus", "1")
    await next_step(wiz, pilot)
    assert wiz.index == 3, [str(e.content) for e in wiz.query(FieldError) if e.display]
    await set_input(wiz, pilot, "#vol-size", size)
    if thick:
        wiz.query_one("#vol-thick", RadioButton).value = True
        await pilot.pause()
    await next_step(wiz, pilot)
    assert isinstance(wiz.steps[wiz.index], FinishStep)
    await set_input(wiz, pilot, "#name", name)


async def test_iso_install_creates_vm_with_thin_disk(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        assert "step 1 of 5" in str(wiz.query_one("#wizard-title").content)
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        await next_step(wiz, pilot)
        assert wiz.index == 1
        await walk_to_finish(wiz, pilot, name="web-03")
        summary = str(wiz.query_one("#summary").content)
        assert "ISO default/install.iso" in summary and "new thin qcow2 8.0 GiB" in summary
        await next_step(wiz, pilot)  # Finish
        await wait_for(lambda: not isinstance(app.screen, NewVmWizard), timeout=30,
                       what=f"wizard closed {[n.message for n in app._notifications]}")
        await wait_for(lambda: any(d.name == "web-03" for d in app.table.domains.values()), what="new row")
        conn = app.service.conn
        dom = await asyncio.to_thread(conn.lookupByName, "web-03")
        root = ET.fromstring(await asyncio.to_thread(dom.XMLDesc, 2))  # inactive = persistent config
        assert root.findtext("memory") is not None
        disk = root.find("devices/disk[@device='disk']")
        vol = await asyncio.to_thread(lambda: conn.storageVolLookupByPath(disk.find("source").get("file")))
        _, cap, alloc = vol.info()
        assert cap == 8 * 1024 ** 3 and alloc < cap
        assert root.find("devices/disk[@device='cdrom']") is not None


async def test_each_step_shows_errors_on_its_fields(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        # step 1: missing ISO, not an ISO, bad URL scheme
        await next_step(wiz, pilot)
        assert wiz.index == 0 and error_of(wiz, "install.iso")
        await choose_source(wiz, pilot, "url")
        await set_input(wiz, pilot, "#url", "file:///etc/passwd")
        await next_step(wiz, pilot)
        assert wiz.index == 0 and "http" in error_of(wiz, "install.url").lower()
        await choose_source(wiz, pilot, "iso")
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        await next_step(wiz, pilot)
        assert wiz.index == 1
        await next_step(wiz, pilot)
        # step 3: memory and CPUs beyond the host (8 CPUs, 16 GiB), nonsense
        assert wiz.index == 2
        await set_input(wiz, pilot, "#memory", "lots")
        await set_input(wiz, pilot, "#vcpus", "64")
        await next_step(wiz, pilot)
        assert wiz.index == 2
        assert error_of(wiz, "memory")
        await set_input(wiz, pilot, "#memory", "64G")
        await next_step(wiz, pilot)
        assert wiz.index == 2 and error_of(wiz, "memory")  # more than the host's 16 GiB
        await set_input(wiz, pilot, "#memory", "2G")
        await next_step(wiz, pilot)
        # more vCPUs than host CPUs: a warning on the field; Next again accepts it
        assert wiz.index == 2 and "Warning" in error_of(wiz, "vcpus")
        await set_input(wiz, pilot, "#vcpus", "2")
        await next_step(wiz, pilot)
        # step 4: sizes zero / nonsense / thick larger than the pool
        assert wiz.index == 3
        for bad in ("0", "-5G", "abc"):
            await set_input(wiz, pilot, "#vol-size", bad)
            await next_step(wiz, pilot)
            assert wiz.index == 3 and error_of(wiz, "disks[0].size"), bad
        await set_input(wiz, pilot, "#vol-size", "500G")
        wiz.query_one("#vol-thick", RadioButton).value = True
        await pilot.pause()
        assert "larger than" in str(wiz.query_one("#vol-warning").content)
        await next_step(wiz, pilot)
        assert wiz.index == 3 and error_of(wiz, "disks[0].size")
        # thin overcommit is allowed, with a warning on screen
        wiz.query_one("#vol-thin", RadioButton).value = True
        await pilot.pause()
        assert "fill" in str(wiz.query_one("#vol-warning").content)
        await set_input(wiz, pilot, "#vol-name", "alpha.qcow2")  # exists in pool 'default'
        await next_step(wiz, pilot)
        assert wiz.index == 3 and error_of(wiz, "disks[0].name")
        await set_input(wiz, pilot, "#vol-name", "")
        await set_input(wiz, pilot, "#vol-size", "10G")
        await next_step(wiz, pilot)
        # step 5: duplicate, empty and illegal names, bad MAC
        assert isinstance(wiz.steps[wiz.index], FinishStep)
        for bad in ("alpha", "", "a/b"):
            await set_input(wiz, pilot, "#name", bad)
            await next_step(wiz, pilot)
            assert isinstance(app.screen, NewVmWizard) and error_of(wiz, "name"), bad
        await set_input(wiz, pilot, "#name", "ok-name")
        await set_input(wiz, pilot, "#mac", "zz:00")
        await next_step(wiz, pilot)
        assert isinstance(app.screen, NewVmWizard) and error_of(wiz, "nics[0].mac")
        # back keeps what was typed
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert wiz.index == 3 and wiz.query_one("#vol-size", Input).value == "10G"


async def test_unicode_and_xml_characters_in_title(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await choose_source(wiz, pilot, "pxe")
        await next_step(wiz, pilot)
        await walk_to_finish(wiz, pilot, name="pxe-vm")
        wiz.query_one("#customize", Checkbox).value = True
        await pilot.pause()
        await next_step(wiz, pilot)
        await wait_for(lambda: isinstance(app.screen, CustomizeScreen), what="customize")
        cust = app.screen
        cust.query_one("#c-title", Input).value = "Tëst <&> \"quoted\""
        cust.query_one("#c-firmware", Select).value = "uefi"
        cust.query_one("#c-machine", Select).value = "q35"
        cust.query_one("#c-cdrom-bus", Select).value = "sata"
        await pilot.pause()
        cust.action_begin()
        await wait_for(lambda: any(d.name == "pxe-vm" for d in app.table.domains.values()), timeout=30,
                       what=f"created {[n.message for n in app._notifications]}")
        await wait_for(lambda: app.screen is app.list_screen, timeout=10, what="back on the list")
        dom = await asyncio.to_thread(app.service.conn.lookupByName, "pxe-vm")
        root = ET.fromstring(await asyncio.to_thread(dom.XMLDesc, 2))
        assert root.findtext("title") == "Tëst <&> \"quoted\""
        assert root.find("os/type").get("machine", "").startswith("pc-q35") or "q35" in root.find("os/type").get("machine", "")
        assert root.find("devices/interface/source").get("network") == "default"


@pytest.mark.parametrize("kind", ["import", "cloud", "cdrom"])
async def test_other_sources(small_uri, kind):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await choose_source(wiz, pilot, kind)
        if kind == "import":
            await set_input(wiz, pilot, "#image", "default/echo.qcow2")
        elif kind == "cloud":
            await set_input(wiz, pilot, "#cloud-image", "default/charlie.qcow2")
        await next_step(wiz, pilot)
        assert wiz.index == 1, [str(e.content) for e in wiz.query(FieldError) if e.display]
        wiz.spec.install.kind == kind
        if kind == "import":
            assert wiz.spec.disks[0].mode == "existing"
        if kind == "cloud":
            assert wiz.spec.disks[0].backing == "default/charlie.qcow2"


async def test_preview_and_save_spec(small_uri, tmp_path):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        await next_step(wiz, pilot)
        await walk_to_finish(wiz, pilot, name="spec-vm")
        await pilot.press("f2")
        await wait_for(lambda: isinstance(app.screen, PreviewScreen), what="preview")
        prev = app.screen
        await wait_for(lambda: prev.texts is not None, timeout=15, what="preview built")
        cmd = prev.query_one("#virt-install").text
        assert cmd.startswith("virt-install") and "--name spec-vm" in cmd
        assert "<name>spec-vm</name>" in prev.query_one("#preview-xml").text
        await pilot.press("escape")
        await pilot.pause()
        path = tmp_path / "spec-vm.yaml"
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one(Input).value = str(path)
        await pilot.press("enter")
        await wait_for(lambda: path.exists(), what="spec written")
        spec = load_spec(path)
        assert spec.name == "spec-vm" and spec.install.iso == "default/install.iso"
        assert spec.disks[0].size == 8 * 1024 ** 3


async def test_cancel_creates_nothing(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, NewVmWizard)
        assert app.table.row_count == 5


async def test_url_install_through_the_wizard(small_uri, tmp_path, monkeypatch):
    """Network install: a tree served on 127.0.0.1, detected from its .treeinfo,
    booted with the tree's kernel and the typed kernel arguments."""
    import functools
    import http.server
    import threading
    from pathlib import Path

    from vmtui.core.create import installer
    from vmtui.core import storage

    root = tmp_path / "tree"
    (root / "images" / "pxeboot").mkdir(parents=True)
    (root / "images" / "pxeboot" / "vmlinuz").write_bytes(b"KERNEL")
    (root / "images" / "pxeboot" / "initrd.img").write_bytes(b"INITRD")
    (root / ".treeinfo").write_text(
        "[general]\nfamily = CentOS Stream\nversion = 9\narch = x86_64\nvariant = BaseOS\n\n"
        "[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    def fake_upload(conn, pool, name, path, progress):  # the test driver cannot upload volumes
        data = Path(path).read_bytes()
        return storage.create_volume(conn, pool, name, len(data), "raw", "thin")

    monkeypatch.setattr(installer, "_upload", fake_upload)
    app = make_app(small_uri)
    try:
        async with app.run_test(size=(100, 40)) as pilot:
            wiz = await open_wizard(app, pilot)
            await choose_source(wiz, pilot, "url")
            await set_input(wiz, pilot, "#url", url)
            await set_input(wiz, pilot, "#kernel-args", "console=ttyS0")
            await next_step(wiz, pilot)
            assert wiz.index == 1
            wiz.query_one("#detect").press()
            await wait_for(lambda: wiz.os_info is not None and "centos" in wiz.spec.os, timeout=15,
                           what="tree detected")
            await next_step(wiz, pilot)
            assert wiz.index == 2
            await set_input(wiz, pilot, "#memory", "2G")
            await set_input(wiz, pilot, "#vcpus", "1")
            await next_step(wiz, pilot)
            if wiz.index == 2:  # a warning (below the OS's minimum) is accepted on the second press
                await next_step(wiz, pilot)
            assert wiz.index == 3
            await set_input(wiz, pilot, "#vol-size", "10G")
            await next_step(wiz, pilot)
            if wiz.steps[wiz.index].title.startswith("Kickstart"):  # CentOS: the optional kickstart step
                await next_step(wiz, pilot)  # skipped
            assert isinstance(wiz.steps[wiz.index], FinishStep)
            await set_input(wiz, pilot, "#name", "netinst")
            await next_step(wiz, pilot)
            await wait_for(lambda: any(d.name == "netinst" for d in app.table.domains.values()), timeout=30,
                           what=f"created {[n.message for n in app._notifications]}")
            dom = await asyncio.to_thread(app.service.conn.lookupByName, "netinst")
            live = ET.fromstring(await asyncio.to_thread(dom.XMLDesc, 0))
            assert live.findtext("os/kernel")
            assert live.findtext("os/cmdline") == f"inst.repo={url} console=ttyS0"
            final = ET.fromstring(await asyncio.to_thread(dom.XMLDesc, 2))
            assert final.find("os/kernel") is None  # boots from disk after the install
    finally:
        server.shutdown()
        server.server_close()
