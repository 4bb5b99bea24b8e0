"""The guests in the UI: the Address column (A), how far a watched boot got on
the row, the Guest section of the details, and the seed removed by the UI
that created the VM once cloud-init finished (test driver; the consoles are
fakes that replay recorded logs)."""

from __future__ import annotations

from pathlib import Path

from tests.console_fakes import FakeManager
from tests.notes import Notes
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.core.provision import seed
from vmtui.ui.app import VmtuiApp
from vmtui.ui.screens import DetailsScreen

from .conftest import ALPHA, BRAVO, DELTA, wait_for
from .test_guests import fake_removal, mark_seed

CONSOLE = Path(__file__).resolve().parent / "data" / "console"


def make_app(uri: str) -> VmtuiApp:
    app = VmtuiApp(LibvirtService(uri, stats_interval=3600, reconnect=False), Config())
    app.consoles = FakeManager(app.service)  # the test driver has no console streams
    app.guests.consoles = app.consoles
    return app


async def loaded(app) -> None:
    await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
    await app.service.wait_loaded()


def cell(app, uuid: str, key: str) -> str:
    return str(app.table.get_cell(uuid, key))


async def test_a_shows_and_hides_the_address_column(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(app)
        assert not app.table.column_shown("address")
        app.table.select(DELTA)
        await pilot.press("A")
        await wait_for(lambda: app.table.column_shown("address") and cell(app, ALPHA, "address"),
                       what="addresses read")
        assert cell(app, ALPHA, "address").startswith("192.168.122.")
        assert cell(app, BRAVO, "address") == ""  # shut off
        assert app.table.selected_uuid == DELTA  # the selection stays
        await pilot.press("A")
        await pilot.pause()
        assert not app.table.column_shown("address") and "address" not in [str(k.value) for k in app.table.columns]


async def test_the_row_follows_the_boot_and_the_seed_goes_when_cloud_init_finished(small_uri, monkeypatch):
    removed = fake_removal(monkeypatch)
    notes = Notes()
    app = make_app(small_uri)
    async with app.run_test(size=(120, 30), message_hook=notes.hook) as pilot:
        await loaded(app)
        await app.service.call(lambda c: mark_seed(c, ALPHA))
        app.adopt_vm(ALPHA)  # as after the wizard made it
        await wait_for(lambda: ALPHA in app.consoles.sessions, what="console opened")
        session = app.consoles.sessions[ALPHA]
        data = (CONSOLE / "cloud-init-finished.log").read_bytes()
        cut = data.index(b"running 'init'")
        session.emit(data[:cut + 200])
        await wait_for(lambda: cell(app, ALPHA, "state") == "running (cloud-init)", what="cloud-init on the row")
        session.emit(data[cut + 200:])
        await wait_for(lambda: cell(app, ALPHA, "state") == "running (ready)", what="ready on the row")
        await wait_for(lambda: notes.has("First boot of 'alpha' done. Removed the cloud-init seed"),
                       what="told")
        assert removed == [ALPHA]
        await pilot.pause()


async def test_a_vm_started_here_is_followed_one_started_elsewhere_is_not(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(app)
        app.table.select(BRAVO)
        await pilot.press("s")
        await wait_for(lambda: BRAVO in app.consoles.sessions, what="console of the VM started here")
        app.consoles.sessions[BRAVO].emit((CONSOLE / "cloud-init-no-datasource.log").read_bytes())
        await wait_for(lambda: cell(app, BRAVO, "state") == "running (error)", what="error on the row")
        await app.service.start("11111111-1111-4111-8111-000000000005")  # echo, started by someone else
        await wait_for(lambda: app.service.domains["11111111-1111-4111-8111-000000000005"].is_running,
                       what="echo running")
        await pilot.pause()
        assert "11111111-1111-4111-8111-000000000005" not in app.consoles.sessions


async def test_details_tell_the_addresses_the_boot_and_a_seed_nobody_waits_for(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(120, 50)) as pilot:
        await loaded(app)
        await app.service.call(lambda c: mark_seed(c, ALPHA))
        app.table.select(ALPHA)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen)
                       and "Loading" not in str(app.screen.query_one("#details").content), what="details")
        await wait_for(lambda: "Guest" in _details_text(app), what="guest section")
        text = _details_text(app)
        assert "lease" in text and "192.168.122." in text
        assert "agent: no guest agent channel" in text
        assert "not followed: vmtui reads the boot" in text
        assert "alpha-cidata.iso: to go after the first boot, but only the vmtui that waits for it" in text
        assert "none does: it stays" in text
        # the watch starts following it: the details follow too
        await app.guests.watch(ALPHA)
        app.consoles.sessions[ALPHA].emit((CONSOLE / "cloud-init-errors.log").read_bytes())
        await wait_for(lambda: "error: cloud-init finished with errors" in _details_text(app), timeout=10,
                       what="details follow the boot")


def _details_text(app) -> str:
    from rich.console import Console
    console = Console(width=200, record=True, color_system=None)
    console.print(app.screen.query_one("#details").content)
    return " ".join(console.export_text().split())


async def test_seed_status_of_the_details():
    xml = """<domain><name>a</name><metadata>
      <vmtuici:seed xmlns:vmtuici="https://vmtui.dev/xmlns/cloudinit/1" path="/p/a-cidata.iso" pool="default"
        volume="a-cidata.iso" detach_after_first_boot="yes"/></metadata>
      <devices><disk type='file' device='cdrom'><source file='/p/a-cidata.iso'/><target dev='hdc'/></disk>
      </devices></domain>"""
    st = seed.seed_status(xml)
    assert (st.path, st.attached, st.remove_after_first_boot) == ("/p/a-cidata.iso", True, True)
    assert seed.seed_status("<domain><name>a</name></domain>") is None
