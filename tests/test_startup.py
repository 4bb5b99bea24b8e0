"""Starting vmtui imports what the first screen needs and nothing else
(issue 14): the wizard, OVF, cloud-init, kickstart, console and graphics
screens and their libraries are imported when first used."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import SMALL_HOST, host_uri

ROOT = Path(__file__).resolve().parent.parent

NOT_AT_START = [
    "jsonschema", "pycdlib", "pykickstart", "pyte", "tree_sitter", "yaml",
    "vmtui.ui.wizard", "vmtui.ui.ovf_screens", "vmtui.ui.cloudinit_editor", "vmtui.ui.kickstart_editor",
    "vmtui.ui.console_screen", "vmtui.ui.graphics_screen", "vmtui.ui.templates_ui", "vmtui.ui.screens",
    "vmtui.ui.dialogs", "vmtui.core.ovf", "vmtui.core.create", "vmtui.core.provision", "vmtui.core.consoles",
    "vmtui.core.clones",
]


def test_the_list_on_screen_needs_none_of_the_other_screens(tmp_path):
    script = textwrap.dedent(f"""
        import asyncio, json, sys
        from vmtui.core.config import load_config
        from vmtui.core.connection.service import LibvirtService
        from vmtui.ui.app import VmtuiApp

        app = VmtuiApp(LibvirtService({host_uri(SMALL_HOST)!r}, stats_interval=0.5, reconnect=False),
                       load_config({str(tmp_path / "none.yaml")!r}))

        async def run(pilot):
            while not app.ready:
                await asyncio.sleep(0.02)
            await app.service.wait_loaded()
            await asyncio.sleep(1.5)  # stats ticks, host and storage checks
            await pilot.press("down", "o", "t")  # move, sort, filter
            await pilot.pause()
            print(json.dumps(sorted(sys.modules)))
            app.exit()

        asyncio.run(app.run_async(headless=True, size=(120, 40), auto_pilot=run))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    early = sorted({m for m in loaded for name in NOT_AT_START if m == name or m.startswith(name + ".")})
    assert early == [], f"imported before they are used: {early}"
    assert "vmtui.ui.domain_table" in loaded
