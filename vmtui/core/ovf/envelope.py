"""The OVF envelope (the ``.ovf`` descriptor), both ways: parsed with
ElementTree (OVF 1.x and 2.x namespaces, no DTDs or entities) into an
:class:`OvfPackage` -- name, description, vCPUs, memory, disks with their
capacity, NICs with their network names, the OS type and a firmware hint
-- and built as an OVF 1.0 envelope for an export."""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..xml.xmlmodel import yes
from .errors import OvfError
from .ostypes import CIM_OS, cim_os_id, map_os
from .paths import safe_href

if TYPE_CHECKING:
    from .exporter import ExportPlan


# --- namespaces -------------------------------------------------------------

OVF1_NS = "http://schemas.dmtf.org/ovf/envelope/1"
OVF2_NS = "http://schemas.dmtf.org/ovf/envelope/2"
OVF_NAMESPACES = (OVF1_NS, OVF2_NS)
CIM_NS = "http://schemas.dmtf.org/wbem/wscim/1/common"
RASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
SASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_StorageAllocationSettingData"
EPASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData"
VMW_NS = "http://www.vmware.com/schema/ovf"
VMTUI_NS = "https://vmtui.invalid/ovf/1"  # our own hints (the osinfo id) on export
SECURE_BOOT_KEY = "uefi.secureBoot.enabled"  # VMware's extra-config key, in a vmw:Config
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

VMDK_STREAM_URI = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

# CIM ResourceType values (DSP1043 / CIM_ResourceAllocationSettingData)
RT_PROCESSOR = 3
RT_MEMORY = 4
RT_IDE = 5
RT_SCSI = 6
RT_ETHERNET = 10
RT_FLOPPY = 14
RT_CD = 15
RT_DVD = 16
RT_DISK = 17
RT_OTHER_STORAGE = 20  # VMware's SATA controller (ResourceSubType vmware.sata.ahci)
RT_SATA = 20

MAX_DESCRIPTOR = 16 * 1024 * 1024  # an OVF envelope larger than this is refused


# --- the parsed package ---------------------------------------------------


@dataclass
class OvfFile:
    id: str
    href: str
    size: int | None = None
    compression: str | None = None
    path: str | None = None  # local file after extraction (or the OVA itself, see offset)
    offset: int = 0
    length: int | None = None  # set: the file is read in place at ``offset`` of ``path``


@dataclass
class OvfDisk:
    disk_id: str
    capacity: int  # bytes
    file_ref: str | None = None
    format: str = ""  # the format URI of the envelope
    populated_size: int | None = None
    controller: str = ""  # "ide", "scsi", "sata", "" (unknown)
    path: str | None = None  # local file of the image (None: an empty disk)
    offset: int = 0  # where the image starts in ``path`` (a member read in place from the OVA)
    length: int | None = None  # its length there; None: the whole file
    file_name: str = ""  # the href of its file in the package


@dataclass
class OvfNic:
    network: str
    model: str = ""  # ResourceSubType: E1000, VmxNet3, virtio, ...
    mac: str | None = None


@dataclass
class OvfPackage:
    source: str  # the .ova or .ovf given
    version: str  # "1.x" or "2.x"
    name: str
    description: str = ""
    vcpus: int = 1
    memory_mib: int = 1024
    os_cim_id: int | None = None
    os_type: str = ""  # vmw:osType or the OS description
    osinfo: str = "generic"  # best osinfo short id
    firmware: str | None = None  # "bios", "uefi" or None (no hint)
    secure_boot: bool = False  # VMware's uefi.secureBoot.enabled
    disks: list[OvfDisk] = field(default_factory=list)
    nics: list[OvfNic] = field(default_factory=list)
    files: dict[str, OvfFile] = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)
    manifest: str | None = None  # "checked (SHA256)" / None when there is none
    warnings: list[str] = field(default_factory=list)
    certificate: str | None = None  # the .cert file's name when the package is signed
    work_dir: str | None = None  # temp dir we own (removed by close())

    def close(self) -> None:
        if self.work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def summary_lines(self) -> list[str]:
        from ..sizes import fmt_bytes
        out = [f"Name:     {self.name}  (OVF {self.version})",
               f"CPUs:     {self.vcpus}",
               f"Memory:   {fmt_bytes(self.memory_mib * 1024 * 1024)}",
               f"OS:       {self.os_type or 'not given'} → {self.osinfo}",
               f"Firmware: {self.firmware or 'not given (BIOS)'}"
               + (" with Secure Boot" if self.firmware == "uefi" and self.secure_boot else "")]
        for i, d in enumerate(self.disks):
            name = (d.file_name or os.path.basename(d.path)) if d.path else "empty"
            out.append(f"Disk {i + 1}:   {fmt_bytes(d.capacity)}  {name}"
                       + (f"  ({d.controller})" if d.controller else ""))
        if not self.disks:
            out.append("Disks:    none")
        for i, n in enumerate(self.nics):
            out.append(f"NIC {i + 1}:    network '{n.network}'" + (f"  {n.model}" if n.model else ""))
        if not self.nics:
            out.append("NICs:     none")
        out.append(f"Manifest: {self.manifest or 'none in the package (digests not checked)'}")
        return out


# --- small helpers ----------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _attr(el: ET.Element, name: str) -> str | None:
    """An attribute in the OVF namespace (1.x or 2.x) or without a namespace."""
    for ns in OVF_NAMESPACES:
        v = el.get(f"{{{ns}}}{name}")
        if v is not None:
            return v
    return el.get(name)


def _children(el: ET.Element, local: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == local]


def _child(el: ET.Element, local: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == local:
            return c
    return None


def _child_text(el: ET.Element, local: str) -> str:
    c = _child(el, local)
    return (c.text or "").strip() if c is not None else ""


_UNIT_WORDS = {
    "byte": 1, "bytes": 1,
    "kilobyte": 1024, "kilobytes": 1024, "kb": 1024, "kib": 1024,
    "megabyte": 1024 ** 2, "megabytes": 1024 ** 2, "mb": 1024 ** 2, "mib": 1024 ** 2,
    "gigabyte": 1024 ** 3, "gigabytes": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3,
    "terabyte": 1024 ** 4, "terabytes": 1024 ** 4, "tb": 1024 ** 4, "tib": 1024 ** 4,
}
_UNIT_RE = re.compile(r"^bytes?\s*(?:\*\s*(\d+)\s*\^\s*(\d+))?$")


def parse_units(text: str | None, default: int = 1) -> int:
    """An OVF/CIM allocation unit ("byte * 2^20", "MegaBytes", "byte") as bytes.

    Programmatic units (DSP0004 annex C) are ``byte`` optionally times a
    power (``2^20``, ``10^6``); the unit words VMware and VirtualBox write
    (KiloBytes, MegaBytes, GigaBytes) are read as powers of 1024, as they
    mean them. Raises ValueError for anything else.
    """
    if text is None or not text.strip():
        return default
    t = " ".join(text.strip().lower().split())
    m = _UNIT_RE.match(t)
    if m:
        if m.group(1) is None:
            return 1
        base, exp = int(m.group(1)), int(m.group(2))
        if base not in (2, 10) or exp > 80:
            raise ValueError(f"unsupported allocation unit '{text.strip()}'")
        return base ** exp
    if t in _UNIT_WORDS:
        return _UNIT_WORDS[t]
    raise ValueError(f"unsupported allocation unit '{text.strip()}'")


def _int(text: str | None, what: str, where: str) -> int:
    try:
        value = int((text or "").strip())
    except ValueError:
        raise OvfError(f"{what} is not a whole number: '{(text or '').strip()}'", where) from None
    if value < 0:
        raise OvfError(f"{what} is negative: {value}", where)
    return value


# --- parsing ------------------------------------------------------------------


def parse_envelope(data: bytes | str, source: str = "descriptor.ovf", *,
                   known_os: Callable[[str], bool] | None = None) -> OvfPackage:
    """Parse an OVF envelope (no file checks): the pure part of :func:`open_package`."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return parse_descriptor(data, source, os.path.basename(source), known_os)


def parse_descriptor(data: bytes, source: str, ovf_name: str, known_os) -> OvfPackage:
    """Parse the descriptor ``ovf_name`` of the package ``source``."""
    where = f"'{ovf_name}'"
    if len(data) > MAX_DESCRIPTOR:
        raise OvfError("the descriptor is too large", where)
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise OvfError("the descriptor declares a DTD or entities (refused)", where)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        line, col = getattr(err, "position", (0, 0))
        raise OvfError(f"malformed XML at line {line}, column {col}: {err.msg if hasattr(err, 'msg') else err}",
                       where) from None
    if _local(root.tag) != "Envelope" or _ns(root.tag) not in OVF_NAMESPACES:
        raise OvfError(f"the root element is <{_local(root.tag)}> in namespace '{_ns(root.tag) or 'none'}', "
                       "not an OVF 1.x/2.x <Envelope>", where)
    version = "2.x" if _ns(root.tag) == OVF2_NS else "1.x"

    files: dict[str, OvfFile] = {}
    refs = _child(root, "References")
    if refs is not None:
        for f in _children(refs, "File"):
            fid, href = _attr(f, "id"), _attr(f, "href")
            if not fid or not href:
                raise OvfError("a <File> in References lacks ovf:id or ovf:href", where)
            comp = (_attr(f, "compression") or "").strip().lower() or None
            if comp not in (None, "identity", "gzip"):
                raise OvfError(f"file '{href}' uses compression '{comp}': only gzip is supported", where)
            if _attr(f, "chunkSize"):
                raise OvfError(f"file '{href}' is split into chunks (ovf:chunkSize): not supported", where)
            size = _attr(f, "size")
            files[fid] = OvfFile(fid, safe_href(href, where),
                                 _int(size, f"the size of file '{href}'", where) if size else None,
                                 None if comp == "identity" else comp)

    disks: dict[str, OvfDisk] = {}
    networks: list[str] = []
    vs = None
    for sec in root:
        loc = _local(sec.tag)
        if loc == "DiskSection":
            for d in _children(sec, "Disk"):
                did = _attr(d, "diskId")
                if not did:
                    raise OvfError("a <Disk> lacks ovf:diskId", where)
                cap_text = _attr(d, "capacity")
                if cap_text is None:
                    raise OvfError(f"disk '{did}' has no ovf:capacity", where)
                if cap_text.strip().startswith("${"):
                    raise OvfError(f"disk '{did}' takes its capacity from a property ({cap_text}): not supported",
                                   where)
                try:
                    unit = parse_units(_attr(d, "capacityAllocationUnits"))
                except ValueError as err:
                    raise OvfError(f"disk '{did}': {err}", where) from None
                cap = _int(cap_text, f"the capacity of disk '{did}'", where) * unit
                ref = _attr(d, "fileRef")
                if ref and ref not in files:
                    raise OvfError(f"disk '{did}' refers to file '{ref}' that References does not list", where)
                pop = _attr(d, "populatedSize")
                disks[did] = OvfDisk(did, cap, ref, _attr(d, "format") or "",
                                     _int(pop, "ovf:populatedSize", where) if pop else None)
        elif loc == "NetworkSection":
            for n in _children(sec, "Network"):
                if _attr(n, "name"):
                    networks.append(_attr(n, "name") or "")
        elif loc == "VirtualSystem":
            vs = sec
        elif loc == "VirtualSystemCollection":
            systems = [c for c in sec.iter() if _local(c.tag) == "VirtualSystem"]
            if len(systems) != 1:
                raise OvfError(f"the package holds {len(systems)} virtual systems (a vApp): import them "
                               "one at a time is not supported", where)
            vs = systems[0]
    if vs is None:
        raise OvfError("the envelope has no <VirtualSystem>", where)

    name = _child_text(vs, "Name") or (_attr(vs, "id") or "").strip()
    pkg = OvfPackage(source=source, version=version, name=name or "imported-vm", files=files,
                     networks=networks)
    ann = _child(vs, "AnnotationSection")
    if ann is not None:
        pkg.description = _child_text(ann, "Annotation")

    oss = _child(vs, "OperatingSystemSection")
    hint = ""
    if oss is not None:
        cim = _attr(oss, "id")
        if cim and cim.strip().isdigit():
            pkg.os_cim_id = int(cim)
        hint = oss.get(f"{{{VMTUI_NS}}}osinfo") or ""
        vmw_type = oss.get(f"{{{VMW_NS}}}osType") or ""
        desc = _child_text(oss, "Description")
        pkg.os_type = vmw_type or desc or (CIM_OS[pkg.os_cim_id][0] if pkg.os_cim_id in CIM_OS else "")
        if hint and (known_os is None or known_os(hint)):
            pkg.osinfo = hint
        else:
            pkg.osinfo = map_os(pkg.os_cim_id, vmw_type, desc, known=known_os)

    hw = _child(vs, "VirtualHardwareSection")
    if hw is None:
        raise OvfError(f"virtual system '{pkg.name}' has no <VirtualHardwareSection>", where)
    _parse_hardware(pkg, hw, disks, where)
    return pkg


def _item_fields(item: ET.Element) -> dict[str, str]:
    return {_local(c.tag): (c.text or "").strip() for c in item}


def _parse_hardware(pkg: OvfPackage, hw: ET.Element, disks: dict[str, OvfDisk], where: str) -> None:
    items = [c for c in hw if _local(c.tag) in ("Item", "StorageItem", "EthernetPortItem")]
    controllers: dict[str, str] = {}
    for it in items:
        f = _item_fields(it)
        rt = f.get("ResourceType", "")
        if rt == str(RT_IDE):
            controllers[f.get("InstanceID", "")] = "ide"
        elif rt == str(RT_SCSI):
            controllers[f.get("InstanceID", "")] = "scsi"
        elif rt == str(RT_SATA) and ("sata" in f.get("ResourceSubType", "").lower()
                                     or "ahci" in f.get("ResourceSubType", "").lower()):
            controllers[f.get("InstanceID", "")] = "sata"
    used: list[OvfDisk] = []
    cpu_seen = mem_seen = False
    for it in items:
        f = _item_fields(it)
        rt_text = f.get("ResourceType", "")
        if not rt_text.isdigit():
            continue
        rt = int(rt_text)
        label = f.get("ElementName") or f.get("InstanceID") or f"item of type {rt}"
        if rt == RT_PROCESSOR:
            n = _int(f.get("VirtualQuantity"), f"the CPU count ({label})", where)
            if n < 1:
                raise OvfError("the CPU count is 0", where)
            pkg.vcpus, cpu_seen = n, True
        elif rt == RT_MEMORY:
            try:
                unit = parse_units(f.get("AllocationUnits"), default=1024 * 1024)
            except ValueError as err:
                raise OvfError(f"memory: {err}", where) from None
            n = _int(f.get("VirtualQuantity"), f"the memory size ({label})", where) * unit
            if n < 1024 * 1024:
                raise OvfError(f"the memory size is {n} bytes: less than 1 MiB", where)
            pkg.memory_mib, mem_seen = max(1, n // (1024 * 1024)), True
        elif rt == RT_DISK:
            hr = f.get("HostResource", "")
            m = re.match(r"^(?:ovf:)?/(disk|file)/(.+)$", hr)
            if not m:
                raise OvfError(f"disk item '{label}' has HostResource '{hr}': expected ovf:/disk/<id>", where)
            kind, ident = m.groups()
            if kind == "disk":
                d = disks.get(ident)
                if d is None:
                    raise OvfError(f"disk item '{label}' refers to disk '{ident}' that DiskSection does not "
                                   "list", where)
            else:
                if ident not in pkg.files:
                    raise OvfError(f"disk item '{label}' refers to file '{ident}' that References does not "
                                   "list", where)
                d = OvfDisk(ident, pkg.files[ident].size or 0, ident)
            d.controller = controllers.get(f.get("Parent", ""), "")
            if d not in used:
                used.append(d)
        elif rt == RT_ETHERNET:
            net = f.get("Connection", "")
            pkg.nics.append(OvfNic(net, f.get("ResourceSubType", ""), f.get("Address") or None))
        elif rt in (RT_CD, RT_DVD) and f.get("HostResource"):
            pkg.warnings.append(f"CD/DVD '{label}' with media '{f.get('HostResource')}' is not imported.")
    if not cpu_seen:
        pkg.warnings.append("No CPU item: 1 vCPU assumed.")
    if not mem_seen:
        pkg.warnings.append("No memory item: 1024 MiB assumed.")
    for d in disks.values():  # listed but not attached: still import them, after the others
        if d not in used:
            used.append(d)
    pkg.disks = used
    # firmware hint: VMware's <vmw:Config vmw:key="firmware" vmw:value="efi"/>, VirtualBox's Firmware
    for el in hw.iter():
        loc = _local(el.tag)
        key = el.get(f"{{{VMW_NS}}}key") or el.get("key")
        value = (el.get(f"{{{VMW_NS}}}value") or el.get("value") or "").lower()
        if loc == "Config" and key == "firmware":
            pkg.firmware = "uefi" if value == "efi" else "bios" if value == "bios" else pkg.firmware
        elif loc == "Config" and key == SECURE_BOOT_KEY:
            pkg.secure_boot = yes(value)
    if pkg.firmware is None:
        for el in hw.iter():
            if _local(el.tag) == "Firmware" and (el.get("type") or "").upper() in ("EFI", "EFI64", "UEFI"):
                pkg.firmware = "uefi"


# --- building (export) --------------------------------------------------------


def build_envelope(plan: ExportPlan, files: list[tuple[str, int, int, int | None]]) -> bytes:
    """An OVF 1.0 envelope. ``files``: (href, file size, capacity, populated size) per disk."""
    ET.register_namespace("ovf", OVF1_NS)
    ET.register_namespace("rasd", RASD_NS)
    ET.register_namespace("vssd", VSSD_NS)
    ET.register_namespace("vmw", VMW_NS)
    ET.register_namespace("vmtuiovf", VMTUI_NS)  # not "vmtui": that prefix is the domain metadata's
    ET.register_namespace("xsi", XSI_NS)
    ET.register_namespace("cim", CIM_NS)
    O = f"{{{OVF1_NS}}}"

    def sub(parent, tag, text=None, **attrs):
        el = ET.SubElement(parent, tag, {k: v for k, v in attrs.items()})
        if text is not None:
            el.text = str(text)
        return el

    env = ET.Element(f"{O}Envelope", {f"{O}version": "1.0", "{http://www.w3.org/XML/1998/namespace}lang": "en-US"})
    refs = sub(env, f"{O}References")
    for i, (href, size, _cap, _pop) in enumerate(files):
        sub(refs, f"{O}File", **{f"{O}id": f"file{i + 1}", f"{O}href": href, f"{O}size": str(size)})
    ds = sub(env, f"{O}DiskSection")
    sub(ds, f"{O}Info", "Virtual disk information")
    for i, (_href, _size, cap, pop) in enumerate(files):
        attrs = {f"{O}diskId": f"vmdisk{i + 1}", f"{O}fileRef": f"file{i + 1}", f"{O}capacity": str(cap),
                 f"{O}capacityAllocationUnits": "byte", f"{O}format": VMDK_STREAM_URI}
        if pop is not None:
            attrs[f"{O}populatedSize"] = str(pop)
        sub(ds, f"{O}Disk", **attrs)
    ns = sub(env, f"{O}NetworkSection")
    sub(ns, f"{O}Info", "The list of logical networks")
    for net in sorted({n for n, _m, _mac in plan.nics}):
        n_el = sub(ns, f"{O}Network", **{f"{O}name": net})
        sub(n_el, f"{O}Description", f"The {net} network")
    vs = sub(env, f"{O}VirtualSystem", **{f"{O}id": plan.name})
    sub(vs, f"{O}Info", "A virtual machine")
    sub(vs, f"{O}Name", plan.name)
    if plan.description:
        ann = sub(vs, f"{O}AnnotationSection")
        sub(ann, f"{O}Info", "A human-readable annotation")
        sub(ann, f"{O}Annotation", plan.description)
    cim_id = cim_os_id(plan.osinfo)
    oss = sub(vs, f"{O}OperatingSystemSection", **{f"{O}id": str(cim_id), f"{{{VMTUI_NS}}}osinfo": plan.osinfo})
    sub(oss, f"{O}Info", "The kind of installed guest operating system")
    sub(oss, f"{O}Description", CIM_OS.get(cim_id, ("Other", []))[0])
    hw = sub(vs, f"{O}VirtualHardwareSection")
    sub(hw, f"{O}Info", "Virtual hardware requirements")
    system = sub(hw, f"{O}System")
    for tag, text in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                      ("VirtualSystemIdentifier", plan.name), ("VirtualSystemType", "vmx-07")):
        sub(system, f"{{{VSSD_NS}}}{tag}", text)
    iid = iter(range(1, 10_000))

    def item(fields: dict[str, str]) -> str:
        it = sub(hw, f"{O}Item")
        inst = str(next(iid))
        fields = {**fields, "InstanceID": inst}
        for k in sorted(fields):  # the CIM schema wants rasd elements in alphabetical order
            sub(it, f"{{{RASD_NS}}}{k}", fields[k])
        return inst

    item({"AllocationUnits": "hertz * 10^6", "Description": "Number of virtual CPUs",
          "ElementName": f"{plan.vcpus} virtual CPU(s)", "ResourceType": str(RT_PROCESSOR),
          "VirtualQuantity": str(plan.vcpus)})
    item({"AllocationUnits": "byte * 2^20", "Description": "Memory size",
          "ElementName": f"{plan.memory_mib}MB of memory", "ResourceType": str(RT_MEMORY),
          "VirtualQuantity": str(plan.memory_mib)})
    ide = any(d.bus == "ide" for d in plan.disks)
    if ide:
        ctrl = item({"Address": "0", "Description": "IDE Controller", "ElementName": "ideController0",
                     "ResourceType": str(RT_IDE)})
    elif any(d.bus == "sata" for d in plan.disks):
        ctrl = item({"Address": "0", "Description": "SATA Controller", "ElementName": "sataController0",
                     "ResourceSubType": "vmware.sata.ahci", "ResourceType": str(RT_SATA)})
    else:
        ctrl = item({"Address": "0", "Description": "SCSI Controller", "ElementName": "scsiController0",
                     "ResourceSubType": "lsilogic", "ResourceType": str(RT_SCSI)})
    for i in range(len(files)):
        item({"AddressOnParent": str(i), "ElementName": f"disk{i}", "HostResource": f"ovf:/disk/vmdisk{i + 1}",
              "Parent": ctrl, "ResourceType": str(RT_DISK)})
    for i, (net, model, mac) in enumerate(plan.nics):
        subtype = {"virtio": "VmxNet3", "e1000": "E1000", "e1000e": "E1000e"}.get(model, "E1000")
        fields = {"AutomaticAllocation": "true", "Connection": net,
                  "Description": f"{model or 'virtio'} ethernet adapter on '{net}'",
                  "ElementName": f"ethernet{i}", "ResourceSubType": subtype, "ResourceType": str(RT_ETHERNET)}
        if mac:
            fields["Address"] = mac
        item(fields)
    if plan.firmware == "uefi":
        sub(hw, f"{{{VMW_NS}}}Config", **{f"{O}required": "false", f"{{{VMW_NS}}}key": "firmware",
                                           f"{{{VMW_NS}}}value": "efi"})
        if plan.secure_boot:
            sub(hw, f"{{{VMW_NS}}}Config", **{f"{O}required": "false", f"{{{VMW_NS}}}key": SECURE_BOOT_KEY,
                                               f"{{{VMW_NS}}}value": "true"})
    ET.indent(env)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(env, encoding="utf-8", xml_declaration=False)
