#!/usr/bin/env python3
"""Make screenshots/*.svg from the bundled demo host (run: make screenshots).

Each screenshot is the app as a user sees it, driven by keys through Textual's
Pilot on libvirt's test driver; nothing is drawn by hand.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vmtui.cli import demo_uri  # noqa: E402
from vmtui.core.config import Config  # noqa: E402
from vmtui.core.service import LibvirtService  # noqa: E402
from vmtui.ui.app import VmtuiApp  # noqa: E402

OUT = ROOT / "screenshots"


async def _wait(predicate, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise SystemExit("timed out waiting for the demo host")
        await asyncio.sleep(0.02)


async def shoot(name: str, size: tuple[int, int], keys: list, wait_for=None, select: str | None = None) -> Path:
    app = VmtuiApp(LibvirtService(demo_uri(), stats_interval=3600, reconnect=False), Config())
    async with app.run_test(size=size) as pilot:
        await _wait(lambda: app.ready and app.table.row_count > 0)
        await app.service.wait_loaded()
        await pilot.pause()
        if select:
            uuid = next(u for u, d in app.table.domains.items() if d.name == select)
            app.table.select(uuid)
            await pilot.pause()
        for key in keys:
            if callable(key):  # a step that is not a key press: await key(app)
                await key(app)
            else:
                await pilot.press(key)
            await pilot.pause()
        if wait_for is not None:
            await _wait(lambda: wait_for(app))
        await pilot.pause(0.2)
        path = OUT / f"{name}.svg"
        path.write_text(app.export_screenshot(title=f"vmtui — {name}"), encoding="utf-8")
        return path


def _details_loaded(app) -> bool:
    try:
        return "Loading" not in str(app.screen.query_one("#details").content)
    except Exception:
        return False


async def _wizard_ready(app) -> None:
    from vmtui.ui.wizard import NewVmWizard
    await _wait(lambda: isinstance(app.screen, NewVmWizard) and app.screen.ctx.osdb is not None
                and bool(app.screen.ctx.pools), timeout=20)


def _type(selector: str, value: str):
    async def step(app) -> None:
        from textual.widgets import Input
        app.screen.query_one(selector, Input).value = value
    return step


async def _replay_consoles(app) -> None:
    """The test driver has no console stream: replay a recorded boot of the tiny
    test guest (tests/data/console/boot.log) as db-primary's serial console."""
    from tests.console_fakes import BOOT_LOG, replay_manager
    by_name = {d.name: u for u, d in app.table.domains.items()}
    app.consoles = replay_manager(app.service, {
        by_name["db-primary"]: BOOT_LOG.read_bytes(),
        by_name["web-01"]: b"\r\nDebian GNU/Linux 12 web-01 ttyS0\r\n\r\nweb-01 login: "})


def _select(name: str):
    async def step(app) -> None:
        app.table.select(next(u for u, d in app.table.domains.items() if d.name == name))
    return step


def _console_shown(app) -> bool:
    cur = getattr(app.screen, "current", None)
    if cur is None or cur.state != "connected":
        return False
    cur.terminal.flush()
    return True


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    shots = [
        ("domain-list", (100, 30), [], None, "db-primary"),
        ("domain-list-80x24", (80, 24), [], None, "web-01"),
        ("help", (100, 30), ["question_mark"], None, None),
        ("details", (110, 40), ["enter"], _details_loaded, "db-primary"),
        ("delete-dialog", (100, 30), ["D"], lambda app: type(app.screen).__name__ == "DeleteDialog", "k8s-worker-1"),
        ("wizard-source", (100, 30), ["n", _wizard_ready, _type("#iso", "default/debian-12.8.0-amd64-netinst.iso")],
         None, None),
        ("wizard-os", (100, 30), ["n", _wizard_ready, _type("#iso", "default/debian-12.8.0-amd64-netinst.iso"),
                                  "ctrl+n", _type("#os-search", "debian")], None, None),
        ("wizard-storage", (100, 30), ["n", _wizard_ready, _type("#iso", "default/debian-12.8.0-amd64-netinst.iso"),
                                       "ctrl+n", _type("#os-search", "debian 11"), "ctrl+n", "ctrl+n",
                                       _type("#size", "200G")], None, None),
        ("wizard-finish", (100, 40), ["n", _wizard_ready, _type("#iso", "default/debian-12.8.0-amd64-netinst.iso"),
                                      "ctrl+n", _type("#os-search", "debian 11"), "ctrl+n", "ctrl+n", "ctrl+n",
                                      _type("#name", "web-03")], None, None),
        ("console", (100, 30), [_replay_consoles, _select("web-01"), "c", "ctrl+right_square_bracket",
                                _select("db-primary"), "c"], _console_shown, None),
    ]
    for name, size, keys, wait_for, select in shots:
        print(await shoot(name, size, keys, wait_for, select))


if __name__ == "__main__":
    asyncio.run(main())
