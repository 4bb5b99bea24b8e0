"""create_vm / preview / export on the test driver (tests/data/host-small.xml),
host capabilities, and fetching an install tree from a local HTTP server."""

from __future__ import annotations

import functools
import os
import re
import http.server

import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from vmtui.core.create import builder, installer
from vmtui.core.host import domcaps
from vmtui.core import storage
from vmtui.core.host.domcaps import HostCaps, host_caps, merge_domcaps, parse_domcaps
from vmtui.core.errors import VmtuiError
from vmtui.core.create.installer import InvalidSpec, create_vm, export_spec, find_tree_boot_files, preview
from vmtui.core.create.vmspec import DiskSpec, InstallSource, NicSpec, VmSpec
from vmtui.core.create.vmspec_yaml import dump_spec, load_spec

GIB = 1024 ** 3
DATA = Path(__file__).parent / "data" / "builder"
POOL_VOLUMES = {"alpha.qcow2", "bravo.img", "shared.img", "charlie.qcow2", "delta.qcow2", "echo.qcow2",
                "install.iso"}


def iso_spec(name="newvm", **kw) -> VmSpec:
    base = dict(name=name, virt_type="qemu", cpu_mode="host-model", memory_mib=1024, vcpus=1,
                install=InstallSource(kind="iso", iso="default/install.iso"),
                disks=[DiskSpec(size=5 * GIB), DiskSpec(size=GIB, format="raw", provisioning="thick")])
    base.update(kw)
    return VmSpec(**base)


async def volumes(service) -> dict[str, storage.VolumeInfo]:
    vols = await service.call(lambda c: storage.list_volumes(c, "default"))
    return {v.name: v for v in vols}


async def domain_names(service) -> set[str]:
    return set(await service.call(lambda c: [d.name() for d in c.listAllDomains(0)]))


def disks_of(xml: str) -> list[ET.Element]:
    return ET.fromstring(xml).findall("devices/disk")


# --- host capabilities ----------------------------------------------------------


async def test_host_caps_on_the_test_driver_falls_back(service):
    caps = await host_caps(service)
    assert not caps.from_libvirt and not caps.kvm_available
    assert caps.default_virt_type == "qemu"
    assert caps.machines == ["pc", "q35"] and caps.efi_autoselect and caps.uefi
    assert caps.cpus == 8 and caps.memory_total_kib == 16 * 1024 * 1024


def test_parse_domcaps():
    dc = parse_domcaps((DATA / "domcaps-qemu-q35.xml").read_text())
    assert dc.emulator == "/usr/bin/qemu-system-x86_64" and dc.domain == "qemu"
    assert dc.machine == "pc-q35-7.2" and dc.arch == "x86_64" and dc.max_vcpus == 288
    assert dc.efi_autoselect and dc.secure_boot
    assert [lo.path for lo in dc.uefi_loaders] == ["/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
                                                   "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
                                                   "/usr/share/OVMF/OVMF_CODE_4M.fd"]
    assert [lo.secure for lo in dc.uefi_loaders] == [True, True, False]
    assert dc.cpu_modes == {"host-passthrough": False, "maximum": True, "host-model": True, "custom": True}
    assert "virtio" in dc.disk_buses and "vnc" in dc.graphics_types
    with pytest.raises(domcaps.DomCapsError):
        parse_domcaps("<capabilities/>")
    with pytest.raises(domcaps.DomCapsError):
        parse_domcaps("<domainCapabilities>")


def test_merge_domcaps():
    dc = parse_domcaps((DATA / "domcaps-qemu-q35.xml").read_text())
    caps = merge_domcaps({("qemu", "q35"): dc})
    assert caps.from_libvirt and not caps.kvm_available and caps.virt_types == ["qemu"]
    assert caps.machines == ["q35"] and caps.canonical_machines == {"q35": "pc-q35-7.2"}
    assert caps.cpu_mode_supported("qemu", "host-passthrough") is False
    assert caps.cpu_mode_supported("kvm", "host-passthrough") is None
    assert caps.emulator_for("qemu", "q35") == "/usr/bin/qemu-system-x86_64"
    assert caps.uefi_loaders_for("qemu", "q35", secure=False)[0].path.endswith("OVMF_CODE_4M.fd")
    kvm = merge_domcaps({("kvm", "q35"): dc, ("qemu", "pc"): dc})
    assert kvm.kvm_available and kvm.default_virt_type == "kvm" and kvm.virt_types == ["kvm", "qemu"]
    empty = merge_domcaps({})
    assert not empty.from_libvirt and empty.default_virt_type == "qemu"


# --- create -----------------------------------------------------------------------


async def test_create_iso_vm_defines_starts_and_makes_volumes(service):
    events = []
    uuid = await create_vm(service, iso_spec(), progress=lambda m, f: events.append((m, f)))
    vols = await volumes(service)
    assert set(vols) == POOL_VOLUMES | {"newvm.qcow2", "newvm-1.img"}
    assert (vols["newvm.qcow2"].format, vols["newvm.qcow2"].capacity) == ("qcow2", 5 * GIB)
    assert (vols["newvm-1.img"].format, vols["newvm-1.img"].capacity) == ("raw", GIB)
    assert vols["newvm-1.img"].allocation == GIB  # thick

    info = service.domains[uuid]
    assert info.name == "newvm" and info.is_active and info.persistent
    live = await service.domain_xml(uuid)
    final = await service.domain_xml(uuid, inactive=True)
    root_live, root_final = ET.fromstring(live), ET.fromstring(final)
    assert root_live.findtext("on_reboot") == "destroy" and root_final.findtext("on_reboot") == "restart"
    assert [b.get("dev") for b in root_live.findall("os/boot")] == ["cdrom", "hd"]
    assert [b.get("dev") for b in root_final.findall("os/boot")] == ["hd"]
    cd_live = [d for d in disks_of(live) if d.get("device") == "cdrom"][0]
    cd_final = [d for d in disks_of(final) if d.get("device") == "cdrom"][0]
    assert cd_live.find("source").get("file") == "/var/lib/libvirt/images/install.iso"
    assert cd_final.find("source") is None
    sources = [d.find("source").get("file") for d in disks_of(final) if d.get("device") == "disk"]
    assert sources == [vols["newvm.qcow2"].path, vols["newvm-1.img"].path]

    messages = [m for m, _ in events]
    assert "Creating disk 1 of 2" in messages and "Creating disk 2 of 2" in messages
    fractions = [f for _, f in events if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


async def test_define_only_with_autostart(service):
    uuid = await create_vm(service, iso_spec(start_install=False, autostart=True))
    info = service.domains[uuid]
    assert not info.is_active and info.autostart
    root = ET.fromstring(await service.domain_xml(uuid, inactive=True))
    assert [b.get("dev") for b in root.findall("os/boot")] == ["hd", "cdrom"]


async def test_import_and_none_start_the_definition(service):
    spec = iso_spec(name="imported", install=InstallSource(kind="import", image="default/charlie.qcow2"), disks=[])
    uuid = await create_vm(service, spec)
    assert service.domains[uuid].is_active
    xml = await service.domain_xml(uuid)
    assert [d.find("source").get("file") for d in disks_of(xml)] == ["/var/lib/libvirt/images/charlie.qcow2"]
    assert ET.fromstring(xml).findtext("on_reboot") == "restart"
    assert set(await volumes(service)) == POOL_VOLUMES


async def test_cloud_overlay(service):
    spec = iso_spec(name="cloudy", install=InstallSource(kind="cloud", image="default/echo.qcow2"),
                    disks=[DiskSpec(size=8 * GIB)])
    await create_vm(service, spec)
    vols = await volumes(service)
    assert vols["cloudy.qcow2"].format == "qcow2"
    assert vols["cloudy.qcow2"].backing == "/var/lib/libvirt/images/echo.qcow2"


async def test_invalid_spec_creates_nothing(service):
    before = await volumes(service), await domain_names(service)
    spec = iso_spec(name="alpha", memory_mib=64 * 1024, nics=[NicSpec(source="nope")],
                    disks=[DiskSpec(size=GIB, name="bravo.img", format="raw")])
    with pytest.raises(InvalidSpec) as ei:
        await create_vm(service, spec)
    assert {e.field for e in ei.value.errors} == {"name", "memory", "nics[0].source", "disks[0].name"}
    assert "Cannot create VM 'alpha'" in str(ei.value)
    assert (await volumes(service), await domain_names(service)) == before


@pytest.mark.parametrize("step,fn", [
    ("start the installation", "_start_install"),
    ("define the domain", "_define"),
    ("set autostart", "_set_autostart"),
])
async def test_failure_removes_everything(service, monkeypatch, step, fn):
    before = set(await volumes(service)), await domain_names(service)

    def boom(*args, **kw):
        raise libvirt.libvirtError("injected failure")

    monkeypatch.setattr(installer, fn, boom)
    with pytest.raises(VmtuiError) as ei:
        await create_vm(service, iso_spec(autostart=True))
    msg = str(ei.value)
    assert msg.startswith("Cannot create VM 'newvm':") and f"{step} failed" in msg
    assert "Everything created so far was removed" in msg
    assert (set(await volumes(service)), await domain_names(service)) == before


async def test_failure_in_second_disk_removes_the_first(service, monkeypatch):
    real = installer._create_volume
    calls = []

    def second_fails(conn, d, rd, progress):
        calls.append(d.name)
        if len(calls) == 2:
            raise VmtuiError("create volume", d.name, "disk full")
        return real(conn, d, rd, progress)

    monkeypatch.setattr(installer, "_create_volume", second_fails)
    with pytest.raises(VmtuiError) as ei:
        await create_vm(service, iso_spec())
    assert "create disk 2 of 2 (default/newvm-1.img) failed: disk full" in str(ei.value)
    assert set(await volumes(service)) == POOL_VOLUMES
    assert "newvm" not in await domain_names(service)


async def test_failed_cleanup_is_reported(service, monkeypatch):
    monkeypatch.setattr(installer, "_start_install", lambda c, x: (_ for _ in ()).throw(
        libvirt.libvirtError("no start")))
    monkeypatch.setattr(installer, "_delete_volume", lambda c, k: (_ for _ in ()).throw(
        libvirt.libvirtError("busy")))
    with pytest.raises(VmtuiError) as ei:
        await create_vm(service, iso_spec())
    assert "Could not remove:" in str(ei.value) and "newvm.qcow2" in str(ei.value)


# --- URL installs -------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def tree_server(tmp_path):
    """Serve tmp_path/tree on 127.0.0.1; yields (base URL, tree dir)."""
    root = tmp_path / "tree"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root
    server.shutdown()
    server.server_close()


def make_tree(root: Path, layout: str = "treeinfo") -> None:
    if layout == "treeinfo":
        (root / "boot").mkdir()
        (root / "boot" / "k").write_bytes(b"KERNEL" * 100)
        (root / "boot" / "i.img").write_bytes(b"INITRD" * 100)
        (root / ".treeinfo").write_text("[general]\nfamily = Test\nversion = 1\narch = x86_64\n\n"
                                        "[images-x86_64]\nkernel = boot/k\ninitrd = boot/i.img\n")
    else:
        d = root / "images" / "pxeboot"
        d.mkdir(parents=True)
        (d / "vmlinuz").write_bytes(b"KERNEL")
        (d / "initrd.img").write_bytes(b"INITRD")


def test_find_tree_boot_files(tree_server):
    url, root = tree_server
    with pytest.raises(VmtuiError) as ei:
        find_tree_boot_files(url)
    assert "no installer kernel/initrd found" in str(ei.value)
    make_tree(root, "pxeboot")
    assert find_tree_boot_files(url) == ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img")
    make_tree(root, "treeinfo")
    assert find_tree_boot_files(url.rstrip("/")) == ("boot/k", "boot/i.img")
    with pytest.raises(VmtuiError):
        find_tree_boot_files("http://127.0.0.1:9/")  # nothing listens there


def test_download(tree_server, tmp_path):
    url, root = tree_server
    (root / "f").write_bytes(b"x" * 3_000_000)
    seen = []
    n = installer.download(url + "f", str(tmp_path / "out"), progress=lambda got, total: seen.append((got, total)))
    assert n == 3_000_000 and (tmp_path / "out").stat().st_size == n
    assert seen[-1] == (n, n)
    with pytest.raises(VmtuiError) as ei:
        installer.download(url + "missing", str(tmp_path / "out2"))
    assert "HTTP 404" in str(ei.value)


async def test_url_install_boots_the_tree_kernel(service, tree_server, monkeypatch):
    url, root = tree_server
    make_tree(root, "treeinfo")
    uploaded = {}

    def fake_upload(conn, pool, name, path, progress):  # the test driver has no volume upload
        data = Path(path).read_bytes()
        uploaded[name] = data
        return storage.create_volume(conn, pool, name, len(data), "raw", "thin")

    monkeypatch.setattr(installer, "_upload", fake_upload)
    spec = iso_spec(name="netinst", os="fedora39",
                    install=InstallSource(kind="url", url=url, kernel_args="console=ttyS0"))
    uuid = await create_vm(service, spec)
    assert sorted(uploaded.values()) == [b"INITRD" * 100, b"KERNEL" * 100]
    live = ET.fromstring(await service.domain_xml(uuid))
    kernel = live.findtext("os/kernel")
    assert kernel.startswith("/var/lib/libvirt/images/vmtui-netinst-") and kernel.endswith("-kernel")
    assert live.findtext("os/cmdline") == f"inst.repo={url} console=ttyS0"
    final = ET.fromstring(await service.domain_xml(uuid, inactive=True))
    assert final.find("os/kernel") is None
    # the uploaded copies are gone once the installer runs
    assert not [n for n in await volumes(service) if n.startswith("vmtui-netinst-")]


async def test_url_install_failure_removes_uploads(service, tree_server, monkeypatch):
    url, root = tree_server
    make_tree(root, "pxeboot")
    monkeypatch.setattr(installer, "_upload", lambda conn, pool, name, path, progress:
                        storage.create_volume(conn, pool, name, 1024, "raw", "thin"))
    monkeypatch.setattr(installer, "_start_install", lambda c, x: (_ for _ in ()).throw(
        libvirt.libvirtError("boom")))
    with pytest.raises(VmtuiError):
        await create_vm(service, iso_spec(name="netinst", install=InstallSource(kind="url", url=url)))
    assert set(await volumes(service)) == POOL_VOLUMES


async def test_url_install_with_unreachable_tree(service):
    spec = iso_spec(name="netinst", install=InstallSource(kind="url", url="http://127.0.0.1:9/tree/"))
    with pytest.raises(VmtuiError) as ei:
        await create_vm(service, spec)
    assert "find the installer in http://127.0.0.1:9/tree/ failed" in str(ei.value)
    assert set(await volumes(service)) == POOL_VOLUMES


# --- preview and export --------------------------------------------------------------


async def test_preview(service):
    final, install, cmd = await preview(service, iso_spec())
    assert ET.fromstring(final).find("uuid") is None
    cd = [d for d in disks_of(install) if d.get("device") == "cdrom"][0]
    assert cd.find("source").get("file") == "/var/lib/libvirt/images/install.iso"
    assert "--cdrom /var/lib/libvirt/images/install.iso" in cmd
    assert "--disk path=/var/lib/libvirt/images/newvm.qcow2,size=5,format=qcow2,sparse=yes,bus=virtio" in cmd
    assert "sparse=no" in cmd and cmd.startswith("virt-install --connect test://")
    assert set(await volumes(service)) == POOL_VOLUMES  # nothing created
    f2, i2, _ = await preview(service, iso_spec(install=InstallSource(kind="none")))
    assert i2 == f2  # no install phase: the definition itself is started


async def test_export_existing_domain(service):
    spec = await service.call(lambda c: export_spec(c, "bravo"))
    assert spec.name == "bravo" and spec.install.kind == "none"
    assert [(d.mode, d.pool, d.size, d.format, d.provisioning) for d in spec.disks] == [
        ("new", "default", 4 * GIB, "raw", "thick"), ("new", "default", GIB, "raw", "thick")]
    assert spec.nics == [NicSpec(source="default")]  # MAC dropped
    assert load_spec(dump_spec(spec)) == spec


def _normalized(xml: str, name: str) -> str:
    root = ET.fromstring(xml)
    for tag in ("uuid",):
        el = root.find(tag)
        if el is not None:
            root.remove(el)
    root.find("name").text = "X"
    for d in root.iter("disk"):
        src = d.find("source")
        if src is not None and src.get("file"):
            src.set("file", src.get("file").replace(name, "X"))
    for iface in root.iter("interface"):
        for tag in ("mac", "target", "alias"):
            el = iface.find(tag)
            if el is not None:
                iface.remove(el)
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


async def test_export_then_create_under_another_name_is_equivalent(service):
    original = iso_spec(name="orig", title="Original", autostart=True,
                        nics=[NicSpec(), NicSpec(kind="bridge", source="br0", model="e1000e")],
                        disks=[DiskSpec(size=5 * GIB), DiskSpec(size=GIB, format="raw", provisioning="thick",
                                                                 bus="sata")])
    await create_vm(service, original)
    exported = await service.call(lambda c: export_spec(c, "orig"))
    copy = load_spec(dump_spec(exported).replace("name: orig", "name: copy"))
    assert copy.autostart and copy.install == original.install
    uuid = await create_vm(service, copy)
    orig_uuid = next(u for u, d in service.domains.items() if d.name == "orig")
    a = await service.domain_xml(orig_uuid, inactive=True)
    b = await service.domain_xml(uuid, inactive=True)
    assert _normalized(a, "orig") == _normalized(b, "copy")
    vols = await volumes(service)
    assert (vols["copy-1.img"].capacity, vols["copy-1.img"].format) == (GIB, "raw")


async def test_offline_resolution_matches_the_installer(service):
    spec = iso_spec()
    resolved = await service.call(lambda c: installer.resolve_storage(c, spec, for_preview=True))
    assert [(r.path, r.device) for r in resolved] == [(r.path, r.device) for r in builder.offline_disks(spec)]


def test_local_uri_detection():
    assert installer.is_local_uri("qemu:///system") and installer.is_local_uri("qemu+unix:///system")
    assert not installer.is_local_uri("qemu+ssh://root@host/system")
    assert not installer.is_local_uri("test:///default")
    assert installer.is_local_uri("qemu://localhost/system")


def test_boot_pool():
    assert installer.boot_pool(iso_spec(disks=[DiskSpec(mode="existing", path="/x"), DiskSpec(pool="fast")])) \
        == "fast"
    assert installer.boot_pool(iso_spec(disks=[])) == "default"


async def test_host_caps_without_domcaps_support_is_used_by_create(service):
    caps = HostCaps()  # what the test driver gets
    with pytest.raises(InvalidSpec) as ei:
        await create_vm(service, iso_spec(virt_type="kvm"), caps=caps)
    assert [e.field for e in ei.value.errors] == ["virt_type"]


def test_core_layering():
    import subprocess
    import sys

    code = ("import sys, vmtui.core.create.builder, vmtui.core.host.domcaps, vmtui.core.create.installer, vmtui.core.create.vmspec_yaml\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('textual', 'rich')}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"





async def test_export_of_an_import_vm_does_not_duplicate_the_image(service):
    spec = iso_spec(name="imported", install=InstallSource(kind="import", image="default/charlie.qcow2"),
                    disks=[DiskSpec(size=GIB)])
    await create_vm(service, spec)
    got = await service.call(lambda c: export_spec(c, "imported"))
    assert got.install == spec.install
    assert [(d.mode, d.size) for d in got.disks] == [("new", GIB)]


# --- the CLI on the test driver (each connection is a private copy) -----------------


def _cli(*args, stdin=None):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "LIBVIRT_DEFAULT_URI"}
    return subprocess.run([sys.executable, "-m", "vmtui", *args], capture_output=True, text=True, env=env,
                          timeout=120, input=stdin)


def test_cli_create_and_export_on_the_test_driver(small_uri, tmp_path):
    spec = tmp_path / "vm.yaml"
    spec.write_text("name: cli-vm\nvirt_type: qemu\nmemory: 1G\n"
                    "install: {kind: iso, iso: default/install.iso}\ndisks: [{size: 2G}]\n")
    out = _cli("create", "--from", str(spec), "-c", small_uri)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"Created VM 'cli-vm' \(UUID [0-9a-f-]{36}\)\n", out.stdout)
    assert "Creating disk 1 of 1..." in out.stderr
    out = _cli("create", "--from", "-", "-c", small_uri, "--dry-run", stdin=spec.read_text())
    assert out.returncode == 0 and "<domain" in out.stdout and "virt-install --connect test://" in out.stdout
    # against the host: the name is taken, KVM is not available -> exit 2 with lines
    spec.write_text("name: alpha\nvirt_type: kvm\ninstall: {kind: iso, iso: default/install.iso}\n")
    out = _cli("create", "--from", str(spec), "-c", small_uri)
    assert out.returncode == 2
    assert f"{spec}:1: name: A VM named 'alpha' already exists on this host" in out.stderr
    assert f"{spec}:2: virt_type: KVM is not available" in out.stderr
    # a broken spec never connects
    out = _cli("create", "--from", str(tmp_path / "missing.yaml"), "-c", "test:///no/such/host.xml")
    assert out.returncode == 2 and "cannot read" in out.stderr
    # cannot connect
    spec.write_text("name: x\nvirt_type: qemu\ninstall: {kind: none}\n")
    out = _cli("create", "--from", str(spec), "-c", "test:///no/such/host.xml")
    assert out.returncode == 1 and "Cannot connect to test:///no/such/host.xml" in out.stderr
    # export
    out = _cli("export", "delta", "-c", small_uri)
    assert out.returncode == 0, out.stderr
    exported = load_spec(out.stdout)
    assert exported.name == "delta" and exported.title == "Delta database"
    assert exported.disks[0].size == 20 * GIB
    out = _cli("export", "nosuch", "-c", small_uri)
    assert out.returncode == 1 and "nosuch" in out.stderr and "Traceback" not in out.stderr
