"""Editing an existing VM, in core (vmtui.core.edit): the sections read from
the XML, their rules, their XML edits (which keep what vmtui does not
model), the pending changes of a running VM, and the saves on libvirt's
test driver (what applies now, what at the next boot).

The settings screen on top of this: tests/test_settings_ui.py; a running
guest: tests/real/test_real_settings.py.
"""

from __future__ import annotations

import copy
import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from vmtui.core.edit import apply, pending, rules, values, xmledit
from vmtui.core.edit.result import Applied, EditResult, SettingsError
from vmtui.core.errors import VmtuiError
from vmtui.core.xml.domain_model import Domain

from .conftest import ALPHA, BRAVO, DELTA, SMALL_HOST, host_uri

DATA = Path(__file__).parent / "data"
KEEPER_XML = (DATA / "settings" / "keeper.xml").read_text()
KEEPER = "44444444-4444-4444-8444-000000000001"
INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE

#: what vmtui does not model in keeper.xml, by path: every edit keeps it
UNMODELLED = ["memtune", "features/hyperv", "cpu/feature", "pm", "devices/disk/iotune",
              "devices/interface/bandwidth", "devices/sound", "devices/watchdog", "devices/panic",
              "devices/redirdev", "devices/hub", "devices/memballoon/stats", "devices/input",
              "devices/controller[@type='usb']",
              "metadata/{http://example.org/app/1}note"]


def unmodelled(xml: str, skip: tuple[str, ...] = ()) -> dict[str, str]:
    root = ET.fromstring(xml)
    out = {}
    for path in UNMODELLED:
        if path in skip:
            continue
        el = root.find(path)
        assert el is not None, f"{path} is gone"
        el = copy.deepcopy(el)
        el.tail = None
        out[path] = ET.canonicalize(ET.tostring(el, encoding="unicode"), strip_text=True, rewrite_prefixes=True)
    g = root.find("devices/graphics")
    out["graphics password"] = g.get("passwd") if g is not None else "(no display)"
    return out


def _settings(xml: str = KEEPER_XML, live: str | None = None) -> values.Settings:
    return values.read_settings(xml, live, uuid=KEEPER)


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


def test_read_settings_of_a_domain():
    s = _settings()
    assert s.name == "keeper" and not s.running and s.q35
    assert s.overview == values.OverviewValues(title="Keeps what it is given", description="", autostart=False,
                                               firmware="bios")
    assert (s.cpus.current, s.cpus.maximum, s.cpus.mode, s.cpus.model) == (2, 2, "custom", "qemu64")
    assert not s.cpus.has_topology
    assert s.memory == values.MemoryValues(current_mib=512, maximum_mib=512)
    assert [(e.key, e.enabled) for e in s.boot.entries] == [("hd", True), ("cdrom", False), ("network", False),
                                                           ("fd", False)]
    assert not s.boot.per_device
    (nic,) = s.nics
    assert nic.values == values.NicValues(kind="network", source="default", model="virtio", mac="52:54:00:aa:00:01",
                                          link_up=True, mode="bridge")
    assert nic.editable and nic.label == "network 'default'"
    assert s.display == values.DisplayValues(graphics="vnc", listen="127.0.0.1", port=None, video="virtio")
    assert [(p.port, p.type) for p in s.serials] == [(0, "pty")]
    assert not s.agent and s.tpm.model == "" and not s.rng.present and s.balloon


def test_read_settings_per_device_boot_order_and_live_facts():
    dom = Domain.parse(KEEPER_XML)
    dom.os.boot_devices = []
    dom.devices.disks[0].boot_order = 2
    dom.devices.interfaces[0].boot_order = 1
    config = dom.to_xml()
    live = Domain.parse(config)
    live.vcpus_current = 1
    live.current_memory_kib = 256 * 1024
    s = values.read_settings(config, live.to_xml(), uuid=KEEPER)
    assert s.boot.per_device
    assert [(e.key, e.enabled) for e in s.boot.entries] == [("nic:52:54:00:aa:00:01", True), ("disk:vda", True)]
    assert s.running and s.live_vcpus == 1 and s.live_max_vcpus == 2 and s.live_memory_mib == 256


# ---------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------


def _errors(found):
    return rules.errors_of(found)


def test_rules_overview():
    s, o = _settings(), values.Offers()
    assert _errors(rules.check_overview(values.OverviewValues(title="a\nb"), s, o)) == {
        "title": "The title must be a single line (use the description for more)"}
    assert _errors(rules.check_overview(values.OverviewValues(title="a\x1bb", description="x\x00"), s, o)) == {
        "title": "The title must not contain control characters",
        "description": "The description must not contain control characters (except newlines and tabs)"}
    running = dataclasses.replace(s, running=True)
    v = dataclasses.replace(s.overview, firmware="efi")
    assert _errors(rules.check_overview(v, running, o)) == {"firmware": "Shut the VM off to change its firmware"}
    found = rules.check_overview(v, s, o)
    assert not _errors(found) and found[0].severity == "warning"
    no_uefi = values.Offers(firmware=["bios"])
    assert "no UEFI firmware" in _errors(rules.check_overview(v, s, no_uefi))["firmware"]
    pc = dataclasses.replace(s, machine="pc-i440fx-7.2")
    assert _errors(rules.check_overview(dataclasses.replace(v, firmware="efi-secure"), pc, o)) == {
        "firmware": "Secure Boot needs the q35 machine type (it uses SMM)"}


def test_rules_cpus():
    s = _settings()
    o = values.Offers(known=True, max_vcpus=16, host_cpus=8, cpu_modes=["", "host-model", "custom"],
                      cpu_models=["qemu64", "Skylake-Client"])
    ok = dataclasses.replace(s.cpus, current=2, maximum=4, sockets=1, cores=2, threads=2)
    assert rules.check_cpus(ok, s, o) == []
    assert _errors(rules.check_cpus(dataclasses.replace(ok, current=5), s, o)) == {
        "cpus.current": "At most the maximum (4)"}
    assert _errors(rules.check_cpus(dataclasses.replace(ok, maximum=32, cores=16), s, o)) == {
        "cpus.maximum": "At most 16 vCPUs on this hypervisor"}
    assert _errors(rules.check_cpus(dataclasses.replace(ok, cores=1), s, o)) == {
        "cpus.topology": "1 sockets × 1 cores × 2 threads is 2, not the maximum of 4 vCPUs"}
    assert "at least 1" in _errors(rules.check_cpus(dataclasses.replace(ok, sockets=None), s, o))["cpus.topology"]
    assert _errors(rules.check_cpus(dataclasses.replace(ok, model=""), s, o)) == {
        "cpus.model": "Choose a CPU model for the named-model mode"}
    assert _errors(rules.check_cpus(dataclasses.replace(ok, model="Nehalem"), s, o)) == {
        "cpus.model": "This host's QEMU has no usable CPU model 'Nehalem'"}
    assert _errors(rules.check_cpus(dataclasses.replace(ok, mode="maximum"), s, o)) == {
        "cpus.mode": "maximum is not supported by test on this host"}
    tcg = dataclasses.replace(s, virt_type="qemu")
    assert "TCG" in _errors(rules.check_cpus(dataclasses.replace(ok, mode="host-passthrough"), tcg, o))["cpus.mode"]
    warn = rules.check_cpus(dataclasses.replace(ok, maximum=12, sockets=1, cores=12, threads=1), s, o)
    assert [(f.field, f.severity) for f in warn] == [("cpus.maximum", "warning")]


def test_rules_memory():
    s, o = _settings(), values.Offers(host_memory_mib=4096)
    assert rules.check_memory(values.MemoryValues(256, 1024), s, o) == []
    assert _errors(rules.check_memory(values.MemoryValues(2048, 1024), s, o)) == {
        "memory.current": "At most the maximum memory (1G)"}
    assert _errors(rules.check_memory(values.MemoryValues(1024, 8192), s, o)) == {
        "memory.maximum": "8G is more than the host's 4G of memory"}
    no_balloon = dataclasses.replace(s, balloon=False)
    (w,) = rules.check_memory(values.MemoryValues(256, 1024), no_balloon, o)
    assert w.severity == "warning" and "no balloon" in w.message
    numa = dataclasses.replace(s, numa=True)
    assert "NUMA" in _errors(rules.check_memory(values.MemoryValues(512, 1024), numa, o))["memory.maximum"]


def test_rules_boot():
    s, o = _settings(), values.Offers()
    off = [dataclasses.replace(e, enabled=False) for e in s.boot.entries]
    assert _errors(rules.check_boot(values.BootValues(entries=off), s, o)) == {
        "boot.order": "Choose at least one device to boot from (or a kernel below)"}
    assert rules.check_boot(values.BootValues(entries=off, kernel="/boot/vmlinuz"), s, o) == []
    errs = _errors(rules.check_boot(values.BootValues(entries=s.boot.entries, kernel="vmlinuz", initrd="/x",
                                                      menu=True, menu_timeout_ms=70000), s, o))
    assert errs == {"boot.kernel": "Give the kernel as an absolute path on the host",
                    "boot.menu_timeout": "The menu timeout is 0 to 65535 ms"}
    assert _errors(rules.check_boot(values.BootValues(entries=s.boot.entries, cmdline="quiet"), s, o)) == {
        "boot.cmdline": "Kernel arguments need a kernel (direct kernel boot)"}


def test_rules_nic():
    s = _settings()
    o = values.Offers(networks=["default", "lab"], bridges=["br0"], interfaces=["eth0", "br0"])
    assert rules.check_nic(values.NicValues(source="lab"), s, o) == []
    assert _errors(rules.check_nic(values.NicValues(source="nope"), s, o)) == {
        "nic.source": "No virtual network named 'nope'"}
    assert _errors(rules.check_nic(values.NicValues(kind="bridge", source="br9"), s, o)) == {
        "nic.source": "The host has no bridge 'br9' (bridges: br0)"}
    assert _errors(rules.check_nic(values.NicValues(kind="macvtap", source=""), s, o)) == {
        "nic.source": "Choose the host interface"}
    assert _errors(rules.check_nic(values.NicValues(source="lab", mac="01:00:00:00:00:01"), s, o)) == {
        "nic.mac": "This is a multicast address: the first byte must be even (e.g. 52:54:00:...)"}
    assert _errors(rules.check_nic(values.NicValues(source="lab", mac="52:54:00:AA:00:01"), s, o)) == {
        "nic.mac": "Another NIC of this VM has the MAC address 52:54:00:aa:00:01"}
    # the NIC itself keeps its address
    same = values.NicValues(source="lab", mac="52:54:00:aa:00:01")
    assert rules.check_nic(same, s, o, old_mac="52:54:00:aa:00:01") == []
    assert _errors(rules.check_nic(values.NicValues(source="lab", model="e1000 e"), s, o)) == {
        "nic.model": "'e1000 e' is not a NIC model name"}


def test_rules_display_tpm_rng():
    s, o = _settings(), values.Offers(graphics=["vnc", "none"], video=["virtio", "vga"],
                                      tpm_models=["tpm-crb"], tpm_backends=["passthrough"])
    assert _errors(rules.check_display(values.DisplayValues("vnc", "localhost", None, "virtio"), s, o)) == {
        "display.listen": "Enter an IP address to listen on, e.g. 127.0.0.1"}
    assert _errors(rules.check_display(values.DisplayValues("vnc", "127.0.0.1", 80, "virtio"), s, o)) == {
        "display.port": "The port is 5900 to 65535 (or empty: chosen at start)"}
    assert _errors(rules.check_display(values.DisplayValues("spice", "127.0.0.1", None, "qxl"), s, o)) == {
        "display.graphics": "This host offers no spice display", "display.video": "This host offers no qxl video card"}
    (w,) = rules.check_display(values.DisplayValues("vnc", "0.0.0.0", None, "virtio"), s, o)
    assert w.severity == "warning"
    assert _errors(rules.check_tpm(values.TpmValues(model="tpm-crb"), s, o)) == {
        "tpm.backend": "This host offers no emulator TPM (install swtpm for an emulated TPM)"}
    assert _errors(rules.check_tpm(values.TpmValues(model="tpm-tis", backend="passthrough", path="tpm0"), s, o)) == {
        "tpm.model": "This host offers no tpm-tis TPM (offered: tpm-crb)",
        "tpm.path": "Give the TPM device as an absolute path on the host"}
    assert _errors(rules.check_rng(values.RngValues(True, "urandom"), s, o)) == {
        "rng.source": "Give the random source as an absolute path on the host"}
    assert rules.check_rng(values.RngValues(True, "/dev/urandom"), s, o) == []


# ---------------------------------------------------------------------------
# XML edits keep what vmtui does not model
# ---------------------------------------------------------------------------


def _edit(fn) -> str:
    dom = Domain.parse(KEEPER_XML)
    fn(dom)
    return dom.to_xml()


@pytest.mark.parametrize("name", ["overview", "cpus", "memory", "boot", "nic add", "nic change", "nic remove",
                                  "display", "serial", "agent", "tpm", "rng"])
def test_every_xml_edit_keeps_what_is_not_modelled(name):
    s = _settings()
    edits = {
        "overview": lambda d: xmledit.set_overview(d, values.OverviewValues("New", "Two\nlines", False, "efi")),
        "cpus": lambda d: xmledit.set_cpus(d, values.CpuValues(2, 4, "custom", "Skylake-Client", 2, 2, 1)),
        "memory": lambda d: xmledit.set_memory(d, values.MemoryValues(256, 1024)),
        "boot": lambda d: xmledit.set_boot(d, values.BootValues(
            entries=list(reversed(s.boot.entries)), menu=True, menu_timeout_ms=3000, kernel="/boot/vmlinuz",
            cmdline="console=ttyS0")),
        "nic add": lambda d: xmledit.add_nic(d, values.NicValues(kind="bridge", source="br0", model="e1000e")),
        "nic change": lambda d: xmledit.change_nic(xmledit.find_nic(d, "52:54:00:aa:00:01"), values.NicValues(
            kind="network", source="lab", model="e1000e", mac="52:54:00:aa:00:01", link_up=False)),
        "nic remove": lambda d: xmledit.remove_nic(d, "52:54:00:aa:00:01"),
        "display": lambda d: xmledit.set_display(d, values.DisplayValues("vnc", "::1", 5905, "vga"), s.display),
        "serial": lambda d: (xmledit.add_serial(d), xmledit.remove_serial(d, 0)),
        "agent": lambda d: xmledit.set_agent(d, True),
        "tpm": lambda d: xmledit.set_tpm(d, values.TpmValues("tpm-crb", "emulator", "2.0")),
        "rng": lambda d: xmledit.set_rng(d, values.RngValues(True, "/dev/urandom")),
    }
    after = _edit(edits[name])
    assert after != Domain.parse(KEEPER_XML).to_xml()
    skip = ("devices/interface/bandwidth",) if name == "nic remove" else ()  # it went with its NIC
    assert unmodelled(after, skip) == unmodelled(KEEPER_XML, skip)


def test_xml_edits_write_what_was_asked():
    s = _settings()
    root = ET.fromstring(_edit(lambda d: xmledit.set_cpus(d, values.CpuValues(2, 4, "host-model", "", 1, 2, 2))))
    assert root.find("vcpu").text == "4" and root.find("vcpu").get("current") == "2"
    cpu = root.find("cpu")
    assert cpu.get("mode") == "host-model" and cpu.find("model") is None and cpu.get("match") is None
    assert cpu.find("topology").attrib == {"sockets": "1", "cores": "2", "threads": "2"}
    assert cpu.find("feature").get("name") == "x2apic"
    root = ET.fromstring(_edit(lambda d: xmledit.set_overview(d, values.OverviewValues("", "", False,
                                                                                       "efi-secure"))))
    assert root.find("title") is None and root.find("os").get("firmware") == "efi"
    assert {f.get("name"): f.get("enabled") for f in root.iter("feature") if f.get("enabled")} == {
        "secure-boot": "yes", "enrolled-keys": "yes"}
    assert root.find("features/smm").get("state") == "on"
    root = ET.fromstring(_edit(lambda d: xmledit.set_boot(d, values.BootValues(
        entries=[values.BootEntry("cdrom", "CD-ROM", True), values.BootEntry("hd", "Hard disk", True)],
        menu=True, menu_timeout_ms=0))))
    assert [b.get("dev") for b in root.findall("os/boot")] == ["cdrom", "hd"]
    assert root.find("os/bootmenu").attrib == {"enable": "yes", "timeout": "0"}
    root = ET.fromstring(_edit(lambda d: xmledit.set_display(d, values.DisplayValues("spice", "127.0.0.1", None,
                                                                                     ""), s.display)))
    g = root.find("devices/graphics")
    assert g.get("type") == "spice" and g.get("passwd") is None and root.find("devices/video") is None
    root = ET.fromstring(_edit(lambda d: xmledit.set_display(d, values.DisplayValues("vnc", "::1", 5905, "vga"),
                                                             s.display)))
    g = root.find("devices/graphics")
    assert (g.get("listen"), g.find("listen").get("address"), g.get("port"), g.get("autoport")) == (
        "::1", "::1", "5905", "no")
    assert g.get("passwd") == "s3cret"
    assert root.find("devices/video/model").attrib == {"type": "vga", "heads": "1", "primary": "yes"}


def test_per_device_boot_order_is_renumbered_around_other_devices():
    dom = Domain.parse(KEEPER_XML)
    dom.os.boot_devices = []
    dom.devices.disks[0].boot_order = 1
    ET.SubElement(dom.devices.element.find("redirdev"), "boot", order="2")
    s = values.read_settings(dom.to_xml(), None)
    entries = [dataclasses.replace(e, enabled=True) for e in reversed(s.boot.entries)]
    xmledit.set_boot(dom, values.BootValues(entries=entries, per_device=True))
    assert dom.devices.interfaces[0].boot_order == 1
    assert dom.devices.disks[0].boot_order == 3  # 2 is the redirected device's
    assert dom.element.find("os/boot") is None


def test_removing_serial_port_0_takes_its_console():
    dom = Domain.parse(KEEPER_XML)
    assert xmledit.remove_serial(dom, 0)
    assert not list(dom.devices.serials) and not list(dom.devices.consoles)
    assert not xmledit.remove_serial(dom, 0)


# ---------------------------------------------------------------------------
# pending changes
# ---------------------------------------------------------------------------

LIVE_EXTRAS = """<domain type='test' id='7'>
  <name>keeper</name>
  <uuid>44444444-4444-4444-8444-000000000001</uuid>
  <title>Keeps what it is given</title>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><boot dev='hd'/></os>
  <cpu mode='custom' match='exact' check='full'><model fallback='forbid'>EPYC</model>
    <feature policy='require' name='x2apic'/></cpu>
  <devices>
    <disk type='file' device='disk'><source file='/var/lib/libvirt/images/keeper.qcow2' index='1'/>
      <target dev='vda' bus='virtio'/><alias name='virtio-disk0'/></disk>
    <interface type='network'><mac address='52:54:00:aa:00:01'/>
      <source network='default' portid='4b4e7a8e-6f3c-4d0a-9a57-2f0d1c9e8b11' bridge='virbr0'/>
      <target dev='vnet3'/><model type='virtio'/><alias name='net0'/></interface>
    <serial type='pty'><source path='/dev/pts/3'/><target port='0'/><alias name='serial0'/></serial>
    <graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/></graphics>
    <video><model type='virtio' heads='1' primary='yes'/><alias name='video0'/></video>
  </devices>
</domain>"""


def test_what_a_running_vm_fills_in_is_not_pending():
    config = Domain.parse(LIVE_EXTRAS)
    config.cpu.mode = "host-model"
    config.cpu.model = None
    config.cpu.match = config.cpu.check = None
    assert pending.pending_changes(LIVE_EXTRAS, config.to_xml()) == []


def test_pending_changes_name_each_difference():
    config = Domain.parse(LIVE_EXTRAS)
    config.memory_kib = 1024 * 1024
    config.vcpus = 4
    xmledit.add_nic(config, values.NicValues(source="lab", mac="52:54:00:aa:00:02"))
    xmledit.find_nic(config, "52:54:00:aa:00:01").link_state = "down"
    changes = pending.pending_changes(LIVE_EXTRAS, config.to_xml())
    assert [c.describe() for c in changes] == [
        "vCPUs: 2 now, 4 at next boot",
        "Maximum vCPUs: 2 now, 4 at next boot",
        "Maximum memory: 512.0 MiB now, 1.0 GiB at next boot",
        "NIC 52:54:00:aa:00:01: network 'default', virtio, link up now, network 'default', virtio, link down "
        "at next boot",
        "NIC 52:54:00:aa:00:02: none now, network 'lab', virtio, link up at next boot",
    ]
    assert pending.pending_text(changes).startswith("Pending at next boot: vCPUs: 2 now, 4 at next boot; ")
    assert pending.pending_text([]) == ""


def test_edit_result_says_now_and_next_boot():
    r = EditResult("web", True, [Applied("Memory", "1G", True, "the guest's balloon driver gives or takes it"),
                                 Applied("Maximum memory", "4G", False, "the maximum is fixed while the VM runs")])
    assert r.summary() == ("Applied now: Memory 1G (the guest's balloon driver gives or takes it). At the next "
                           "boot of 'web': Maximum memory 4G (the maximum is fixed while the VM runs).")
    assert EditResult("web", False, [Applied("Title", "'x'")]).summary() == \
        "Saved: Title 'x'. 'web' uses it when it starts."
    assert EditResult("web", False).summary() == "Nothing changed in 'web'."


# ---------------------------------------------------------------------------
# saving on the test driver
# ---------------------------------------------------------------------------


@pytest.fixture
def conn():
    c = libvirt.open(host_uri(SMALL_HOST))
    c.defineXML(KEEPER_XML)
    yield c
    c.close()


def _config(conn, uuid: str) -> str:
    return conn.lookupByUUIDString(uuid).XMLDesc(INACTIVE)


def test_load_editor_on_the_test_driver(conn):
    state = apply.load_editor(conn, ALPHA)
    assert state.settings.running and state.settings.name == "alpha"
    assert not state.offers.known  # the test driver has no domain capabilities
    assert state.offers.networks == ["default"] and state.offers.host_cpus == 8
    assert state.offers.host_memory_mib == 16384 and state.pending == []


def test_save_a_shut_off_vm_keeps_what_is_not_modelled(conn):
    before = unmodelled(_config(conn, KEEPER))
    s = apply.load_editor(conn, KEEPER).settings
    results = [
        apply.save_overview(conn, KEEPER, dataclasses.replace(s.overview, title="Kept", autostart=True)),
        apply.save_cpus(conn, KEEPER, dataclasses.replace(s.cpus, current=2, maximum=4, sockets=1, cores=4,
                                                          threads=1)),
        apply.save_memory(conn, KEEPER, values.MemoryValues(256, 1024)),
        apply.save_boot(conn, KEEPER, dataclasses.replace(s.boot, menu=True)),
        apply.add_nic(conn, KEEPER, values.NicValues(source="default", model="e1000e")),
        apply.set_nic_link(conn, KEEPER, "52:54:00:aa:00:01", False),
        apply.save_display(conn, KEEPER, dataclasses.replace(s.display, port=5910)),
        apply.add_serial(conn, KEEPER),
        apply.set_agent(conn, KEEPER, True),
        apply.save_tpm(conn, KEEPER, values.TpmValues("tpm-crb")),
        apply.save_rng(conn, KEEPER, values.RngValues(True)),
    ]
    assert all(r.changed and not r.running and not r.now or r.now == [c for c in r.changes if c.what == "Autostart"]
               for r in results)
    after = _config(conn, KEEPER)
    assert unmodelled(after) == before
    s2 = values.read_settings(after, None)
    assert s2.overview.title == "Kept" and conn.lookupByUUIDString(KEEPER).autostart() == 1
    assert (s2.cpus.current, s2.cpus.maximum, s2.cpus.cores) == (2, 4, 4)
    assert s2.memory == values.MemoryValues(256, 1024) and s2.boot.menu
    assert [n.values.link_up for n in s2.nics] == [False, True] and s2.nics[1].values.model == "e1000e"
    assert s2.display.port == 5910 and len(s2.serials) == 2 and s2.agent and s2.tpm.model == "tpm-crb"
    assert s2.rng.present


def test_save_on_a_running_vm_says_what_waits(conn):
    s = apply.load_editor(conn, DELTA).settings
    r = apply.save_cpus(conn, DELTA, dataclasses.replace(s.cpus, current=2))
    assert [(c.what, c.live) for c in r.changes] == [("vCPUs", True)]
    assert conn.lookupByUUIDString(DELTA).vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) == 2
    r = apply.save_memory(conn, DELTA, values.MemoryValues(2048, 8192))
    assert [(c.what, c.live, c.note) for c in r.changes] == [
        ("Maximum memory", False, "the maximum is fixed while the VM runs"),
        ("Memory", False, "the running VM has no balloon device")]
    r = apply.add_nic(conn, DELTA, values.NicValues(source="default", mac="52:54:00:00:00:99"))
    (c,) = r.changes
    assert not c.live and c.note.startswith("not live: this function is not supported by the connection driver")
    assert "At the next boot of 'delta'" in r.summary()
    p = apply.pending_of(conn, DELTA)
    assert [x.what for x in p] == ["Memory", "Maximum memory", "NIC 52:54:00:00:00:99"]
    r = apply.save_overview(conn, DELTA, dataclasses.replace(s.overview, title="Live title"))
    assert [(c.what, c.live) for c in r.changes] == [("Title", True)]
    assert ET.fromstring(conn.lookupByUUIDString(DELTA).XMLDesc(0)).findtext("title") == "Live title"


def test_bad_values_change_nothing(conn):
    before = _config(conn, BRAVO)
    s = apply.load_editor(conn, BRAVO).settings
    with pytest.raises(SettingsError) as err:
        apply.save_cpus(conn, BRAVO, dataclasses.replace(s.cpus, current=3))
    assert err.value.errors == {"cpus.current": "At most the maximum (2)"}
    assert err.value.message == "Cannot change the CPUs of domain 'bravo': At most the maximum (2)"
    with pytest.raises(SettingsError):
        apply.add_nic(conn, BRAVO, values.NicValues(source="nowhere"))
    with pytest.raises(VmtuiError, match="it has no NIC with MAC address 52:54:00:00:00:77"):
        apply.remove_nic(conn, BRAVO, "52:54:00:00:00:77")
    assert _config(conn, BRAVO) == before


class Refusing:
    """A connection whose define fails the way libvirt's does."""

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def defineXML(self, xml):
        libvirt.virResetLastError()  # the error is this one, not the last call's
        raise libvirt.libvirtError("XML error: the definition was refused")


def test_a_refused_define_changes_nothing_and_names_the_vm(conn):
    before = _config(conn, BRAVO)
    s = apply.load_editor(conn, BRAVO).settings
    with pytest.raises(VmtuiError) as err:
        apply.save_memory(Refusing(conn), BRAVO, dataclasses.replace(s.memory, current_mib=1024))
    assert err.value.message.startswith("Cannot change the memory of domain 'bravo': ")
    assert "refused" in err.value.message
    assert _config(conn, BRAVO) == before


def test_transient_vms_are_not_edited(conn):
    xml = KEEPER_XML.replace("<name>keeper</name>", "<name>passing</name>").replace(
        "44444444-4444-4444-8444-000000000001", "44444444-4444-4444-8444-000000000002")
    conn.createXML(xml, 0)
    with pytest.raises(VmtuiError, match="it is transient: there is no persistent definition to change"):
        apply.load_editor(conn, "44444444-4444-4444-8444-000000000002")
