"""create_vm with a cloud-init seed (test driver: the upload itself is faked,
tests/real/test_real_cloudinit.py does it for real) and the spec's
install.cloud_init validation."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest
import yaml

from vmtui.core import storage
from vmtui.core.provision import seed

from vmtui.core.create import installer
from vmtui.core.errors import VmtuiError
from vmtui.core.create.installer import InvalidSpec, create_vm
from vmtui.core.create.vmspec import DiskSpec, InstallSource, VmSpec
from vmtui.core.create.validation import validate_spec
from vmtui.core.create.vmspec_yaml import dump_spec, load_spec, parse_spec

GIB = 1024 ** 3
USER = "#cloud-config\nhostname: cloudy\npackages: [nginx]\n"


def cloud_spec(name="cloudy", cloud_init=None) -> VmSpec:
    return VmSpec(name=name, virt_type="qemu", cpu_mode="host-model", memory_mib=1024, vcpus=1,
                  install=InstallSource(kind="cloud", image="default/echo.qcow2", cloud_init=cloud_init),
                  disks=[DiskSpec(size=8 * GIB)])


@pytest.fixture
def fake_seed(monkeypatch):
    """The seed ISO's upload (the test driver has no stream upload): a raw
    volume of that name is made instead."""
    calls = []

    def upload(conn, pool, volume, docs):
        calls.append((pool, volume, docs))
        return storage.create_volume(conn, pool, volume, 1024 ** 2, "raw", "thin")

    monkeypatch.setattr(installer, "_upload_seed", upload)
    return calls


async def defined_xml(service, name):
    return await service.call(lambda c: c.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


async def test_create_defines_the_vm_with_its_completed_seed(service, fake_seed):
    ci = {"user_data": USER, "meta_data": "", "network_config": None, "detach_after_first_boot": True}
    await create_vm(service, cloud_spec(cloud_init=ci))
    ((pool, volume, docs),) = fake_seed
    assert (pool, volume) == ("default", "cloudy-cidata.iso")
    assert docs.user_data == USER
    meta = yaml.safe_load(docs.meta_data)
    assert meta["local-hostname"] == "cloudy" and meta["instance-id"].startswith("iid-vmtui-")
    xml = await defined_xml(service, "cloudy")
    # next to the virtio boot disk: a read-only virtio disk, in the definition itself
    (dev,) = seed.seed_disk_elements(xml, "/var/lib/libvirt/images/cloudy-cidata.iso")
    assert dev.get("device") == "disk" and dev.find("readonly") is not None
    assert dev.find("target").attrib == {"dev": "vdb", "bus": "virtio"}
    rec = seed.seed_record(xml)
    assert (rec.pool, rec.volume, rec.detach_after_first_boot) == ("default", "cloudy-cidata.iso", True)


async def test_seed_bus_from_the_spec(service, fake_seed):
    spec = cloud_spec(cloud_init={"user_data": USER, "seed_bus": "scsi"})
    await create_vm(service, spec)
    xml = await defined_xml(service, "cloudy")
    (dev,) = seed.seed_disk_elements(xml, None, "cloudy-cidata.iso")
    assert dev.get("device") == "cdrom" and dev.find("target").attrib == {"dev": "sda", "bus": "scsi"}
    assert any(c.get("model") == "virtio-scsi" for c in ET.fromstring(xml).iter("controller"))


async def test_no_cloud_init_no_seed(service, fake_seed):
    await create_vm(service, cloud_spec(name="plain"))
    assert fake_seed == []
    assert seed.seed_record(await defined_xml(service, "plain")) is None


async def test_failure_after_the_seed_removes_it(service, fake_seed, monkeypatch):
    deleted = []
    real_delete = installer._delete_volume

    def delete(conn, key):
        deleted.append(key)
        real_delete(conn, key)

    monkeypatch.setattr(installer, "_delete_volume", delete)
    monkeypatch.setattr(installer, "_start", lambda dom: (_ for _ in ()).throw(libvirt.libvirtError("no start")))
    with pytest.raises(VmtuiError, match="Everything created so far was removed"):
        await create_vm(service, cloud_spec(cloud_init={"user_data": USER}))
    assert deleted[0].endswith("/cloudy-cidata.iso")  # newest first
    names = await service.call(lambda c: [d.name() for d in c.listAllDomains(0)])
    assert "cloudy" not in names
    vols = await service.call(lambda c: c.storagePoolLookupByName("default").listVolumes())
    assert "cloudy-cidata.iso" not in vols and "cloudy.qcow2" not in vols


async def test_seed_failure_is_named(service, monkeypatch):
    def boom(*a):
        raise VmtuiError("upload", "'x'", "pool is full")

    monkeypatch.setattr(installer, "_upload_seed", boom)
    with pytest.raises(VmtuiError) as ei:
        await create_vm(service, cloud_spec(cloud_init={"user_data": USER}))
    assert "upload the cloud-init seed (pool 'default') failed: pool is full" in str(ei.value)


async def test_bad_user_data_is_an_invalid_spec(service, fake_seed):
    with pytest.raises(InvalidSpec) as ei:
        await create_vm(service, cloud_spec(cloud_init={"user_data": "#cloud-config\nusers: [\n"}))
    (err,) = [e for e in ei.value.errors if e.field.startswith("install.cloud_init")]
    assert err.field == "install.cloud_init.user_data" and "line 3" in err.message
    assert fake_seed == []


def test_validation_messages():
    def errs(ci, kind="cloud"):
        spec = cloud_spec(cloud_init=ci)
        spec.install.kind = kind
        if kind == "iso":
            spec.install.iso = "/x.iso"
        return {(e.field, e.severity): e.message for e in validate_spec(spec) if "cloud_init" in e.field}

    assert errs({"user_data": USER}) == {}
    found = errs({"user_data": "#cloud-config\npackage_update: maybe\n", "meta_data": "local-hostname: x\n",
                  "network_config": "version: 3\n"})
    assert "line 2" in found[("install.cloud_init.user_data", "error")]
    assert "instance-id" in found[("install.cloud_init.meta_data", "error")]
    assert "network-config" in found[("install.cloud_init.network_config", "error")]
    assert ("install.cloud_init", "warning") in errs({"user_data": USER}, kind="iso")


def test_yaml_round_trip_and_schema(tmp_path):
    ci = {"user_data": USER, "meta_data": "instance-id: i-1\n", "network_config": None,
          "detach_after_first_boot": True}
    text = dump_spec(cloud_spec(cloud_init=ci))
    assert "user_data: |" in text
    assert load_spec(text).install.cloud_init == ci
    bad = text.replace("detach_after_first_boot: true", "detach_after_first_boot: true\n    userdata: x")
    with pytest.raises(Exception, match="unknown key 'userdata' \\(did you mean 'user_data'\\?\\)"):
        parse_spec(bad)


def test_plain_password_in_a_spec_is_an_error():
    spec = cloud_spec(cloud_init={"user_data": "#cloud-config\nusers:\n  - name: a\n    passwd: hunter2\n"})
    (err,) = [e for e in validate_spec(spec) if e.field == "install.cloud_init.user_data"]
    assert "line 4" in err.message and "not a password hash" in err.message
