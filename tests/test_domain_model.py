"""The domain XML model (vmtui.core.xml.domain_model on vmtui.core.xml.xmlmodel).

* every fact, both directions: ``tests/data/domain_model/facts.xml`` holds one
  fragment per fact with its value; parsing the fragment gives the value and
  setting the value on an empty model gives the fragment;
* whole documents: the facts of each domain in ``tests/data/domxml`` are kept in
  ``tests/data/domain_model/NAME.json`` (``VMTUI_REGEN_GOLDEN=1`` rewrites them;
  review the diff), and building a domain from those values reads back the same;
* parse -> edit -> serialize keeps what the model does not know;
* the cases where vmtui's three readers used to disagree (details screen,
  ``vmtui export``'s spec, the OVA export) now agree, because there is one reader.
"""

from __future__ import annotations

import copy
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vmtui.core.create import builder, spec_from_xml
from vmtui.core.xml import domxml
from vmtui.core import ovf
from vmtui.core.xml import domain_model as dm
from vmtui.core.xml.xmlmodel import (
    Child,
    Children,
    Flag,
    Int,
    OnOff,
    Prop,
    Size,
    Str,
    XMLError,
    XMLModel,
    YesNo,
    to_bytes,
    unit_factor,
    yes,
)

DATA = Path(__file__).parent / "data" / "domain_model"
DOMXML = Path(__file__).parent / "data" / "domxml"
REGEN = bool(os.environ.get("VMTUI_REGEN_GOLDEN"))

MODELS = {cls.__name__: cls for cls in vars(dm).values()
          if isinstance(cls, type) and issubclass(cls, XMLModel) and cls.__module__ == dm.__name__
          and cls.TAG}


def canon(xml: str | ET.Element) -> str:
    if isinstance(xml, ET.Element):
        xml = ET.tostring(xml, encoding="unicode")
    return ET.canonicalize(xml, strip_text=True, rewrite_prefixes=True)


# ---------------------------------------------------------------------------
# one golden per fact, both directions
# ---------------------------------------------------------------------------


def _facts() -> list[tuple[str, str, object, ET.Element]]:
    root = ET.parse(DATA / "facts.xml").getroot()
    out = []
    for fact in root.iter("fact"):
        (fragment,) = list(fact)
        out.append((fact.get("model"), fact.get("name"), json.loads(fact.get("value")), fragment))
    return out


FACTS = _facts()
FACT_IDS = [f"{m}.{n}" for m, n, _, _ in FACTS]


@pytest.mark.parametrize(("model", "name", "value", "fragment"), FACTS, ids=FACT_IDS)
def test_fact_reads(model, name, value, fragment):
    obj = MODELS[model](copy.deepcopy(fragment))
    assert getattr(obj, name) == value


@pytest.mark.parametrize(("model", "name", "value", "fragment"), FACTS, ids=FACT_IDS)
def test_fact_writes(model, name, value, fragment):
    obj = MODELS[model]()
    setattr(obj, name, value)
    assert canon(obj.to_xml()) == canon(fragment)
    # and writing None takes it away again, with what only held it
    if isinstance(getattr(type(obj), name, None), Prop):
        setattr(obj, name, None)
        assert canon(obj.to_xml()) == canon(ET.Element(fragment.tag))


def test_every_fact_has_a_golden():
    have = {(m, n) for m, n, _, _ in FACTS}
    missing = []
    for cname, cls in MODELS.items():
        for klass in cls.__mro__:
            for attr, prop in vars(klass).items():
                if isinstance(prop, Prop) and (cname, attr) not in have:
                    # inherited facts of the character devices are covered through Serial
                    if issubclass(cls, dm._CharDevice) and ("Serial", attr) in have:
                        continue
                    missing.append(f"{cname}.{attr}")
    assert missing == []


# ---------------------------------------------------------------------------
# whole documents
# ---------------------------------------------------------------------------


def facts_of(model: XMLModel) -> dict:
    """Every fact of ``model`` and its children, as plain data (absent ones left out)."""
    out: dict = {}
    for klass in reversed(type(model).__mro__):
        for attr, desc in vars(klass).items():
            if isinstance(desc, Prop):
                value = getattr(model, attr)
                if value is not None and not (isinstance(desc, Flag) and value is False):
                    out[attr] = value
            elif isinstance(desc, Child):
                child = facts_of(getattr(model, attr))
                if child:
                    out[attr] = child
            elif isinstance(desc, Children):
                items = [facts_of(c) for c in getattr(model, attr)]
                if items:
                    out[attr] = items
    return out


def build(cls: type[XMLModel], facts: dict, model: XMLModel | None = None) -> XMLModel:
    """A model with ``facts`` set, children added in order."""
    model = model if model is not None else cls()
    for attr, value in facts.items():
        desc = getattr(type(model), attr)
        if isinstance(desc, Child):
            build(desc.cls, value, getattr(model, attr))
        elif isinstance(desc, Children):
            for item in value:
                getattr(model, attr).add(build(desc.cls, item))
        else:
            setattr(model, attr, value)
    return model


DOCS = sorted(p.stem for p in DOMXML.glob("*.xml"))


@pytest.mark.parametrize("name", DOCS)
def test_document_facts_golden(name):
    got = facts_of(dm.Domain.parse((DOMXML / f"{name}.xml").read_text()))
    path = DATA / f"{name}.json"
    if REGEN or not path.exists():
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert got == json.loads(path.read_text())


@pytest.mark.parametrize("name", DOCS)
def test_document_built_from_its_facts_reads_back_the_same(name):
    facts = json.loads((DATA / f"{name}.json").read_text())
    built = build(dm.Domain, facts)
    again = dm.Domain.parse(built.to_xml())
    assert facts_of(again) == facts
    # and what the screens show of it is the same
    before = domxml.parse_domain((DOMXML / f"{name}.xml").read_text())
    after = domxml.overview(again)
    before.metadata_keys = after.metadata_keys = []  # foreign metadata is not a fact of ours
    assert after == before


# ---------------------------------------------------------------------------
# round trips keep what the model does not know
# ---------------------------------------------------------------------------

# in ElementTree's own style (namespace declarations on the root, sorted by
# prefix; " />"), so that an unedited round trip is byte for byte
UNKNOWN = """<domain xmlns:app="http://example.org/app/1" \
xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0" \
xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0" type="kvm" id="3" futureattr="x">
  <name>keep</name>
  <uuid>0b0c7a3e-9a51-4f5e-8a0b-5b3c2d1e0f00</uuid>
  <!-- a comment the admin wrote -->
  <metadata>
    <app:thing level="3">
      <app:note>keep me</app:note>
    </app:thing>
    <libosinfo:libosinfo>
      <libosinfo:os id="http://fedoraproject.org/fedora/39" />
    </libosinfo:libosinfo>
  </metadata>
  <memory unit="KiB">1048576</memory>
  <futureElement mode="fancy">
    <inner>text</inner>
  </futureElement>
  <os>
    <type arch="x86_64" machine="pc-q35-8.0">hvm</type>
    <loader readonly="yes" type="pflash" newattr="1">/usr/share/edk2/x64/OVMF_CODE.fd</loader>
    <smbios mode="sysinfo" />
  </os>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" discard="unmap" />
      <source file="/var/lib/libvirt/images/keep.qcow2" startupPolicy="optional" />
      <target dev="vda" bus="virtio" />
      <iotune>
        <total_bytes_sec>1000</total_bytes_sec>
      </iotune>
      <address type="pci" domain="0x0000" bus="0x04" slot="0x00" function="0x0" />
    </disk>
    <interface type="network">
      <mac address="52:54:00:01:02:03" />
      <source network="default" />
      <model type="virtio" />
      <bandwidth>
        <inbound average="1000" />
      </bandwidth>
    </interface>
    <watchdog model="i6300esb" action="reset" />
  </devices>
  <qemu:commandline>
    <qemu:arg value="-no-hpet" />
  </qemu:commandline>
</domain>
"""


def test_parse_serialize_is_byte_stable():
    dom = dm.Domain.parse(UNKNOWN)
    assert dom.to_xml() + "\n" == UNKNOWN


def test_libvirt_style_document_is_element_stable():
    for name in DOCS:
        xml = (DOMXML / f"{name}.xml").read_text()
        assert canon(dm.Domain.parse(xml).to_xml()) == canon(xml)


def test_edits_change_only_what_they_edit():
    dom = dm.Domain.parse(UNKNOWN)
    dom.title = "Kept"
    disk = dom.devices.disks[0]
    disk.driver_type = "raw"
    disk.transient = True
    dom.os.loader_secure = True
    dom.os.secure_boot_feature = True
    nic = dom.devices.interfaces[0]
    nic.mac = "52:54:00:aa:bb:cc"
    out = dom.to_xml()
    # the unknown parts, untouched
    for keep in ('futureattr="x"', 'id="3"', "<!-- a comment the admin wrote -->", "<app:note>keep me</app:note>",
                 '<futureElement mode="fancy">', "<inner>text</inner>", 'newattr="1"', '<smbios mode="sysinfo" />',
                 'discard="unmap"', 'startupPolicy="optional"', "<total_bytes_sec>1000</total_bytes_sec>",
                 '<inbound average="1000" />', '<watchdog model="i6300esb" action="reset" />',
                 "<qemu:arg value=\"-no-hpet\" />", 'xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"'):
        assert keep in out
    # the edits, at libvirt's place and indented like their neighbours
    assert "  <uuid>0b0c7a3e-9a51-4f5e-8a0b-5b3c2d1e0f00</uuid>\n  <title>Kept</title>\n" in out
    assert "      <target dev=\"vda\" bus=\"virtio\" />\n      <iotune>" in out
    assert "      </iotune>\n      <transient />\n      <address" in out
    assert '<driver name="qemu" type="raw" discard="unmap" />' in out
    assert ("    <type arch=\"x86_64\" machine=\"pc-q35-8.0\">hvm</type>\n    <firmware>\n"
            "      <feature name=\"secure-boot\" enabled=\"yes\" />\n    </firmware>\n    <loader") in out
    assert 'secure="yes"' in out and '<mac address="52:54:00:aa:bb:cc" />' in out
    # undoing the edits gives the original elements back
    dom.title = None
    disk.driver_type = "qcow2"
    disk.transient = False
    dom.os.loader_secure = None
    dom.os.secure_boot_feature = None
    nic.mac = "52:54:00:01:02:03"
    assert dom.to_xml() + "\n" == UNKNOWN


def test_metadata_of_other_applications_survives_metadata_edits():
    dom = dm.Domain.parse(UNKNOWN)
    ours = ET.Element("note")
    ours.text = "vmtui"
    dom.set_metadata("https://vmtui.example/1", "vt", ours)
    assert dom.metadata.namespaces() == ["http://example.org/app/1", dm.NS_LIBOSINFO, "https://vmtui.example/1"]
    assert dom.os_short_id() == "fedora39"
    dom.set_metadata("https://vmtui.example/1", "vt", None)
    assert dom.to_xml() + "\n" == UNKNOWN


# ---------------------------------------------------------------------------
# the disagreements of issue 11: three consumers, one answer
# ---------------------------------------------------------------------------


def _domain(os_xml: str) -> str:
    return ("<domain type='kvm'><name>fw</name><memory unit='MiB'>1024</memory><vcpu>1</vcpu>"
            f"{os_xml}<devices/></domain>")


def _three_readers(xml: str) -> tuple[tuple[str, bool], tuple[str, bool], tuple[str, bool]]:
    ov = domxml.parse_domain(xml)
    spec = spec_from_xml.spec_from_domain_xml(xml)
    plan = ovf.plan_export(xml)
    return ((ov.firmware.lower(), ov.secure_boot), (spec.firmware, spec.secure_boot),
            (plan.firmware, plan.secure_boot))


SB_CONFLICT = ("<os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type>"
               "<firmware><feature enabled='no' name='secure-boot'/></firmware>"
               "<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader>"
               "</os>")


def test_secure_boot_feature_off_beats_loader_secure_everywhere():
    # used to be: details screen off, vmtui export on
    assert set(_three_readers(_domain(SB_CONFLICT))) == {("uefi", False)}


@pytest.mark.parametrize("loader", [
    "/usr/share/edk2/x64/edk2-x86_64-code.fd",
    "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
    "/usr/share/qemu/edk2-x86_64-secure-code.fd",
    "/usr/share/AAVMF/AAVMF_CODE.fd",
    "/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw",
])
def test_uefi_pflash_loader_is_uefi_everywhere(loader):
    # used to be: the OVA export said BIOS for anything without "OVMF" in the path
    xml = _domain(f"<os><type arch='x86_64' machine='q35'>hvm</type>"
                  f"<loader readonly='yes' type='pflash'>{loader}</loader></os>")
    assert set(_three_readers(xml)) == {("uefi", False)}


def test_uefi_rom_loader_without_pflash_is_uefi_by_its_name():
    xml = _domain("<os><type>hvm</type><loader type='rom'>/usr/share/qemu/edk2-x86_64-code.fd</loader></os>")
    assert set(_three_readers(xml)) == {("uefi", False)}


@pytest.mark.parametrize("os_xml", [
    "<os><type>hvm</type></os>",
    "<os><type>hvm</type><loader type='rom'>/usr/share/seabios/bios-256k.bin</loader></os>",
    "<os firmware='bios'><type>hvm</type></os>",
])
def test_bios_everywhere(os_xml):
    assert set(_three_readers(_domain(os_xml))) == {("bios", False)}


@pytest.mark.parametrize(("os_xml", "secure"), [
    ("<os firmware='efi'><type>hvm</type><firmware><feature enabled='yes' name='secure-boot'/></firmware></os>", True),
    ("<os><type>hvm</type><loader secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.secboot.fd</loader></os>",
     True),
    ("<os firmware='efi'><type>hvm</type><firmware><feature enabled='yes' name='enrolled-keys'/></firmware></os>",
     False),
    ("<os firmware='efi'><type>hvm</type><firmware><feature enabled='yes' name='secure-boot'/></firmware>"
     "<loader secure='no' type='pflash'>/x/CODE.fd</loader></os>", True),
])
def test_secure_boot_rule_everywhere(os_xml, secure):
    assert set(_three_readers(_domain(os_xml))) == {("uefi", secure)}


def test_secure_boot_survives_an_ova_round_trip():
    plan = ovf.plan_export(_domain("<os firmware='efi'><type>hvm</type>"
                                   "<firmware><feature enabled='yes' name='secure-boot'/></firmware></os>"))
    pkg = ovf.parse_envelope(ovf.build_envelope(plan, []))
    assert (pkg.firmware, pkg.secure_boot) == ("uefi", True)
    assert ovf.to_vmspec(pkg, []).secure_boot is True


def test_what_the_builder_writes_all_readers_read_back():
    from vmtui.core.host.domcaps import HostCaps, Loader
    from vmtui.core.create.vmspec import VmSpec

    caps = HostCaps(arch="x86_64", kvm_available=True, virt_types=["kvm"], efi_autoselect=False,
                    uefi_loaders=[Loader("/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd", True)])
    for secure in (False, True):
        spec = VmSpec(name="vm", firmware="uefi", secure_boot=secure)
        for c in (None, caps):
            xml = builder.build_domain_xml(spec, c, builder.offline_disks(spec))
            assert set(_three_readers(xml)) == {("uefi", secure)}


# ---------------------------------------------------------------------------
# the machinery
# ---------------------------------------------------------------------------


class _Leaf(XMLModel):
    TAG = "leaf"
    label = Str("@label")


class _Thing(XMLModel):
    TAG = "thing"
    ORDER = {"thing": ("a", "b", "c", "leaf"), "b": ("x", "y")}
    a = Str("a")
    by = Str("b/y")
    bx = Str("b/x")
    c = Int("c")
    flag = Flag("c/flag")
    size = Size("size", base="KiB", units=("GiB", "MiB", "KiB"), what="memory")
    picked = YesNo("item[@name='picked']/@on")
    power = OnOff("@power")
    leaves = Children(_Leaf)
    first = Child(_Leaf)


def test_new_elements_go_to_their_place_in_order():
    t = _Thing()
    t.c = 3
    t.a = "first"
    t.by = "y"
    t.bx = "x"
    assert t.to_xml() == "<thing><a>first</a><b><x>x</x><y>y</y></b><c>3</c></thing>"


def test_removing_prunes_only_what_held_the_value():
    t = _Thing()
    t.by, t.bx = "y", "x"
    t.by = None
    assert t.to_xml() == "<thing><b><x>x</x></b></thing>"
    t.bx = None
    assert t.to_xml() == "<thing />"
    t.picked = True
    assert t.to_xml() == '<thing><item name="picked" on="yes" /></thing>'
    t.picked = None  # the predicate's own attribute does not keep it alive
    assert t.to_xml() == "<thing />"
    t.c, t.flag = 1, True
    t.flag = False
    assert t.to_xml() == "<thing><c>1</c></thing>"


def test_inserting_into_an_indented_document():
    t = _Thing(ET.fromstring("<thing>\n  <a>1</a>\n  <c>2</c>\n</thing>"))
    t.bx = "new"
    t.leaves.add().label = "end"
    assert t.to_xml() == ("<thing>\n  <a>1</a>\n  <b>\n    <x>new</x>\n  </b>\n  <c>2</c>\n"
                          "  <leaf label=\"end\" />\n</thing>")
    t.leaves.remove(t.leaves[0])
    t.bx = None
    assert t.to_xml() == "<thing>\n  <a>1</a>\n  <c>2</c>\n</thing>"


def test_children_and_child():
    t = _Thing()
    assert not t.first.exists and len(t.leaves) == 0
    t.first.label = "made on write"
    t.leaves.add(_Leaf()).label = "second"
    assert [leaf.label for leaf in t.leaves] == ["made on write", "second"]
    assert t.leaves.find(label="second") is not None and t.leaves.find(label="nope") is None
    gone = t.leaves[1]
    t.leaves.remove(gone)
    assert gone.label == "second" and gone.to_xml() == '<leaf label="second" />'
    with pytest.raises(ValueError):
        t.leaves.remove(gone)
    t.first = None
    assert t.to_xml() == "<thing />"
    replacement = _Leaf()
    replacement.label = "set whole"
    t.first = replacement
    assert t.to_xml() == '<thing><leaf label="set whole" /></thing>'


def test_values():
    t = _Thing(ET.fromstring("<thing power='ON'><c>0x1f</c><size unit='G'>2</size><item name='picked' on='1'/></thing>"))
    assert (t.c, t.size, t.picked, t.power) == (31, 2 * 1024 * 1024, True, True)
    t.power = False
    t.size = 3 * 1024
    assert t.to_xml().startswith('<thing power="off">') and '<size unit="MiB">3</size>' in t.to_xml()
    t.c = None
    assert "<c>" not in t.to_xml()
    bad = _Thing(ET.fromstring("<thing><c>many</c><size unit='parsecs'>1</size></thing>"))
    assert bad.c is None  # lenient
    with pytest.raises(XMLError, match=r"<size>: unknown memory unit 'parsecs'"):
        _ = bad.size


def test_strict_int_and_parse_errors():
    with pytest.raises(dm.DomainXMLError, match="invalid <vcpu> count 'lots'"):
        _ = dm.Domain.parse("<domain><vcpu>lots</vcpu></domain>").vcpus
    with pytest.raises(dm.DomainXMLError, match="expected <domain>"):
        dm.Domain.parse("<network/>")
    with pytest.raises(dm.DomainXMLError, match="malformed domain XML"):
        dm.Domain.parse("<domain>")
    with pytest.raises(dm.DomainXMLError, match="is empty"):
        dm.Domain.parse("  ")


@pytest.mark.parametrize(("value", "unit", "default", "n"), [
    ("10", "GiB", "bytes", 10 * 1024 ** 3), ("10", "GB", "bytes", 10 * 1000 ** 3), ("1", "k", "bytes", 1024),
    ("7", None, "bytes", 7), ("7", None, "KiB", 7 * 1024), ("3", "bytes", "KiB", 3), ("1", "EiB", "b", 1024 ** 6),
])
def test_to_bytes_is_libvirts_scaling(value, unit, default, n):
    assert to_bytes(value, unit, default_unit=default) == n


def test_unit_errors_and_yes():
    with pytest.raises(XMLError, match="unknown size unit 'KiBB'"):
        unit_factor("KiBB")
    with pytest.raises(XMLError, match="invalid size value '1.5'"):
        to_bytes("1.5", "KiB")
    assert [yes(v) for v in ("yes", "ON", " true ", "1", "no", "off", "", None, "2")] == \
        [True, True, True, True, False, False, False, False, False]


def test_storage_sizes_use_the_same_scaling():
    from vmtui.core import storage

    el = ET.fromstring("<capacity unit='GiB'>2</capacity>")
    assert storage._scaled(el) == 2 * 1024 ** 3
    assert domxml.parse_memory("2", "GiB") == 2 * 1024 ** 2


# ---------------------------------------------------------------------------
# the one copy of each helper
# ---------------------------------------------------------------------------


def test_one_disk_builder_one_prefix_table():
    from vmtui.core.storage import disks

    assert disks.target_names("virtio")[:2] == ["vda", "vdb"] and disks.target_names("fdc") == ["fda", "fdb"]
    assert builder.TargetNames().next("xen") == "xvda"  # the builder uses the same table
    built = builder._disk(builder.ResolvedDisk("/i/a.qcow2", "qcow2"), "disk", "virtio", "vda", cache="none")
    via_disks = disks.disk_element("/i/a.qcow2", "vda", fmt="qcow2", cache="none")
    assert canon(built.element) == canon(via_disks)


def test_short_id_from_uri_is_shared():
    from vmtui.core.xml.domain_model import short_id_from_uri

    assert short_id_from_uri("http://debian.org/debian/12") == "debian12"
    assert short_id_from_uri("http://microsoft.com/win/11") == "win11"
    assert short_id_from_uri("http://example.org/solo") == "solo"
    assert short_id_from_uri("debian12") is None
    meta = ("<metadata><libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>"
            "<libosinfo:os id='http://ubuntu.com/ubuntu/22.04'/></libosinfo:libosinfo></metadata>")
    xml = _domain("<os><type>hvm</type></os>").replace("<memory", meta + "<memory")
    assert spec_from_xml.spec_from_domain_xml(xml).os == ovf.plan_export(xml).osinfo == "ubuntu22.04"
