"""Snapshots of the cloud-init editor and the saved-configs screen.

Update on purpose with: pytest tests/test_snapshots_cloudinit.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input

from vmtui.core.provision.library import Library
from vmtui.core.provision.seed import CloudInitDocs
from vmtui.ui.cloudinit_editor import CloudInitEditorScreen, CloudInitLibraryScreen

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = Path("tests/data/cloudinit-library")  # relative: the screen shows it

USER = """#cloud-config
hostname: web1
timezone: Europe/Berlin
users:
  - name: admin
    groups: [sudo]
    shell: /bin/bash
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKey admin@laptop
packages: [nginx, git]
package_update: yes-please
runcmd:
  - systemctl enable --now nginx
"""
META = "instance-id: iid-vmtui-0123456789ab\nlocal-hostname: web1\n"


class ScreenApp(App):
    CSS_PATH = "../vmtui/ui/vmtui.tcss"

    def __init__(self, factory) -> None:
        super().__init__()
        self.factory = factory

    def on_mount(self) -> None:
        self.push_screen(self.factory())


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def editor(valid: bool = False) -> ScreenApp:
    user = USER.replace("yes-please", "true") if valid else USER
    return ScreenApp(lambda: CloudInitEditorScreen(None, hostname="web1", initial=CloudInitDocs(user, META),
                                                   library=Library(LIBRARY)))


def _no_blink(app) -> None:
    for w in app.screen.query("Input, TextArea"):
        w.cursor_blink = False


async def _validated(pilot) -> None:
    _no_blink(pilot.app)
    await pilot.pause(0.4)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_editor_with_a_schema_error_80x24(snap_compare):
    async def run_before(pilot):
        await _validated(pilot)
        await pilot.press("f8")
        await pilot.pause()

    assert snap_compare(editor(), terminal_size=(80, 24), run_before=run_before)


def test_editor_form_80x24(snap_compare):
    async def run_before(pilot):
        await _validated(pilot)
        await pilot.press("f5")
        await pilot.pause()
        pilot.app.screen.query_one("#f-hostname", Input).focus()
        _no_blink(pilot.app)
        await pilot.pause()

    assert snap_compare(editor(valid=True), terminal_size=(80, 24), run_before=run_before)


def test_library_80x24(snap_compare):
    async def run_before(pilot):
        await pilot.pause()
        _no_blink(pilot.app)
        await pilot.pause()

    app = ScreenApp(lambda: CloudInitLibraryScreen(None, Library(LIBRARY)))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_wizard_cloud_source_80x24(snap_compare):
    from textual.widgets import RadioButton

    from .conftest import SMALL_HOST, host_uri
    from .test_wizard import make_app, open_wizard

    async def run_before(pilot):
        wiz = await open_wizard(pilot.app, pilot)
        wiz.query_one("#src-cloud", RadioButton).value = True
        await pilot.pause()
        wiz.query_one("#cloud-image", Input).value = "default/charlie.qcow2"
        await pilot.pause()
        # no scroll animation: where one stops depends on the machine's speed
        wiz.query_one("#cloudinit-detach").focus(scroll_visible=False)
        await pilot.pause()
        wiz.query_one("#cloudinit-detach").scroll_visible(animate=False, top=True)
        await pilot.wait_for_scheduled_animations()
        _no_blink(pilot.app)
        await pilot.pause()

    assert snap_compare(make_app(host_uri(SMALL_HOST)), terminal_size=(80, 24), run_before=run_before)
