"""The virt-install line and the rules behind the wizard's checks (issue 13,
part 4): exact disk sizes, one --boot, sub-option values virt-install reads
as one value, no --osinfo virt-install does not know; host interfaces for
bridge/macvtap NICs, the CPU mode under TCG, a KVM start failure.

The line is checked by parsing it back like a shell (shlex) and like
virt-install parses a sub-option string (its ``parse_optstr_tuples``:
posix shlex split on commas). tests/real/test_real_wizard.py runs the line
through ``virt-install --print-xml --dry-run``.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

import libvirt
import pytest

from vmtui.core.create.builder import offline_disks
from vmtui.core.create.installer import is_kvm_start_error, switch_to_tcg
from vmtui.core.create.osinfo import OsInfo
from vmtui.core.create.validation import cpu_mode_for, validate_spec
from vmtui.core.create.virt_install import _gib, osinfo_name, virt_install_cmdline, virt_install_command
from vmtui.core.create.vmspec import DiskSpec, InstallSource, NicSpec, VmSpec
from vmtui.core.host.domcaps import HostCaps
from vmtui.core.host.networks import HostInterface, host_interfaces

MiB, GiB = 1024 ** 2, 1024 ** 3
DEBIAN = OsInfo(id="http://debian.org/debian/12", short_id="debian12", short_ids=("debian12",),
                name="Debian 12", family="linux", distro="debian", version="12", virtio=True, uefi=True)


def virt_install_suboptions(optstr: str) -> list[tuple[str, str | None]]:
    """virt-install's own splitting of a sub-option string (virtinst/cli.py,
    ``parse_optstr_tuples``): posix shlex with commas as the only separators."""
    lexer = shlex.shlex(optstr, posix=True)
    lexer.commenters = ""
    lexer.whitespace = ","
    lexer.whitespace_split = True
    out = []
    for opt in list(lexer):
        name, _, value = opt.partition("=")
        out.append((name, value if "=" in opt else None))
    return out


def option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == option]


@pytest.mark.parametrize("size", [64 * MiB, 1, MiB, 20 * GiB, 1536 * MiB, 12_345_678_901, 5 * 1024 * GiB + 7])
def test_disk_size_is_exact_gib(size):
    """virt-install computes ``float(size) * 1024**3``: the text gives back the bytes exactly."""
    text = _gib(size)
    assert "e" not in text.lower() and float(text) * 1024 ** 3 == size
    s = VmSpec(name="vm", install=InstallSource(kind="import", image="/srv/a.qcow2"),
               disks=[DiskSpec(size=size)])
    opts = dict(virt_install_suboptions(option_values(virt_install_command(s), "--disk")[-1]))
    assert float(opts["size"]) * 1024 ** 3 == size


def test_64_mib_disk_is_not_rounded():
    assert _gib(64 * MiB) == "0.0625" and _gib(20 * GiB) == "20" and _gib(1536 * MiB) == "1.5"


@pytest.mark.parametrize("kind,order", [("iso", "hd,cdrom"), ("pxe", "hd,network")])
@pytest.mark.parametrize("secure", [False, True])
def test_define_only_uefi_has_one_boot_option(kind, order, secure):
    s = VmSpec(name="vm", firmware="uefi", secure_boot=secure, start_install=False,
               install=InstallSource(kind=kind, iso="/srv/x.iso" if kind == "iso" else None,
                                     network="default" if kind == "pxe" else None))
    argv = virt_install_command(s, offline_disks(s))
    boots = option_values(argv, "--boot")
    assert len(boots) == 1, boots
    parts = [name for name, _ in virt_install_suboptions(boots[0])]
    assert parts[0] == "uefi" and ",".join(p for p in parts if p in ("hd", "cdrom", "network")) == order
    assert ("firmware.feature0.enabled", "yes" if secure else "no") in virt_install_suboptions(boots[0])
    assert option_values(argv, "--install") == ["no_install=yes"]


def test_multi_line_description_is_one_argument_and_one_value():
    desc = "first line, with a comma\nsecond line: \"quoted\", it's a back\\slash"
    title = "Tëst, <title>"
    s = VmSpec(name="vm", title=title, description=desc, install=InstallSource(kind="iso", iso="/srv/x.iso"))
    line = virt_install_cmdline(s)
    argv = shlex.split(line)
    assert argv == virt_install_command(s)
    metadata = option_values(argv, "--metadata")
    assert len(metadata) == 1  # one shell argument, newline and all
    assert dict(virt_install_suboptions(metadata[0])) == {"title": title, "description": desc}


@pytest.mark.parametrize("value", ["plain", "a,b", "it's", 'say "hi"', "back\\slash", "two\nlines", ",'\"\\"])
def test_suboption_values_survive_virt_install_parsing(value):
    s = VmSpec(name="vm", description=value, install=InstallSource(kind="iso", iso="/srv/x.iso"))
    (metadata,) = option_values(shlex.split(virt_install_cmdline(s)), "--metadata")
    assert virt_install_suboptions(metadata) == [("description", value)]


def test_osinfo_only_names_an_os_the_database_knows():
    known = VmSpec(name="vm", os="debian12")
    assert osinfo_name(known, DEBIAN) == "debian12"
    assert option_values(virt_install_command(known, os=DEBIAN), "--osinfo") == ["debian12"]
    # an id the osinfo-db does not know (no OsInfo for it) would make virt-install refuse the line
    unknown = VmSpec(name="vm", os="fedora99")
    assert option_values(virt_install_command(unknown, os=None), "--osinfo") == ["generic"]
    assert osinfo_name(unknown, DEBIAN) == "generic"  # an OsInfo of another OS says nothing about it


# --- the checks behind the wizard's fields ---------------------------------------


def test_host_interfaces_from_libvirt_with_their_kinds(tmp_path):
    from tests.test_wizard_honest import wizard_host

    conn = libvirt.open(wizard_host(tmp_path))
    try:
        found = host_interfaces(conn)
    finally:
        conn.close()
    assert [(i.name, i.kind, i.active) for i in found] == [("br0", "bridge", True), ("eth0", "ethernet", True)]
    assert found[0].is_bridge and found[1].label == "eth0 (ethernet)"


IFACES = [HostInterface("br0", "bridge", True), HostInterface("eth0", "ethernet", True)]


@pytest.mark.parametrize("nic,problem", [
    (NicSpec("bridge", "br0"), None),
    (NicSpec("bridge", "br9"), "The host has no bridge named 'br9' (its bridges: br0)"),
    (NicSpec("bridge", "eth0"), "'eth0' is not a bridge but an ethernet interface"),
    (NicSpec("macvtap", "eth0"), None),
    (NicSpec("macvtap", "eth7"), "The host has no interface named 'eth7' (its interfaces: br0, eth0)"),
])
def test_bridge_and_macvtap_sources_must_exist(nic, problem):
    s = VmSpec(name="vm", install=InstallSource(kind="import", image="/srv/a.qcow2"), disks=[], nics=[nic])
    found = [e.message for e in validate_spec(s, interfaces=IFACES) if e.field == "nics[0].source"]
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(problem), found
    # interfaces not known (a remote host without an interface driver): no check
    assert not [e for e in validate_spec(s, interfaces=None) if e.field == "nics[0].source"]


def test_cpu_mode_follows_the_virt_type():
    tcg_host_model = HostCaps(kvm_available=True, virt_types=["kvm", "qemu"],
                              cpu_modes={"qemu": {"host-passthrough": False, "host-model": True}})
    no_host_model = replace(tcg_host_model, cpu_modes={"qemu": {"host-passthrough": False, "host-model": False}})
    assert cpu_mode_for("qemu", "host-passthrough", None, tcg_host_model) == ("host-model", None)
    assert cpu_mode_for("qemu", "host-passthrough", None, no_host_model) == ("custom", "qemu64")
    assert cpu_mode_for("qemu", "host-model", None, no_host_model) == ("custom", "qemu64")
    assert cpu_mode_for("qemu", "custom", "Haswell", no_host_model) == ("custom", "Haswell")
    assert cpu_mode_for("kvm", "host-passthrough", None, no_host_model) == ("host-passthrough", None)
    spec = VmSpec(name="vm")
    tcg = switch_to_tcg(spec, tcg_host_model)
    assert (tcg.virt_type, tcg.cpu_mode) == ("qemu", "host-model") and spec.virt_type == "kvm"
    assert not [e for e in validate_spec(tcg, host=tcg_host_model) if e.field in ("cpu_mode", "virt_type")]


def test_kvm_start_errors_are_recognised():
    assert is_kvm_start_error("internal error: process exited while connecting to monitor: "
                              "Could not access KVM kernel module: No such file or directory")
    assert is_kvm_start_error("qemu-system-x86_64: failed to initialize kvm: Permission denied")
    assert not is_kvm_start_error("Cannot get interface MTU on 'br9': No such device")
