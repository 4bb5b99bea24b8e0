"""vmtui.core.storage.images: what an image really is (format, size, backing
chain, owner and mode), probed and never guessed; create_volume names the
probed backing format; QEMU's read access to a base image it must not
relabel. qemu-img runs on real files in tmp_path; libvirt answers come from
the test driver (tests/real/test_real_cloudboot.py does the real host)."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.conftest import host_uri
from tests.prereq import needs
from vmtui.core import storage
from vmtui.core.errors import VmtuiError
from vmtui.core.storage import images
from vmtui.core.storage.images import ImageProbe, is_local_uri, probe_image, qemu_ids, qemu_read_problem

has_qemu_img = needs(shutil.which("qemu-img") is not None, "qemu-img is not installed (qemu-utils)")
MIB = 1024 ** 2


@pytest.fixture
def conn():
    c = libvirt.open(host_uri())
    yield c
    c.close()


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


# --- libvirt's answer: a pool volume ---------------------------------------------


def test_a_pool_volume_is_what_libvirt_says(conn):
    for ref in ("default/echo.qcow2", "/var/lib/libvirt/images/echo.qcow2"):
        probe = probe_image(conn, ref, local=False)
        assert (probe.path, probe.format, probe.capacity) == ("/var/lib/libvirt/images/echo.qcow2", "qcow2",
                                                              8 * 1024 ** 3)
        assert probe.pool == "default" and "libvirt" in probe.how
    assert probe_image(conn, "default/bravo.img", local=False).format == "raw"


def test_what_cannot_be_probed_is_refused_with_the_reasons(conn):
    with pytest.raises(VmtuiError) as ei:
        probe_image(conn, "default/nope.qcow2", local=False)
    assert "no storage pool has this volume" in str(ei.value)
    # a path on a remote host outside any pool: libvirt looks through a
    # transient pool on its directory; nothing there -> no format is guessed
    with pytest.raises(VmtuiError) as ei:
        probe_image(conn, "/srv/cloud/debian-12.qcow2", local=False)
    assert "cannot tell its format" in str(ei.value) and "no such file" in str(ei.value)
    assert "does not guess" in ei.value.hint
    assert not [p for p in conn.listAllStoragePools() if p.name().startswith(images.PROBE_POOL_PREFIX)]


# --- qemu-img's answer: a local file ----------------------------------------------


@has_qemu_img
def test_local_files_by_qemu_img(conn, tmp_path):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-f", "qcow2", str(base), "64M")
    os.chmod(base, 0o644)
    raw = tmp_path / "disk.img"
    raw.write_bytes(b"\0" * MIB)
    over = tmp_path / "over.qcow2"
    qemu_img("create", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", str(over), "128M")  # relative backing

    probe = probe_image(conn, str(base), local=True)
    assert (probe.format, probe.capacity, probe.how) == ("qcow2", 64 * MIB, "qemu-img info")
    assert (probe.owner, probe.mode) == (os.getuid(), 0o644)
    assert probe_image(conn, str(raw), local=True).format == "raw"
    chain = probe_image(conn, str(over), local=True)
    assert chain.backing == str(base) and chain.chain == [(str(over), "qcow2"), (str(base), "qcow2")]

    with pytest.raises(VmtuiError, match="no such file on the host"):
        probe_image(conn, str(tmp_path / "missing.qcow2"), local=True)


def test_create_volume_names_the_probed_backing_format(conn, monkeypatch):
    """Without a backing format libvirt takes raw: a qcow2 base then boots nothing."""
    made = []
    real = libvirt.virStoragePool.createXML

    def create_xml(pool, xml, flags=0):
        made.append(ET.fromstring(xml))
        return real(pool, xml, flags)

    monkeypatch.setattr(libvirt.virStoragePool, "createXML", create_xml)
    storage.create_volume(conn, "default", "on-echo.qcow2", 8 * 1024 ** 3, "qcow2", "thin",
                          backing="/var/lib/libvirt/images/echo.qcow2")
    assert made[-1].find("backingStore/format").get("type") == "qcow2"
    storage.create_volume(conn, "default", "on-bravo.qcow2", 5 * 1024 ** 3, "qcow2", "thin",
                          backing="/var/lib/libvirt/images/bravo.img")
    assert made[-1].find("backingStore/format").get("type") == "raw"
    # a base nobody can read is refused; nothing is made
    with pytest.raises(VmtuiError) as ei:
        storage.create_volume(conn, "default", "on-nothing.qcow2", 8 * 1024 ** 3, "qcow2", "thin",
                              backing="/srv/nowhere/base.qcow2")
    assert "the backing image /srv/nowhere/base.qcow2" in str(ei.value) and "cannot tell its format" in str(ei.value)
    assert not storage.volume_exists(conn, "default", "on-nothing.qcow2")


# --- may QEMU read it as it is? ------------------------------------------------------


def probe(mode: int, owner: int = 0, group: int = 0, below: ImageProbe | None = None) -> ImageProbe:
    return ImageProbe(path="/srv/base.qcow2", format="qcow2", capacity=MIB, how="test", owner=owner, group=group,
                      mode=mode, below=below)


def test_qemu_read_problem():
    qemu = (64055, 994)
    assert qemu_read_problem(probe(0o644), qemu) is None
    assert qemu_read_problem(probe(0o600, owner=64055), qemu) is None
    assert qemu_read_problem(probe(0o640, group=994), qemu) is None
    problem = qemu_read_problem(probe(0o600), qemu)
    assert "uid 64055" in problem and "/srv/base.qcow2" in problem and "0600" in problem
    assert "chmod o+r /srv/base.qcow2" in problem
    # every layer counts
    low = ImageProbe(path="/srv/root.raw", format="raw", capacity=MIB, how="test", owner=0, group=0, mode=0o600)
    assert "/srv/root.raw" in qemu_read_problem(probe(0o644, below=low), qemu)
    # QEMU as root, no DAC model, unknown modes: nothing to say
    assert qemu_read_problem(probe(0o600), (0, 0)) is None
    assert qemu_read_problem(probe(0o600), None) is None
    assert qemu_read_problem(ImageProbe("/x", "raw", 1, "test"), qemu) is None


def test_qemu_ids_from_the_dac_model(conn, monkeypatch):
    caps = """<capabilities><host>
      <secmodel><model>none</model><doi>0</doi></secmodel>
      <secmodel><model>dac</model><doi>0</doi>
        <baselabel type='kvm'>+64055:+994</baselabel><baselabel type='qemu'>+107:+107</baselabel></secmodel>
    </host></capabilities>"""

    class Conn:
        def getCapabilities(self):
            return caps

    assert qemu_ids(Conn(), "kvm") == (64055, 994)
    assert qemu_ids(Conn(), "qemu") == (107, 107)
    assert qemu_ids(conn) is None  # the test driver has no DAC model


def test_is_local_uri():
    assert is_local_uri("qemu:///system") and is_local_uri("qemu+unix:///system")
    assert not is_local_uri("qemu+ssh://root@host/system") and not is_local_uri(host_uri())
