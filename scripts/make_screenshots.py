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
from vmtui.core.connection.service import LibvirtService  # noqa: E402
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


async def _ovf_read(app) -> None:
    """The import screen reading the sample appliance (a relative path: the
    same text on every machine)."""
    import os
    from textual.widgets import Input
    from vmtui.ui.ovf_screens import ImportOvfScreen
    await _wait(lambda: isinstance(app.screen, ImportOvfScreen) and bool(app.screen.pools))
    os.chdir(ROOT)
    scr = app.screen
    scr.query_one("#ovf-path", Input).value = "tests/data/ovf/appliance.ova"
    scr.action_read()
    await _wait(lambda: scr.package is not None, timeout=20)
    scr.query_one("#ovf-path", Input).cursor_position = 0


def _mark_template(name: str):
    async def step(app) -> None:
        from vmtui.core.clones import templates
        uuid = next(u for u, d in app.table.domains.items() if d.name == name)
        await app.service.call(lambda c: templates.set_marked(c.lookupByUUIDString(uuid), True))
        await app.service.refresh_domain(uuid)
        await _wait(lambda: app.table.domains[uuid].template)
    return step


def _clone_planned(app) -> bool:
    from vmtui.ui.templates_ui import CloneScreen
    return isinstance(app.screen, CloneScreen) and app.screen.plan is not None


async def _graphics_sample(app) -> None:
    """The graphical console of the selected VM with a sample picture (the
    test driver has no real screens) and the lines for a remote host."""
    from vmtui.core.consoles import graphics
    from vmtui.ui.graphics_screen import GraphicsScreen
    d = app.table.selected
    app.service.display_uri = "qemu+ssh://admin@kvm1.example.org/system"
    displays = [graphics.Display(type="vnc", listen_type="address", address="127.0.0.1", port=5901,
                                 autoport=True, password_set=True)]
    frame = graphics.Frame(graphics.sample_image(640, 400), "image/png", 41_000, 0.12)
    await app.push_screen(GraphicsScreen(app.service, d.uuid, d.name, source=lambda: frame, displays=displays))


def _disks_loaded(app) -> bool:
    try:
        return "Loading" not in str(app.screen.query_one("#disk-detail").content)
    except Exception:
        return False


def _snaps_loaded(app) -> bool:
    try:
        return "Loading" not in str(app.screen.query_one("#snap-detail").content)
    except Exception:
        return False


async def _demo_snapshots(app) -> None:
    """A snapshot tree on the selected VM, with fixed times (metadata only)."""
    from vmtui.core.storage import snapshots
    S = snapshots.SnapshotInfo
    uuid = app.table.selected.uuid

    def make(conn) -> None:
        dom = conn.lookupByUUIDString(uuid)
        snapshots.redefine_snapshot(dom, S("installed", None, 1764000000, "shutoff", "Debian 12, PostgreSQL 16"))
        snapshots.redefine_snapshot(dom, S("replica-set-up", "installed", 1764100000, "running",
                                           "Streaming replication to db-replica", memory="internal"))
        snapshots.redefine_snapshot(dom, S("before-16.4", "replica-set-up", 1764200000, "running",
                                           "Before the 16.4 minor upgrade", memory="internal"), current=True)
        snapshots.redefine_snapshot(dom, S("tuning-test", "installed", 1764150000, "shutoff",
                                           "shared_buffers experiments"))
    await app.service.call(make)


# --- cloud-init editor and saved configs (cloudinit-ui) ---------------------

CI_LIBRARY = ROOT / "tests" / "data" / "cloudinit-library"
CI_USER = """#cloud-config
hostname: web-03
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


def _ci_editor(user: str, tab: str | None = None):
    async def step(app) -> None:
        from vmtui.core.provision.library import Library
        from vmtui.core.provision.seed import CloudInitDocs
        from vmtui.ui.cloudinit_editor import CloudInitEditorScreen
        docs = CloudInitDocs(user, "instance-id: iid-vmtui-0123456789ab\nlocal-hostname: web-03\n")
        await app.push_screen(CloudInitEditorScreen(app.service, hostname="web-03", initial=docs,
                                                    library=Library(CI_LIBRARY)))
        await asyncio.sleep(0.5)
        await app.workers.wait_for_complete()
        if tab:
            app.screen.action_show(tab)
        else:
            app.screen.action_next_error()
    return step


def _ci_library():
    async def step(app) -> None:
        from vmtui.core.provision.library import Library
        from vmtui.ui.cloudinit_editor import CloudInitLibraryScreen
        import os
        os.chdir(ROOT)  # the screen shows the (relative) directory
        await app.push_screen(CloudInitLibraryScreen(app.service, Library(CI_LIBRARY.relative_to(ROOT))))
    return step


def _ci_cloud_source():
    async def step(app) -> None:
        from textual.widgets import Input, RadioButton
        app.screen.query_one("#src-cloud", RadioButton).value = True
        app.screen.query_one("#cloud-image", Input).value = "default/debian12-tmpl.qcow2"
    return step


def cloudinit_shots() -> list:
    return [
        ("cloudinit-wizard", (100, 30), ["n", _wizard_ready, _ci_cloud_source()], None, None),
        ("cloudinit-editor", (100, 30), [_ci_editor(CI_USER)], None, None),
        ("cloudinit-form", (100, 30), [_ci_editor(CI_USER.replace("yes-please", "true"), "form")], None, None),
        ("cloudinit-library", (100, 30), [_ci_library()], None, None),
    ]


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
                                       _type("#vol-size", "200G")], None, None),
        ("wizard-finish", (100, 40), ["n", _wizard_ready, _type("#iso", "default/debian-12.8.0-amd64-netinst.iso"),
                                      "ctrl+n", _type("#os-search", "debian 11"), "ctrl+n", "ctrl+n", "ctrl+n",
                                      _type("#name", "web-03")], None, None),
        # templates and clones
        ("template-list", (100, 30), [_mark_template("debian12-tmpl")], None, "debian12-tmpl"),
        ("clone-dialog", (80, 24), [_mark_template("debian12-tmpl"), "l"], _clone_planned, "debian12-tmpl"),
        ("prepare-template", (100, 30), ["T"], None, "backup-nas"),
        ("graphics", (100, 32), [_graphics_sample], lambda app: getattr(app.screen, "frames", 0) >= 1, "web-01"),
        # disks-snaps: disks (d) and snapshots (z) screens
        ("disks", (100, 30), ["d", "down"], _disks_loaded, "k8s-worker-1"),
        ("snapshots", (100, 30), [_demo_snapshots, "z"], _snaps_loaded, "db-primary"),
        ("storage", (100, 30), ["S"], lambda app: getattr(app.screen, "loaded", False), None),
        ("networks", (100, 30), ["N", "down"], lambda app: getattr(app.screen, "loaded", False), None),
        ("console", (100, 30), [_replay_consoles, _select("web-01"), "c", "ctrl+right_square_bracket",
                                _select("db-primary"), "c"], _console_shown, None),
    ]
    shots += [  # OVF / OVA import
        ("ovf-import", (100, 32), ["I", _ovf_read], None, None),
    ]
    shots += cloudinit_shots()
    shots += kickstart_shots()
    only = set(sys.argv[1:])  # names to make; none: all
    for name, size, keys, wait_for, select in shots:
        if not only or name in only:
            print(await shoot(name, size, keys, wait_for, select))


def kickstart_shots() -> list:
    """The kickstart editor (k): a starter kickstart with two mistakes, F8 on the first."""
    from vmtui.core.provision.kickstart import starter_kickstart

    text = starter_kickstart("en_US.UTF-8", "us", "Europe/Berlin",
                             "$6$vmtuidemo$N2XwQgq1pvpW7yTVhQ3AqzRk6Bm0yVd9x0c4Jm0lD6XH5uO1m3k9C8vO0cYv9o7V0eX2aQf4bE1Hn6"
                             "s5r3tB0", "admin", disk="vda", packages=("@^server-product-environment", "vim-enhanced"),
                             post="systemctl enable --now cockpit.socket")
    text = text.replace("firstboot --disable\n", "firstboot --disable\nautostep\nselinux --permissve\n")

    async def load(app) -> None:
        from textual.widgets import TextArea
        screen = app.screen
        screen.path = "/root/web.ks"
        screen.query_one("#ks-text", TextArea).load_text(text)
        screen.saved_text = text
        screen.check_now()
        await _wait(lambda: screen.checked == (screen.text, screen.version))

    async def wizard_kickstart(app) -> None:
        from vmtui.ui.wizard import KickstartStep
        wiz = app.screen
        step = wiz.steps[wiz.index]
        if not isinstance(step, KickstartStep):
            raise SystemExit(f"expected the kickstart step, got {step.title!r} ({wiz.spec.os}, {wiz.os_info})")
        good = text.replace("autostep\n", "").replace("selinux --permissve\n", "")
        from vmtui.core.provision.kickstart import version_for_os
        wiz.spec.install.kickstart = {"text": good, "version": version_for_os(wiz.os_info), "delivery": "oemdrv"}
        step.load()

    async def choose_fedora(app) -> None:
        # the newest Fedora this machine's osinfo-db knows
        db = app.screen.ctx.osdb
        newest = next(o for o in db.search("fedora") if o.short_id.startswith("fedora") and o.is_anaconda)
        app.screen.steps[1].choose(newest.short_id)

    fedora = "default/Fedora-Workstation-Live-x86_64-41-1.4.iso"
    return [("kickstart-editor", (100, 30), ["k", load, "f8"], None, None),
            ("wizard-kickstart", (100, 30), ["n", _wizard_ready, _type("#iso", fedora), "ctrl+n",
                                             _type("#os-search", "fedora"), choose_fedora, "ctrl+n", "ctrl+n",
                                             "ctrl+n",
                                             wizard_kickstart], None, None)]


if __name__ == "__main__":
    asyncio.run(main())
