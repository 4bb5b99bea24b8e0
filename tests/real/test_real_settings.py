"""The settings screen on the real libvirtd (qemu:///system) against a
running tiny guest (tests/guest.py, TCG), checked from inside the guest
through its serial console:

* vCPU hot-plug: ``<vcpu current='1'>2</vcpu>`` on i440fx under TCG (libvirt
  9.0, QEMU 7.2): the second vCPU appears in ``/sys/devices/system/cpu/present``
  and comes online when the guest asks (no udev in the guest to do it);
* the memory balloon (virtio memballoon, the virtio_balloon module in the
  initramfs): the guest's MemTotal shrinks;
* a maximum that waits for the next boot shows up in the pending line;
* a NIC's link taken down: the guest's carrier drops; a NIC plugged in and
  out: the guest sees eth1 come and go; an RNG plugged in: the guest has a
  hardware RNG; the guest agent's channel, which this guest (no
  virtio-serial controller) cannot take live, waits for the next boot with
  libvirt's reason;
* every section of a shut-off VM as QEMU's driver checks it at define time,
  with what libvirt added to the definition (controllers, addresses) kept.

The NICs are on a per-run isolated network (no <forward>), removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import re
import xml.etree.ElementTree as ET

import libvirt
import pytest
from textual.widgets import Input, Static

from tests import guest
from tests.conftest import press_button, wait_for
from tests.prereq import missing
from tests.real.test_real_storage_net import NET_PREFIX, _free_subnet
from tests.test_settings_ui import apply_and_wait, go_to
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.core.host import networks
from vmtui.ui.app import VmtuiApp
from vmtui.ui.dialogs import ConfirmDialog
from vmtui.ui.settings import SettingsScreen
from vmtui.ui.settings.nics import NicDialog, NicTable

pytestmark = pytest.mark.real

URI = "qemu:///system"
INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE
MAC0 = "52:54:00:5e:77:01"
MAC1 = "52:54:00:5e:77:02"


@pytest.fixture(scope="module")
def balloon_guest_files(_libvirt_available):
    """The stock tiny guest, plus the balloon driver."""
    try:
        return guest.tiny_guest_files(modules=guest.DEFAULT_MODULES + ("virtio_balloon", "virtio_rng"))
    except Exception as exc:  # no apt, no network, ...
        missing(f"cannot build the tiny test guest: {exc}")


@pytest.fixture
def isolated_net(system_conn):
    """A per-run isolated network (no forward): nothing leaves the host."""
    name = f"{NET_PREFIX}{os.getpid()}-set-{os.urandom(2).hex()}"
    cidr = _free_subnet(system_conn)
    plan = networks.plan_network(name, "isolated", cidr, existing=networks.list_networks(system_conn))
    assert not plan.errors, plan.errors
    networks.define_network(system_conn, plan.xml, start=True, autostart=False)
    assert ET.fromstring(system_conn.networkLookupByName(name).XMLDesc(0)).find("forward") is None
    yield name
    conn = libvirt.open(URI)
    try:
        net = conn.networkLookupByName(name)
        if net.isActive():
            net.destroy()
        net.undefine()
    except libvirt.libvirtError:
        pass
    finally:
        conn.close()


def nic_xml(network: str, mac: str) -> str:
    return (f"<interface type='network'><mac address='{mac}'/><source network='{network}'/>"
            "<model type='virtio'/></interface>")


def make_app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(URI, stats_interval=3600), Config())


async def open_settings(pilot, uuid: str, section: str) -> SettingsScreen:
    app = pilot.app
    await wait_for(lambda: app.ready and uuid in app.service.domains, timeout=60, what="the guest listed")
    await wait_for(lambda: uuid in app.table.visible_uuids(), timeout=30, what="its row")
    app.table.select(uuid)
    await pilot.pause()
    await pilot.press("e")
    await wait_for(lambda: isinstance(app.screen, SettingsScreen) and app.screen.state is not None, timeout=60,
                   what="settings screen")
    await go_to(pilot, section)
    return app.screen


async def in_guest(con: guest.SerialConsole, command: str) -> str:
    return await asyncio.to_thread(con.run, command, 60)


async def until_guest(con: guest.SerialConsole, command: str, predicate, what: str, timeout: float = 180) -> str:
    """Run ``command`` in the guest until its output passes ``predicate``
    (a guest under TCG on a busy host may be slow to answer while it plugs
    or unplugs a device)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out = ""
    while True:
        try:
            out = await in_guest(con, command)
        except TimeoutError:
            if loop.time() > deadline:
                raise
            continue
        if predicate(out):
            return out
        if loop.time() > deadline:
            raise AssertionError(f"the guest never showed {what}; last output: {out!r}")
        await asyncio.sleep(0.5)


def mem_total_kib(meminfo: str) -> int:
    return int(re.search(r"MemTotal:\s+(\d+) kB", meminfo).group(1))


async def test_vcpu_hotplug_and_balloon_reach_the_running_guest(system_conn, tiny_guest, balloon_guest_files,
                                                                 serial_console):
    dom = tiny_guest(files=balloon_guest_files, memory_mib=256, vcpus=2, vcpus_current=1, memballoon="virtio")
    uuid = dom.UUIDString()
    con = serial_console(dom)
    await asyncio.to_thread(con.wait_ready)
    assert await in_guest(con, "cat /sys/devices/system/cpu/online") == "0"
    total_before = mem_total_kib(await in_guest(con, "cat /proc/meminfo"))

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_settings(pilot, uuid, "cpus")
        assert screen.state.settings.running and screen.state.settings.live_max_vcpus == 2
        screen.query_one("#cpus-current", Input).value = "2"
        status = await apply_and_wait(pilot, "cpus")
        assert status == "Now: vCPUs 2 (hot-plugged: the guest may have to bring the new vCPUs online)"
        await until_guest(con, "cat /sys/devices/system/cpu/present", lambda o: o == "0-1", "a second vCPU")
        await in_guest(con, "echo 1 > /sys/devices/system/cpu/cpu1/online")
        assert await in_guest(con, "cat /sys/devices/system/cpu/online") == "0-1"
        assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) == 2
        assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG) == 2  # and at the next boot

        await go_to(pilot, "memory")
        screen.query_one("#memory-current", Input).value = "128M"
        status = await apply_and_wait(pilot, "memory")
        assert status == "Now: Memory 128M (the guest's balloon driver gives or takes it)"
        await until_guest(con, "cat /proc/meminfo", lambda o: mem_total_kib(o) <= total_before - 100 * 1024,
                          "its memory shrink by the balloon")
        assert ET.fromstring(dom.XMLDesc(INACTIVE)).find("currentMemory").text == str(128 * 1024)
        # QEMU reports the balloon's progress (at most once a second): libvirt's live figure follows
        await wait_for(lambda: dom.info()[2] == 128 * 1024, timeout=60, what="libvirt to see the balloon's size")

        # the maximum waits for the next boot, and the pending line says so
        screen.query_one("#memory-maximum", Input).value = "512M"
        status = await apply_and_wait(pilot, "memory")
        assert status == "At next boot: Maximum memory 512M (the maximum is fixed while the VM runs)"
        pending = str(screen.query_one("#settings-pending", Static).content)
        assert pending == "Pending at next boot: Maximum memory: 256.0 MiB now, 512.0 MiB at next boot"
        assert dom.maxMemory() == 256 * 1024


async def test_nic_link_hotplug_rng_and_agent_on_the_running_guest(system_conn, tiny_guest, balloon_guest_files,
                                                                   serial_console, isolated_net):
    dom = tiny_guest(files=balloon_guest_files, extra_devices_xml=nic_xml(isolated_net, MAC0))
    uuid = dom.UUIDString()
    con = serial_console(dom)
    await asyncio.to_thread(con.wait_ready)
    await in_guest(con, "ip link set eth0 up")
    await until_guest(con, "cat /sys/class/net/eth0/carrier", lambda o: o == "1", "a carrier on eth0")

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_settings(pilot, uuid, "nics")
        table = screen.query_one(NicTable)
        assert screen.focused is table
        await pilot.press("l")
        await wait_for(lambda: str(table.get_row_at(0)[3]) == "down", timeout=30, what="link down")
        assert str(screen.panes["nics"].query_one("#pane-nics-status", Static).content) == \
            f"Now: NIC {MAC0} link down"
        await until_guest(con, "cat /sys/class/net/eth0/carrier", lambda o: o == "0", "the carrier drop")
        for flags in (0, INACTIVE):
            nic = ET.fromstring(dom.XMLDesc(flags)).find("devices/interface")
            assert nic.find("link").get("state") == "down"

        # a second NIC, plugged in and out
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, NicDialog), timeout=30, what="NIC dialog")
        app.screen.query_one("#nic-source").value = isolated_net
        app.screen.query_one("#nic-mac", Input).value = MAC1
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, SettingsScreen) and table.row_count == 2, timeout=60,
                       what="NIC added")
        await until_guest(con, "ls /sys/class/net", lambda o: "eth1" in o.split(), "eth1 appear")
        table.move_cursor(row=1)
        await pilot.press("r")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="confirm")
        await pilot.press("y")
        await wait_for(lambda: table.row_count == 1, timeout=60, what="NIC removed")
        await until_guest(con, "ls /sys/class/net", lambda o: "eth1" not in o.split(), "eth1 go")
        assert [n.find("mac").get("address") for n in ET.fromstring(dom.XMLDesc(0)).iter("interface")] == [MAC0]

        # an RNG plugged in; the agent's channel needs a controller this guest lacks
        await go_to(pilot, "rng")
        await pilot.press("space")
        status = await apply_and_wait(pilot, "rng")
        assert status == "Now: Random number generator from /dev/urandom (plugged in)"
        await until_guest(con, "cat /sys/class/misc/hw_random/rng_available", lambda o: "virtio_rng" in o,
                          "a virtio RNG")
        await go_to(pilot, "agent")
        await pilot.press("space")
        status = await apply_and_wait(pilot, "agent")
        assert status.startswith("At next boot: Guest agent channel added (not live: ")
        assert "virtio-serial" in status
        pending = str(screen.query_one("#settings-pending", Static).content)
        assert pending.startswith("Pending at next boot: Guest agent channel: none now, yes at next boot")


def _untouched(xml: str) -> list[str]:
    """What libvirt added to the definition and no section edits: the
    controllers, inputs and emulator, each with its PCI address."""
    root = ET.fromstring(xml)
    out = [ET.tostring(el, encoding="unicode").strip() for path in ("devices/controller", "devices/input")
           for el in root.findall(path)]
    return out + [root.findtext("devices/emulator")]


def test_libvirt_takes_every_section_of_a_shut_off_vm(system_conn, tiny_guest):
    """Each section's XML as QEMU's driver checks it at define time (no boot);
    what libvirt added and vmtui does not model stays."""
    from vmtui.core.edit import apply, values

    dom = tiny_guest(start=False, vcpus=2)
    uuid = dom.UUIDString()
    before = _untouched(dom.XMLDesc(INACTIVE))
    state = apply.load_editor(system_conn, uuid)
    s, offers = state.settings, state.offers
    assert offers.known and "efi" in offers.firmware and offers.max_vcpus and "qemu64" in offers.cpu_models
    tpm_backend = "emulator" if "emulator" in offers.tpm_backends else "passthrough"
    saves = [
        apply.save_overview(system_conn, uuid, values.OverviewValues("t", "d", False, "efi")),
        apply.save_overview(system_conn, uuid, values.OverviewValues("t", "d", False, "bios")),
        apply.save_cpus(system_conn, uuid, values.CpuValues(1, 4, "custom", "Nehalem", 1, 2, 2)),
        apply.save_memory(system_conn, uuid, values.MemoryValues(64, 256)),
        apply.save_boot(system_conn, uuid, values.BootValues(entries=s.boot.entries, menu=True, menu_timeout_ms=500,
                                                             kernel=s.boot.kernel, initrd=s.boot.initrd,
                                                             cmdline=s.boot.cmdline)),
        apply.save_display(system_conn, uuid, values.DisplayValues("vnc", "127.0.0.1", 5999, "vga")),
        apply.add_serial(system_conn, uuid),
        apply.set_agent(system_conn, uuid, True),
        apply.save_tpm(system_conn, uuid, values.TpmValues("tpm-crb", tpm_backend, "2.0", "/dev/tpm0")),
        apply.save_rng(system_conn, uuid, values.RngValues(True, "/dev/urandom")),
    ]
    assert all(r.changed and not r.running for r in saves)
    xml = dom.XMLDesc(INACTIVE)
    after = values.read_settings(xml, None)
    assert (after.overview.title, after.overview.firmware) == ("t", "bios")
    assert (after.cpus.current, after.cpus.maximum, after.cpus.model, after.cpus.cores) == (1, 4, "Nehalem", 2)
    assert after.memory == values.MemoryValues(64, 256) and after.boot.menu
    assert (after.display.graphics, after.display.port, after.display.video) == ("vnc", 5999, "vga")
    assert len(after.serials) == 2 and after.agent and after.tpm.model == "tpm-crb" and after.rng.present
    kept = _untouched(xml)
    assert all(item in kept for item in before), (before, kept)
