"""Where is my VM, is it ready: ``vmtui create --wait`` on the real libvirtd
+ QEMU (qemu:///system), and ``vmtui ip``, ``list``, ``delete``.

The guest is the tiny test guest (tests/guest.py) as a "cloud image": a raw
disk image a BIOS boots (isohybrid), in a per-test pool. Its init behaves as
cloud-init does on a cloud image: it finds the NoCloud seed (any CD-ROM or
disk holding ``meta-data``), brings its NIC up, asks for an address with
``udhcpc``, and prints cloud-init's stage lines and final message on the
serial console -- with the seed's device as the datasource, or
``DataSourceNone`` without one. The NIC is on an isolated libvirt network (no
``<forward>``: nothing leaves the machine) with a per-run name and subnet;
machine ``pc``, so the seed is an IDE CD-ROM the guest's kernel reads.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import random
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests import guest
from tests.prereq import missing
from vmtui.core import storage
from vmtui.core.provision import seed

pytestmark = pytest.mark.real

URI = "qemu:///system"
IMAGES = Path("/var/lib/libvirt/images")
NET_PREFIX = "vmtui-test-"
_counter = itertools.count(1)

REACH_INIT = r"""#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
/sbin/vmtui-guest-setup
echo 1 > /proc/sys/kernel/printk
V=99.1-vmtui-test
say() { echo "[$(cut -d' ' -f1 /proc/uptime)] cloud-init[1]: $*" > /dev/ttyS0; }
stage() { say "Cloud-init v. $V running '$1' at $(date -R). Up $(cut -d' ' -f1 /proc/uptime) seconds."; }
stage init-local
mkdir -p /mnt/seed
seed=
for i in 1 2 3 4 5 6 7 8 9 10; do
  for d in /dev/sr0 /dev/sr1 /dev/vdb /dev/vdc /dev/sda /dev/sdb; do
    [ -b "$d" ] || continue
    if mount -o ro "$d" /mnt/seed 2>/dev/null; then
      if [ -f /mnt/seed/meta-data ]; then seed=$d; break 2; fi
      umount /mnt/seed
    fi
  done
  sleep 0.5
done
if [ -n "$seed" ]; then
  cp /mnt/seed/user-data /tmp/user-data
  sed -n 's/^local-hostname: *//p' /mnt/seed/meta-data > /proc/sys/kernel/hostname
  umount /mnt/seed
fi
ip link set lo up
ip link set eth0 up
stage init
udhcpc -i eth0 -s /etc/udhcpc.script -t 60 -T 1 -n -q > /dev/ttyS0 2>&1
stage modules:config
stage modules:final
if grep -q vmtui-test-wait /tmp/user-data 2>/dev/null; then
  say "waiting for a line on the console"
  read -r line < /dev/ttyS0
  say "got: $line"
fi
if grep -q vmtui-test-fail /tmp/user-data 2>/dev/null; then
  say "$(date '+%Y-%m-%d %H:%M:%S'),000 - cc_scripts_user.py[WARNING]: Failed to run module scripts-user (scripts in /var/lib/cloud/instance/scripts)"
fi
if [ -n "$seed" ]; then ds="DataSourceNoCloud [seed=$seed][dsmode=net]"; else ds=DataSourceNone; fi
say "Cloud-init v. $V finished at $(date -R). Datasource $ds.  Up $(cut -d' ' -f1 /proc/uptime) seconds"
/sbin/vmtui-shell-loop
"""

UDHCPC_SCRIPT = b"""#!/bin/sh
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
esac
exit 0
"""


def unique(kind: str) -> str:
    return f"vmtui-test-{os.getpid()}-{kind}{next(_counter)}-{os.urandom(2).hex()}"


def _remove_stale(conn: libvirt.virConnect) -> None:
    """Networks of earlier, crashed test sessions (their pid is gone; pools: conftest)."""
    net_re = re.compile(re.escape(NET_PREFIX) + r"(\d+)-net")
    for net in conn.listAllNetworks(0):
        m = net_re.match(net.name())
        if m and int(m.group(1)) != os.getpid() and not guest.pid_alive(int(m.group(1))):
            try:
                net.destroy()
            except libvirt.libvirtError:
                pass


def _used_subnets(conn: libvirt.virConnect) -> list[ipaddress.IPv4Network]:
    used = []
    with open("/proc/net/route") as f:
        next(f)
        for line in f:
            parts = line.split()
            dest, mask = int(parts[1], 16), int(parts[7], 16)
            net = ipaddress.IPv4Address(dest.to_bytes(4, "little"))
            used.append(ipaddress.IPv4Network(f"{net}/{ipaddress.IPv4Address(mask.to_bytes(4, 'little'))}",
                                              strict=False))
    for net in conn.listAllNetworks(0):
        for ip in ET.fromstring(net.XMLDesc(0)).iter("ip"):
            if ip.get("address") and ip.get("family", "ipv4") == "ipv4":
                prefix = ip.get("prefix") or ipaddress.IPv4Network(f"0.0.0.0/{ip.get('netmask')}").prefixlen
                used.append(ipaddress.IPv4Network(f"{ip.get('address')}/{prefix}", strict=False))
    return [u for u in used if u.prefixlen > 0]


@pytest.fixture
def network(system_conn):
    """An isolated network (no <forward>) with DHCP, a per-run name and a
    subnet no route and no other network uses; yields (name, subnet)."""
    _remove_stale(system_conn)
    used = _used_subnets(system_conn)
    rnd = random.Random()
    for _ in range(200):
        subnet = ipaddress.IPv4Network(f"10.{rnd.randint(160, 250)}.{rnd.randint(0, 255)}.0/24")
        if not any(subnet.overlaps(u) for u in used):
            break
    else:
        missing("no free 10.x.y.0/24 subnet for the test network")
    name = f"{NET_PREFIX}{os.getpid()}-net{next(_counter)}-{os.urandom(2).hex()}"
    hosts = list(subnet.hosts())
    root = ET.Element("network")
    ET.SubElement(root, "name").text = name
    ip = ET.SubElement(root, "ip", address=str(hosts[0]), netmask=str(subnet.netmask))
    ET.SubElement(ET.SubElement(ip, "dhcp"), "range", start=str(hosts[9]), end=str(hosts[49]))
    net = system_conn.networkCreateXML(ET.tostring(root, encoding="unicode"))
    assert ET.fromstring(net.XMLDesc(0)).find("forward") is None  # isolated
    yield name, subnet
    try:
        libvirt.open(URI).networkLookupByName(name).destroy()
    except libvirt.libvirtError:
        pass


@pytest.fixture(scope="module")
def reach_files(_libvirt_available):
    try:
        return guest.tiny_guest_files(REACH_INIT, {"/etc/udhcpc.script": UDHCPC_SCRIPT})
    except Exception as exc:  # no apt, no network, ...
        missing(f"cannot build the tiny test guest: {exc}")


@pytest.fixture
def cloud_image(system_conn, pool, reach_files, tmp_path) -> str:
    """The tiny guest as volume ``base.qcow2`` of ``pool`` (as a cloud image
    comes; libvirt would take the raw image for an ISO); its pool/volume name."""
    try:
        raw = guest.hybrid_disk_image(tmp_path / "base.img", reach_files.kernel, reach_files.initrd)
    except FileNotFoundError as exc:
        missing(str(exc))
    dest = IMAGES / pool / "base.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(dest)], check=True,
                   capture_output=True)
    os.chmod(dest, 0o644)
    system_conn.storagePoolLookupByName(pool).refresh(0)
    return f"{pool}/base.qcow2"


def spec_text(name: str, image: str, pool: str, network: str, user_data: str) -> str:
    body = "\n".join("      " + line for line in user_data.splitlines())
    return f"""version: 1
name: {name}
virt_type: qemu
machine: pc
cpu_mode: host-model
memory: 256M
vcpus: 1
graphics: none
tablet: false
install:
  kind: cloud
  image: {image}
  cloud_init:
    user_data: |
{body}
    detach_after_first_boot: true
disks:
  - pool: {pool}
nics:
  - kind: network
    source: {network}
"""


def vmtui(*args: str, timeout: float = 400, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LIBVIRT_DEFAULT_URI"}
    return subprocess.run([sys.executable, "-m", "vmtui", *args, "-c", URI], capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=stdin)


def test_create_wait_returns_the_address_from_the_dhcp_lease(system_conn, network, pool, cloud_image, domains,
                                                             tmp_path):
    net_name, subnet = network
    name = unique("reach")
    domains.append(name)
    spec = tmp_path / "vm.yaml"
    spec.write_text(spec_text(name, cloud_image, pool, net_name,
                              "#cloud-config\nusers:\n  - name: admin\n    sudo: ALL=(ALL) NOPASSWD:ALL\n"))
    out = vmtui("create", "--from", str(spec), "--wait", "--timeout", "300")
    assert out.returncode == 0, out.stdout + out.stderr

    dom = system_conn.lookupByName(name)
    mac = ET.fromstring(dom.XMLDesc(0)).find("devices/interface/mac").get("address")
    (lease,) = [lease for lease in system_conn.networkLookupByName(net_name).DHCPLeases() if lease["mac"] == mac]
    ip = lease["ipaddr"]
    assert ipaddress.ip_address(ip) in subnet
    lines = out.stdout.splitlines()
    assert re.fullmatch(rf"Created VM '{name}' \(UUID [0-9a-f-]{{36}}\)", lines[0])
    assert f"VM '{name}' is ready: cloud-init finished (DataSourceNoCloud [seed=/dev/vdb][dsmode=net])" in lines
    assert f"Addresses: {ip}/24 (lease)" in lines
    assert f"ssh admin@{ip}" in lines
    # what the guest said on the way (stderr: progress)
    assert f"'{name}': cloud-init 99.1-vmtui-test running 'init'" in out.stderr

    # the seed went once cloud-init finished: out of the definition, unplugged
    # from the running VM (a virtio disk can be), the volume deleted
    seed_path = str(IMAGES / pool / f"{name}-cidata.iso")
    removed = [line for line in lines if line.startswith("Removed the cloud-init seed")]
    assert removed == [f"Removed the cloud-init seed of '{name}' ({seed_path})."]
    inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert seed.seed_record(inactive) is None

    def sources(xml: str) -> list[str]:
        return [s.get("file") for s in ET.fromstring(xml).iterfind("devices/disk/source") if s.get("file")]
    assert seed_path not in sources(inactive)
    assert seed_path not in sources(dom.XMLDesc(0))
    assert storage.find_volume(system_conn, seed_path) is None
    assert dom.isActive()

    # vmtui ip, vmtui list
    out = vmtui("ip", name)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0].split()[:3] == [f"{ip}/24", "lease", mac]
    out = vmtui("ip", name, "--source", "agent")
    assert out.returncode == 1
    assert f"no address of '{name}' is known: agent: the guest agent is not running in the guest" in out.stderr
    out = vmtui("list")
    assert out.returncode == 0, out.stderr
    row = [line for line in out.stdout.splitlines() if line.startswith(name + " ")]
    assert row and row[0].split()[1:] == ["running", ip, "(lease)"]

    # vmtui delete --storage: the overlay goes, the image it is based on stays
    overlay = [d.find("source").get("file") for d in ET.fromstring(inactive).iter("disk")
               if d.get("device") == "disk"][0]
    out = vmtui("delete", name, "--storage")
    assert out.returncode == 2 and "add --yes" in out.stderr  # no terminal to ask on
    assert system_conn.lookupByName(name).isActive()
    out = vmtui("delete", name, "--storage", "--yes")
    assert out.returncode == 0, out.stderr
    assert f"Delete domain '{name}' (it is running: it will be forced off first)" in out.stderr
    assert f"  delete  {overlay}" in out.stderr
    assert out.stdout.strip() == f"Deleted domain '{name}' and {overlay}"
    assert name not in [d.name() for d in system_conn.listAllDomains()]
    assert storage.find_volume(system_conn, overlay) is None
    assert storage.find_volume(system_conn, str(IMAGES / pool / "base.qcow2")) is not None
    out = vmtui("ip", name)
    assert out.returncode == 1 and f"no domain named '{name}'" in out.stderr


def test_create_wait_with_the_console_fails_with_its_last_lines(system_conn, network, pool, cloud_image, domains,
                                                                tmp_path):
    """--console: the guest's lines in the terminal, keys typed there reach
    the guest; cloud-init reports a failed module: exit 3 with the console's
    last lines. The seed was read, so it goes all the same."""
    from tests.ptyterm import PtyTerminal

    net_name, _ = network
    name = unique("fail")
    domains.append(name)
    spec = tmp_path / "vm.yaml"
    spec.write_text(spec_text(name, cloud_image, pool, net_name,
                              "#cloud-config\nruncmd:\n  - [sh, -c, 'echo vmtui-test-wait vmtui-test-fail']\n"))
    env = {k: v for k, v in os.environ.items() if k != "LIBVIRT_DEFAULT_URI"}
    term = PtyTerminal([sys.executable, "-m", "vmtui", "create", "--from", str(spec), "--wait", "--console",
                        "--timeout", "300", "-c", URI], cols=160, rows=50, env=env)

    def wait_raw(needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in term.raw.decode("utf-8", "replace"):
            assert time.monotonic() < deadline and term.alive(), \
                f"no {needle!r}:\n{term.raw.decode('utf-8', 'replace')[-3000:]}"
            time.sleep(0.05)

    try:
        wait_raw("Connected to the serial console", 120)
        wait_raw("waiting for a line on the console", 300)
        term.send("hello guest\r")  # raw mode: the guest's tty turns CR into a newline
        deadline = time.monotonic() + 120
        while term.alive():
            assert time.monotonic() < deadline, term.raw.decode("utf-8", "replace")[-3000:]
            time.sleep(0.05)
    finally:
        term.close(timeout=5)
    raw = term.raw.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(term.exit_status) == 3, raw[-3000:]
    assert "got: hello guest" in raw
    assert f"vmtui: VM '{name}' is not ready: cloud-init finished with errors: module scripts-user failed" in raw
    assert "The last lines of its console:" in raw
    assert "Failed to run module scripts-user" in raw.split("The last lines of its console:")[1]
    assert f"Removed the cloud-init seed of '{name}'" in raw
    assert seed.seed_record(system_conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) is None


async def test_the_ui_that_created_a_vm_follows_its_boot_and_removes_its_seed(system_conn, network, pool, cloud_image,
                                                                              domains, tmp_path):
    """As after the wizard: the VM is created and started, the app adopts it;
    its row follows the boot on the real console stream, and the seed goes
    when cloud-init finished."""
    from tests.conftest import wait_for
    from tests.notes import Notes
    from vmtui.core.config import Config
    from vmtui.core.connection.service import LibvirtService
    from vmtui.core.create.installer import create_vm
    from vmtui.core.create.vmspec_yaml import load_spec
    from vmtui.ui.app import VmtuiApp

    net_name, subnet = network
    name = unique("ui")
    domains.append(name)
    spec = load_spec(spec_text(name, cloud_image, pool, net_name, "#cloud-config\nhostname: ui\n"))
    notes = Notes()
    app = VmtuiApp(LibvirtService(URI, stats_interval=3600, reconnect=False), Config())
    async with app.run_test(size=(120, 30), message_hook=notes.hook) as pilot:
        await wait_for(lambda: app.ready, timeout=30, what="list")
        from vmtui.core.connection.service import DomainsChanged
        phases: list[str] = []

        def heard(news) -> None:
            for d in news.domains if isinstance(news, DomainsChanged) else ():
                if d.name == name and d.guest.readiness and (not phases or phases[-1] != d.guest.readiness):
                    phases.append(d.guest.readiness)
        app.service.subscribe(heard)
        uuid = await create_vm(app.service, spec, paused=True)
        app.adopt_vm(uuid)
        await wait_for(lambda: app.guests.view(uuid) is not None and app.guests.view(uuid).watched
                       and app.consoles.session(uuid) is not None, timeout=30, what="console read")
        await app.service.resume(uuid)
        await wait_for(lambda: uuid in app.table.domains
                       and str(app.table.get_cell(uuid, "state")) == "running (ready)", timeout=300,
                       what="ready on the row")
        assert phases == ["booting", "cloud-init", "ready"]
        await wait_for(lambda: notes.has(f"First boot of '{name}' done. Removed the cloud-init seed"), timeout=60,
                       what="seed removed")
        await pilot.press("A")
        await wait_for(lambda: str(app.table.get_cell(uuid, "address")), timeout=60, what="address shown")
        ip = str(app.table.get_cell(uuid, "address"))
        assert ipaddress.ip_address(ip) in subnet
    assert storage.find_volume(system_conn, str(IMAGES / pool / f"{name}-cidata.iso")) is None
    assert seed.seed_record(system_conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) is None
