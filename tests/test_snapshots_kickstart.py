"""Snapshot tests of the kickstart editor (pytest-textual-snapshot), 80x24.

Update on purpose with: pytest tests/test_snapshots_kickstart.py --snapshot-update
"""

from __future__ import annotations

from vmtui.core.config import Config
from vmtui.core.provision.kickstart import starter_kickstart
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.kickstart_editor import KickstartEditorScreen, StarterAnswers, StarterDialog

from .conftest import SMALL_HOST, host_uri, wait_for

HASH = "$6$vmtuisnap$Jq0sYgOZCw0Qd7cFzq3pYp1m3lE1XkX6y8bK2H7n9s0uQ4rT5vW6xZ7aB8cD9eF0gH1iJ2kL3mN4oP5qR6sT7u"
GOOD = starter_kickstart("en_US.UTF-8", "us", "Europe/Berlin", HASH, "admin", disk="vda",
                         post="systemctl enable --now cockpit.socket")
BAD = GOOD.replace("firstboot --disable\n", "firstboot --disable\nautostep\nselinux --permissve\n")


def _app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())


async def _editor(pilot, **kw) -> KickstartEditorScreen:
    app = pilot.app
    await wait_for(lambda: app.ready and app.table.row_count == 5, what="list")
    screen = KickstartEditorScreen(**kw)
    await app.push_screen(screen)
    await pilot.pause()
    await wait_for(lambda: screen.checked == (screen.text, screen.version), timeout=10, what="validation")
    await pilot.pause()
    return screen


def test_kickstart_editor_errors_80x24(snap_compare):
    async def run_before(pilot):
        await _editor(pilot, text=BAD, version="RHEL9", path="/root/web.ks")
        await pilot.press("f8")
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_kickstart_editor_for_a_network_install_80x24(snap_compare):
    async def run_before(pilot):
        await _editor(pilot, text=GOOD, version="F40", install_kind="url", title="VM 'web-03'")

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_kickstart_starter_dialog_80x24(snap_compare):
    async def run_before(pilot):
        await _editor(pilot, version="RHEL9", install_kind="iso", title="VM 'db-02'")
        await pilot.app.push_screen(StarterDialog(StarterAnswers(timezone="Europe/Berlin", user="admin", disk="sda")))
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)
