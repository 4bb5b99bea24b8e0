"""Unit tests: the template marker in <metadata>, the prepare helpers, and
the clone's XML rewrite (pure functions, no libvirt)."""

from __future__ import annotations

import email
import random
import xml.etree.ElementTree as ET

import pytest
import yaml

from vmtui.core.clones import clone, templates
from vmtui.core.xml import domxml

LIBOSINFO = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
VMTUI = "https://vmtui.dev/xmlns/vmtui/1"
OLD_UUID = "aaaaaaaa-bbbb-4ccc-8ddd-000000000001"

SOURCE = f"""<domain type='kvm'>
  <name>web</name>
  <uuid>{OLD_UUID}</uuid>
  <genid>11111111-2222-3333-4444-555555555555</genid>
  <title>Web server</title>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="{LIBOSINFO}">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
    <vmtui:vmtui xmlns:vmtui="{VMTUI}"><vmtui:os id="debian12"/></vmtui:vmtui>
    <vmtuitpl:template xmlns:vmtuitpl="{templates.NS_TEMPLATE}" marked="yes"/>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <sysinfo type='smbios'>
    <system><entry name='manufacturer'>ACME</entry><entry name='uuid'>{OLD_UUID}</entry></system>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/web.qcow2'/>
      <backingStore type='file'><format type='qcow2'/><source file='/var/lib/libvirt/images/base.qcow2'/></backingStore>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw'/>
      <source pool='data' volume='web-data.img'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/isos/debian.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:11:22:33'/>
      <source network='default'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:11:22:34'/>
      <source bridge='br0'/>
    </interface>
    <graphics type='vnc' port='5901' autoport='no' listen='127.0.0.1'/>
  </devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'>
    <label>system_u:system_r:svirt_t:s0:c1,c2</label>
    <imagelabel>system_u:object_r:svirt_image_t:s0:c1,c2</imagelabel>
  </seclabel>
  <seclabel type='static' model='dac' relabel='yes'><label>107:107</label></seclabel>
</domain>
"""


# --- the marker ----------------------------------------------------------------


def test_marker_round_trip_keeps_other_metadata():
    plain = domxml.set_metadata_element(SOURCE, templates.NS_TEMPLATE, templates.PREFIX, None)
    assert templates.meta_from_xml(plain) == templates.TemplateMeta()
    assert not templates.is_template_xml(plain)
    meta = templates.TemplateMeta(marked=True, method="firstboot", prepared_at="2026-11-27T15:00:00Z",
                                  items=["ssh-hostkeys", "machine-id"], firstboot="#cloud-config\nruncmd: []\n")
    marked = templates.set_meta_xml(plain, meta)
    assert templates.is_template_xml(marked)
    assert templates.meta_from_xml(marked) == meta
    # libosinfo's and vmtui's own metadata are untouched
    for ns in (LIBOSINFO, VMTUI):
        assert ET.tostring(domxml.get_metadata(marked, ns)) == ET.tostring(domxml.get_metadata(SOURCE, ns))
    unmarked = templates.set_meta_xml(marked, templates.TemplateMeta())
    assert domxml.get_metadata(unmarked, templates.NS_TEMPLATE) is None
    assert domxml.get_metadata(unmarked, LIBOSINFO) is not None
    assert domxml.parse_domain(unmarked).title == "Web server"


def test_unmark_keeps_preparation():
    meta = templates.TemplateMeta(marked=True, method="virt-sysprep", items=["machine-id"])
    xml = templates.set_meta_xml(SOURCE, meta)
    meta.marked = False
    xml = templates.set_meta_xml(xml, meta)
    back = templates.meta_from_xml(xml)
    assert not back.marked and back.method == "virt-sysprep" and back.items == ["machine-id"]


def test_parse_meta_as_libvirt_returns_it():
    # virDomainGetMetadata gives the element with its namespace on it
    text = (f'<tpl:template xmlns:tpl="{templates.NS_TEMPLATE}" marked="yes">'
            '<tpl:firstboot>#cloud-config\n</tpl:firstboot></tpl:template>')
    meta = templates.parse_meta(text)
    assert meta.marked and meta.firstboot == "#cloud-config\n"
    assert templates.parse_meta("<template marked='no'/>").marked is False
    assert templates.parse_meta("not xml") == templates.TemplateMeta()
    # what we send to virDomainSetMetadata is unqualified (libvirt adds the namespace)
    el = templates.TemplateMeta(marked=True).to_element(qualified=False)
    assert el.tag == "template" and el.get("marked") == "yes"


# --- preparing -------------------------------------------------------------------


@pytest.mark.parametrize("uri,local", [
    ("qemu:///system", True), ("qemu+unix:///system", True), ("test:///default", True),
    ("qemu+ssh://root@kvm1/system", False), ("qemu+ssh://localhost/system", True),
    ("qemu+tls://10.0.0.2/system", False),
])
def test_local_uri(uri, local):
    assert templates.is_local_uri(uri) is local


def test_choose_method():
    assert templates.choose_method("qemu:///system", "/usr/bin/virt-sysprep") == "virt-sysprep"
    assert templates.choose_method("qemu:///system", "") == "firstboot"
    assert templates.choose_method("qemu+ssh://kvm1/system", "/usr/bin/virt-sysprep") == "firstboot"


def test_sysprep_command():
    cmd = templates.sysprep_command(["/a.qcow2", "/b.img"], templates.ITEM_KEYS, sysprep="/usr/bin/virt-sysprep")
    assert cmd[:5] == ["/usr/bin/virt-sysprep", "-a", "/a.qcow2", "-a", "/b.img"]
    ops = cmd[cmd.index("--enable") + 1].split(",")
    assert ops == ["ssh-hostkeys", "machine-id", "udev-persistent-net", "net-hwaddr", "customize"]
    assert cmd[cmd.index("--hostname") + 1] == "localhost"
    assert "/var/lib/cloud/instances" in cmd
    assert templates.sysprep_command(["/a"], ["machine-id"])[-1] == "machine-id"
    with pytest.raises(ValueError):
        templates.sysprep_command([], ["machine-id"])
    with pytest.raises(ValueError):
        templates.sysprep_command(["/a"], ["bogus"])


def test_firstboot_config_resets_once():
    text = templates.firstboot_config(templates.ITEM_KEYS)
    assert text.startswith("#cloud-config\n")
    cfg = yaml.safe_load(text)
    script = cfg["bootcmd"][0][2]
    assert "rm -f /etc/machine-id" in script and "systemd-machine-id-setup" in script
    assert "rm -f /etc/ssh/ssh_host_*" in script
    assert "70-persistent-net.rules" in script
    assert script.startswith(f"if [ ! -e {templates.FIRSTBOOT_MARK} ]")  # once only
    assert cfg["ssh_deletekeys"] is True and "ssh-keygen -A" in cfg["runcmd"][0][2]
    assert cfg["preserve_hostname"] is False
    only = yaml.safe_load(templates.firstboot_config(["machine-id"]))
    assert "runcmd" not in only and "ssh" not in only["bootcmd"][0][2]


def test_merge_user_data():
    fb = templates.firstboot_config(["machine-id", "ssh-hostkeys"])
    user = "#cloud-config\nruncmd:\n  - echo hi\npackages: [htop]\n"
    merged = templates.merge_user_data(user, fb)
    cfg = yaml.safe_load(merged)
    assert merged.startswith("#cloud-config\n")
    assert cfg["packages"] == ["htop"]
    assert cfg["runcmd"][-1] == "echo hi" and len(cfg["runcmd"]) == 2  # the template's first
    assert "bootcmd" in cfg
    assert templates.merge_user_data(merged, fb) == merged  # already in
    assert templates.merge_user_data("", fb) == fb
    assert templates.merge_user_data(user, None) == user
    # a shell script: MIME multi-part with both
    mixed = templates.merge_user_data("#!/bin/sh\necho hi\n", fb)
    parts = [p for p in email.message_from_string(mixed).walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in parts] == ["text/cloud-config", "text/x-shellscript"]


# --- cloning: names and the XML ----------------------------------------------------


def test_validate_name():
    assert clone.validate_name("web-2") is None
    assert "Enter" in clone.validate_name("")
    assert "/" in clone.validate_name("a/b")
    assert clone.validate_name(" web") is not None
    assert clone.validate_name("x" * 300) is not None


def test_new_volume_name():
    assert clone.new_volume_name("web.qcow2", "web", "web-clone", "vda", "qcow2") == "web-clone.qcow2"
    assert clone.new_volume_name("disk0.img", "web", "db", "vdb", "raw") == "db-vdb.img"
    assert clone.new_volume_name("disk0", "web", "db", "vdb", "qcow2") == "db-vdb.qcow2"
    assert clone._unique("a.qcow2", lambda n: n in {"a.qcow2", "a-1.qcow2"}) == "a-2.qcow2"


def _plan_disks() -> list[clone.DiskClone]:
    return [
        clone.DiskClone(target="vda", device="disk", type="file", source="/var/lib/libvirt/images/web.qcow2",
                        action="copy", new_pool="default", new_name="web2.qcow2", new_format="qcow2",
                        new_path="/var/lib/libvirt/images/web2.qcow2"),
        clone.DiskClone(target="vdb", device="disk", type="volume", source="data/web-data.img",
                        action="link", new_pool="data", new_name="web2-data.qcow2", new_format="qcow2",
                        new_path="/data/web2-data.qcow2"),
        clone.DiskClone(target="sda", device="cdrom", type="file", source="/isos/debian.iso", action="share"),
    ]


def test_clone_xml_rewrites_what_must_be_unique():
    new_uuid = "99999999-8888-4777-8666-555555555555"
    macs = clone.new_macs(2, {"52:54:00:11:22:33"}, random.Random(1))
    out = clone.clone_xml(SOURCE, "web2", new_uuid, _plan_disks(), macs,
                          "/var/lib/libvirt/qemu/nvram/web2_VARS.fd")
    root = ET.fromstring(out)
    assert root.findtext("name") == "web2" and root.findtext("uuid") == new_uuid
    assert (root.findtext("genid") or "") == ""  # libvirt makes a new one
    assert root.find("sysinfo/system/entry[@name='uuid']").text == new_uuid
    assert root.find("sysinfo/system/entry[@name='manufacturer']").text == "ACME"
    disks = root.findall("devices/disk")
    assert disks[0].find("source").get("file") == "/var/lib/libvirt/images/web2.qcow2"
    assert disks[0].find("backingStore") is None
    assert disks[0].find("driver").get("discard") == "unmap"  # the rest of <driver> kept
    assert disks[0].find("boot").get("order") == "1"
    assert disks[1].get("type") == "volume"
    assert disks[1].find("source").attrib == {"pool": "data", "volume": "web2-data.qcow2"}
    assert disks[1].find("driver").get("type") == "qcow2"  # linked: an overlay is qcow2
    assert disks[2].find("source").get("file") == "/isos/debian.iso"  # CD-ROM shared
    nics = root.findall("devices/interface")
    assert [n.find("mac").get("address") for n in nics] == macs
    assert all(m.startswith("52:54:00:") for m in macs) and "52:54:00:11:22:33" not in macs
    assert nics[0].find("target") is None  # vnetN is the host's choice
    assert nics[1].find("source").get("bridge") == "br0"
    g = root.find("devices/graphics")
    assert g.get("autoport") == "yes" and g.get("port") is None and g.get("listen") == "127.0.0.1"
    nv = root.find("os/nvram")
    assert nv.text == "/var/lib/libvirt/qemu/nvram/web2_VARS.fd"
    assert nv.get("template") == "/usr/share/OVMF/OVMF_VARS_4M.fd"
    secs = root.findall("seclabel")
    assert len(secs) == 1 and secs[0].get("type") == "dynamic" and list(secs[0]) == []
    # our template marker is not copied; other applications' metadata is
    assert domxml.get_metadata(out, templates.NS_TEMPLATE) is None
    assert domxml.get_metadata(out, LIBOSINFO) is not None and domxml.get_metadata(out, VMTUI) is not None
    assert root.findtext("title") == "Web server"
    # the source XML parses to the same overview otherwise
    assert domxml.parse_domain(out).memory_kib == domxml.parse_domain(SOURCE).memory_kib


def test_clone_xml_keeps_template_when_asked_and_fresh_nvram():
    out = clone.clone_xml(SOURCE, "web3", OLD_UUID.replace("a", "b"), _plan_disks(),
                          clone.new_macs(2, set()), None, keep_template=True)
    assert templates.is_template_xml(out)
    assert (ET.fromstring(out).findtext("os/nvram") or "") == ""


def test_clone_xml_checks_its_inputs():
    with pytest.raises(ValueError):
        clone.clone_xml(SOURCE, "w", OLD_UUID, _plan_disks()[:2], clone.new_macs(2, set()))
    with pytest.raises(ValueError):
        clone.clone_xml(SOURCE, "w", OLD_UUID, _plan_disks(), [])
