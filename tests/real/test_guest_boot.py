"""The tiny test guest itself: boots under TCG, talks on the serial console,
powers off on ACPI shutdown.  Other real-hypervisor tests build on it."""

from __future__ import annotations

import gzip
import random
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from tests import guest

import libvirt  # noqa: E402


@pytest.mark.real
def test_tiny_guest_boots_answers_and_powers_off_on_acpi_shutdown(tiny_guest, serial_console):
    t0 = time.monotonic()
    dom = tiny_guest()
    started = time.monotonic() - t0
    con = serial_console(dom)
    con.wait_ready(timeout=120)
    booted = time.monotonic() - t0

    # Typed text reaches the shell: the reply is computed, so it cannot be
    # the terminal echoing our input back.
    n = random.randint(1000, 9999)
    con.send(f"echo hello-$(({n}+1))\n")
    con.read_until(f"hello-{n + 1}", timeout=30)
    assert con.run("uname -m") == "x86_64"

    t1 = time.monotonic()
    dom.shutdown()  # ACPI power button
    waited = guest.wait_for_state(dom, libvirt.VIR_DOMAIN_SHUTOFF, timeout=60)
    state, reason = dom.state()
    assert state == libvirt.VIR_DOMAIN_SHUTOFF
    assert reason == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN
    print(f"\ntiny guest: create {started:.1f}s, boot to prompt {booted:.1f}s, ACPI shutdown {time.monotonic() - t1:.1f}s")
    assert waited < 60


@pytest.mark.real
def test_custom_init_and_extra_files(tiny_guest, serial_console):
    init = (
        "#!/bin/sh\n"
        "/sbin/vmtui-guest-setup\n"
        "echo \"MSG=$(cat /etc/message)\" > /dev/ttyS0\n"
        "ls /dev/sr0 > /dev/ttyS0 2>&1\n"
        "poweroff -f\n"
    )
    files = guest.tiny_guest_files(init, {"/etc/message": b"custom-init-works"})
    # An empty IDE CD-ROM drive: the initramfs' ata_piix + sr_mod find it.
    cdrom = "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>"
    dom = tiny_guest(files=files, extra_devices_xml=cdrom)
    con = serial_console(dom)
    con.read_until("MSG=custom-init-works", timeout=120)
    con.read_until("/dev/sr0", timeout=30)
    guest.wait_for_state(dom, libvirt.VIR_DOMAIN_SHUTOFF, timeout=60)


# -- no hypervisor needed -------------------------------------------------


def test_initramfs_is_a_valid_newc_cpio(tmp_path):
    path = guest.build_initramfs(tmp_path / "i.img", "#!/bin/sh\necho hi\n", {"/etc/x/y.txt": b"data"}, modules=None)
    raw = gzip.decompress(path.read_bytes())
    listing = subprocess.run(["cpio", "-t", "-v"], input=raw, capture_output=True, check=True).stdout.decode()
    names = {line.split()[-1] if " -> " not in line else line.split()[-3] for line in listing.splitlines()}
    assert {"init", "bin/busybox", "bin/sh", "etc/x/y.txt", "etc/acpi/PWRF/00000080"} <= names
    assert "dev/console" in names
    # Same inputs, same bytes.
    again = guest.build_initramfs(tmp_path / "j.img", "#!/bin/sh\necho hi\n", {"/etc/x/y.txt": b"data"}, modules=None)
    assert again.read_bytes() == path.read_bytes()


def test_domain_xml_shape():
    xml = guest.domain_xml(
        "vmtui-test-x",
        "/k",
        "/i",
        memory_mib=96,
        extra_devices_xml="<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>",
        graphics=True,
    )
    root = ET.fromstring(xml)
    assert root.get("type") == "qemu"
    assert root.findtext("os/kernel") == "/k"
    assert "console=ttyS0" in root.findtext("os/cmdline")
    assert root.find("features/acpi") is not None
    assert root.findtext("on_poweroff") == "destroy"
    assert root.find("devices/interface") is None  # no NIC
    assert root.find("devices/graphics").get("type") == "vnc"
    assert root.find("devices/disk/target").get("dev") == "hdc"
    assert root.find("memory").text == "96"
