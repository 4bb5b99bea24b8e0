"""The OVF import screen and the OVA export dialog on libvirt's test driver (Pilot)."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from textual.widgets import Button, Input, Select, Static

from tests.notes import notes_of, run_noted
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.ovf_screens import ExportOvaScreen, ImportOvfScreen

from .conftest import ALPHA, BRAVO, wait_for
from .prereq import needs

SAMPLE = Path(__file__).resolve().parent / "data" / "ovf" / "appliance.ova"
pytestmark = needs(shutil.which("qemu-img") is not None, "qemu-img not installed")


def _app(uri: str) -> VmtuiApp:
    return VmtuiApp(LibvirtService(uri, stats_interval=3600, reconnect=False), Config())


async def _open_import(pilot) -> ImportOvfScreen:
    app = pilot.app
    await wait_for(lambda: app.ready, what="list")
    await pilot.press("I")
    await wait_for(lambda: isinstance(app.screen, ImportOvfScreen), what="import screen")
    scr = app.screen
    await wait_for(lambda: scr.pools, what="pools")
    return scr


def _text(widget: Static) -> str:
    return str(widget.render())


async def test_path_is_checked_on_the_field(small_uri, tmp_path):
    app = _app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        scr = await _open_import(pilot)
        path = scr.query_one("#ovf-path", Input)
        err = scr.query_one("#ovf-path-error", Static)
        path.value = str(tmp_path / "nope.ova")
        await pilot.pause()
        assert err.display and "No such file" in _text(err)
        (tmp_path / "notes.txt").write_text("x")
        path.value = str(tmp_path / "notes.txt")
        await pilot.pause()
        assert "must end in .ova or .ovf" in _text(err)
        path.value = str(tmp_path)
        await pilot.press("enter")
        await pilot.pause()
        assert "must end in .ova or .ovf" in _text(err) or "directory" in _text(err)
        assert scr.package is None
        assert scr.query_one("#ovf-import", Button).disabled


async def test_reads_and_shows_the_package(small_uri):
    app = _app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        scr = await _open_import(pilot)
        scr.query_one("#ovf-path", Input).value = str(SAMPLE)
        await pilot.press("enter")
        await wait_for(lambda: scr.package is not None, timeout=15, what="package")
        await pilot.pause()
        summary = _text(scr.query_one("#ovf-summary", Static))
        for part in ("web server 1", "CPUs:     4", "3.0 GiB", "16.0 MiB", "8.0 MiB", "'VM Network'",
                     "uefi", "checked (SHA256)", "debian11_64Guest"):
            assert part in summary, part
        assert scr.query_one("#ovf-name", Input).value == "web-server-1"
        assert scr.query_one("#ovf-pool", Select).value == "default"
        assert not scr.query_one("#ovf-import", Button).disabled
        # a name that exists is refused on the name field
        scr.query_one("#ovf-name", Input).value = "alpha"
        await pilot.press("ctrl+s")
        await pilot.pause()
        err = scr.query_one("#ovf-name-error", Static)
        assert err.display and "already exists" in _text(err)
        work = scr.package.work_dir
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, ImportOvfScreen), what="closed")
        assert not Path(work).exists()  # the extracted files are gone


async def test_bad_digest_is_shown_on_the_path_field(small_uri, tmp_path):
    bad = tmp_path / "bad.ova"
    with tarfile.open(SAMPLE) as src, tarfile.open(bad, "w", format=tarfile.USTAR_FORMAT) as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "web-disk2.vmdk":
                data = data[:-1] + bytes([data[-1] ^ 1])
            import io
            dst.addfile(m, io.BytesIO(data))
    app = _app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        scr = await _open_import(pilot)
        scr.query_one("#ovf-path", Input).value = str(bad)
        await pilot.press("enter")
        err = scr.query_one("#ovf-path-error", Static)
        await wait_for(lambda: err.display and "digest" in _text(err), timeout=15, what="digest error")
        assert "web-disk2.vmdk" in _text(err)
        assert scr.package is None and scr.query_one("#ovf-import", Button).disabled


async def test_failed_import_leaves_nothing(small_uri):
    """The test driver cannot upload volumes: the conversion works, the upload
    fails, the error is readable and no volume is left in the pool."""
    app = _app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        scr = await _open_import(pilot)
        before = await app.service.call(lambda c: sorted(c.storagePoolLookupByName("default").listVolumes()))
        scr.query_one("#ovf-path", Input).value = str(SAMPLE)
        await pilot.press("enter")
        await wait_for(lambda: scr.package is not None, timeout=15, what="package")
        await pilot.press("ctrl+s")
        await wait_for(lambda: any("Cannot upload" in str(n.message) for n in notes_of(app).all), timeout=30,
                       what="error")
        await wait_for(lambda: not scr.busy, what="idle")
        msg = next(str(n.message) for n in notes_of(app).all if "Cannot upload" in str(n.message))
        assert "web-server-1.qcow2" in msg and "not supported" in msg
        after = await app.service.call(lambda c: sorted(c.storagePoolLookupByName("default").listVolumes()))
        assert after == before
        assert isinstance(app.screen, ImportOvfScreen)
        assert not scr.query_one("#ovf-import", Button).disabled  # can try again


async def test_export_dialog(small_uri, tmp_path):
    app = _app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready, what="list")
        app.table.select(ALPHA)  # running: not possible
        await pilot.pause()
        await pilot.press("E")
        await pilot.pause()
        assert not isinstance(app.screen, ExportOvaScreen)
        app.table.select(BRAVO)  # shut off
        await pilot.pause()
        await pilot.press("E")
        await wait_for(lambda: isinstance(app.screen, ExportOvaScreen), what="export dialog")
        dlg = app.screen
        path = dlg.query_one("#ova-path", Input)
        err = dlg.query_one("#ova-path-error", Static)
        assert path.value.endswith("bravo.ova")
        path.value = str(tmp_path / "x.tar")
        await pilot.pause()
        assert "must end in .ova" in _text(err)
        path.value = str(tmp_path / "missing" / "x.ova")
        await pilot.pause()
        assert "does not exist" in _text(err)
        (tmp_path / "there.ova").write_bytes(b"x")
        path.value = str(tmp_path / "there.ova")
        await pilot.pause()
        assert "The file exists" in _text(err)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, ExportOvaScreen), what="closed")
