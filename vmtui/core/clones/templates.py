"""VM templates: a marker in the domain's ``<metadata>``, and what
"prepare as template" does.

The marker lives under its own namespace (:data:`NS_TEMPLATE`), so libvirt's
metadata API (``virDomainSetMetadata`` with ``VIR_DOMAIN_METADATA_ELEMENT``)
replaces only our element and every other application's metadata (libosinfo,
vmtui's own install notes, ...) stays as it is::

    <metadata>
      <vmtuitpl:template xmlns:vmtuitpl="https://vmtui.dev/xmlns/template/1" marked="yes">
        <vmtuitpl:prepared method="firstboot" at="2026-11-27T15:00:00Z"
                           items="ssh-hostkeys machine-id ..."/>
        <vmtuitpl:firstboot>#cloud-config ...</vmtuitpl:firstboot>
      </vmtuitpl:template>
    </metadata>

Preparing a template ("sysprep") removes what clones must not share. Two
ways: ``virt-sysprep`` on the disk images when the host is this machine and
has the tool, or else a first-boot cloud-init config (kept in the metadata
above) that every VM made from the template gets in its seed.

Blocking functions take libvirt objects and run inside ``service.call``.
Nothing here imports Textual.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import libvirt
import yaml

from .. import storage
from ..xml import domxml
from ..files import safeyaml
from ..errors import VmtuiError
from ..xml.ownmeta import NS_TEMPLATE
from ..xml.xmlmodel import yes

PREFIX = "vmtuitpl"
TAG = f"{{{NS_TEMPLATE}}}template"

#: What clones must not share: (key, label, what is done about it).
SYSPREP_ITEMS: list[tuple[str, str, str]] = [
    ("ssh-hostkeys", "SSH host keys", "removed; each clone makes its own (ssh-keygen -A)"),
    ("machine-id", "/etc/machine-id", "emptied; systemd makes a new one at first boot"),
    ("net-rules", "Persistent network rules", "udev persistent-net rules, HWADDR= lines removed"),
    ("hostname", "Hostname", "reset; a clone takes its name from cloud-init meta-data"),
    ("cloud-init", "cloud-init instance state", "reset: cloud-init runs again in each clone"),
]
ITEM_KEYS = [key for key, _, _ in SYSPREP_ITEMS]

FIRSTBOOT_MARK = "/var/lib/vmtui/firstboot-done"
FIRSTBOOT_HEADER = "# vmtui template first-boot config"


# ---------------------------------------------------------------------------
# the marker
# ---------------------------------------------------------------------------


@dataclass
class TemplateMeta:
    """What our metadata element says about a domain."""
    marked: bool = False
    method: str | None = None  # "virt-sysprep" | "firstboot" once prepared
    prepared_at: str | None = None
    items: list[str] = field(default_factory=list)
    firstboot: str | None = None  # cloud-config user-data clones get

    def to_element(self, qualified: bool = True) -> ET.Element:
        """Our element; unqualified for ``virDomainSetMetadata`` (libvirt
        puts it into the namespace itself and refuses a second declaration)."""
        ns = f"{{{NS_TEMPLATE}}}" if qualified else ""
        el = ET.Element(f"{ns}template")
        if self.marked:
            el.set("marked", "yes")
        if self.method:
            prep = ET.SubElement(el, f"{ns}prepared", method=self.method)
            if self.prepared_at:
                prep.set("at", self.prepared_at)
            if self.items:
                prep.set("items", " ".join(self.items))
        if self.firstboot:
            ET.SubElement(el, f"{ns}firstboot").text = self.firstboot
        return el

    @property
    def empty(self) -> bool:
        return not (self.marked or self.method or self.firstboot)


def parse_meta(el: ET.Element | str | None) -> TemplateMeta:
    """Read our element (as an Element, or the XML string ``virDomainGetMetadata`` gives)."""
    if el is None:
        return TemplateMeta()
    if isinstance(el, str):
        try:
            el = ET.fromstring(el)
        except ET.ParseError:
            return TemplateMeta()

    def q(name: str) -> str:
        # virDomainGetMetadata returns the element with our namespace; a
        # hand-edited one may lack it: accept both
        return f"{{{NS_TEMPLATE}}}{name}" if el.tag.startswith("{") else name

    meta = TemplateMeta(marked=yes(el.get("marked")))
    prep = el.find(q("prepared"))
    if prep is not None:
        meta.method = prep.get("method")
        meta.prepared_at = prep.get("at")
        meta.items = (prep.get("items") or "").split()
    fb = el.find(q("firstboot"))
    if fb is not None and (fb.text or "").strip():
        meta.firstboot = fb.text
    return meta


def meta_from_xml(xml: str | bytes) -> TemplateMeta:
    """The template metadata of a domain, from its XML."""
    return parse_meta(domxml.get_metadata(xml, NS_TEMPLATE))


def is_template_xml(xml: str | bytes) -> bool:
    return meta_from_xml(xml).marked


def set_meta_xml(xml: str | bytes, meta: TemplateMeta) -> str:
    """Domain XML with our element replaced (or removed when empty); all
    other metadata and elements are kept."""
    return domxml.set_metadata_element(xml, NS_TEMPLATE, PREFIX, None if meta.empty else meta.to_element())


# blocking, on a virDomain ------------------------------------------------------


def read_meta(dom: libvirt.virDomain) -> TemplateMeta:
    """Blocking: one ``virDomainGetMetadata`` call (persistent config when
    there is one). No element -> an unmarked TemplateMeta."""
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if dom.isPersistent() else libvirt.VIR_DOMAIN_AFFECT_CURRENT
    return read_meta_flags(dom, flags)


def read_meta_flags(dom: libvirt.virDomain, flags: int = 0) -> TemplateMeta:
    try:
        text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_TEMPLATE, flags)
    except libvirt.libvirtError as err:
        if err.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN_METADATA, libvirt.VIR_ERR_NO_SUPPORT,
                                    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED):
            return TemplateMeta()
        raise
    return parse_meta(text)


def is_template(dom: libvirt.virDomain) -> bool:
    """Blocking, cheap: one metadata call (what the domain list asks)."""
    try:
        text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_TEMPLATE, 0)
    except libvirt.libvirtError:
        return False
    return parse_meta(text).marked


def write_meta(dom: libvirt.virDomain, meta: TemplateMeta) -> None:
    """Blocking: store our element in the persistent definition (only ours
    changes: the metadata API replaces one namespace's element). A running
    domain's live definition gets it too, so both say the same."""
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if dom.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if meta.empty:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, NS_TEMPLATE, flags)
    else:
        text = ET.tostring(meta.to_element(qualified=False), encoding="unicode")
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, text, PREFIX, NS_TEMPLATE, flags)


class TemplateError(ValueError):
    """Marking is not possible (running VM, transient VM)."""


def set_marked(dom: libvirt.virDomain, marked: bool) -> TemplateMeta:
    """Blocking: mark (or unmark) a shut-off persistent domain as a template.
    What "prepare as template" stored is kept either way."""
    if marked:
        if not dom.isPersistent():
            raise TemplateError("a transient VM cannot be a template (it has no persistent definition)")
        if dom.isActive():
            raise TemplateError("shut it off first: a template must not be running")
    meta = read_meta(dom)
    meta.marked = marked
    write_meta(dom, meta)
    return meta


# ---------------------------------------------------------------------------
# preparing: virt-sysprep or first-boot cloud-init
# ---------------------------------------------------------------------------


def is_local_uri(uri: str) -> bool:
    """True when libvirt runs on this machine (``qemu:///system``,
    ``qemu+unix:///...``, ``qemu+ssh://localhost/...``): only then are disk
    paths files this process can open."""
    host = urllib.parse.urlsplit(uri).hostname
    return host in (None, "", "localhost", "127.0.0.1", "::1")


def virt_sysprep_path() -> str | None:
    return shutil.which("virt-sysprep")


def choose_method(uri: str, sysprep: str | None = None) -> str:
    """"virt-sysprep" when this machine is the host and has the tool, else "firstboot"."""
    if sysprep is None:
        sysprep = virt_sysprep_path()
    return "virt-sysprep" if sysprep and is_local_uri(uri) else "firstboot"


def sysprep_command(disks: list[str], items: list[str], *, sysprep: str = "virt-sysprep") -> list[str]:
    """The virt-sysprep command line for the chosen ``items`` (keys of
    :data:`SYSPREP_ITEMS`); each disk of the VM is one ``-a``."""
    if not disks:
        raise ValueError("no disk to prepare")
    ops: list[str] = []
    extra: list[str] = []
    for item in items:
        if item == "ssh-hostkeys":
            ops.append("ssh-hostkeys")
        elif item == "machine-id":
            ops.append("machine-id")
        elif item == "net-rules":
            ops += ["udev-persistent-net", "net-hwaddr"]
        elif item == "hostname":
            ops.append("customize")
            extra += ["--hostname", "localhost"]
        elif item == "cloud-init":
            ops.append("customize")
            extra += ["--delete", "/var/lib/cloud/instances", "--delete", "/var/lib/cloud/instance",
                      "--delete", "/var/lib/cloud/data", "--delete", "/var/lib/cloud/sem"]
        else:
            raise ValueError(f"unknown item {item!r}")
    if not ops:
        raise ValueError("nothing chosen")
    cmd = [sysprep]
    for d in disks:
        cmd += ["-a", d]
    cmd += ["--enable", ",".join(dict.fromkeys(ops))] + extra
    return cmd


def firstboot_config(items: list[str]) -> str:
    """cloud-config user-data that resets, once, at a clone's first boot,
    what the template's clones must not share.

    * machine-id: emptied and made again (``systemd-machine-id-setup``);
    * persistent net rules: removed;
    * SSH host keys: deleted by cloud-init (``ssh_deletekeys``) and made
      again, plus ``ssh-keygen -A`` for images whose cloud-init skips it;
    * hostname: comes from the clone's meta-data (``local-hostname``);
    * cloud-init instance state: the clone's seed carries a new
      ``instance-id``, so cloud-init treats it as a new instance (running
      ``cloud-init clean`` during a boot would break that boot's run).

    bootcmd runs at every boot: the commands guard themselves with a marker
    file so they act only once.
    """
    unknown = [i for i in items if i not in ITEM_KEYS]
    if unknown:
        raise ValueError(f"unknown item(s): {', '.join(unknown)}")
    once: list[str] = []
    if "machine-id" in items:
        once += ["rm -f /etc/machine-id /var/lib/dbus/machine-id",
                 "(systemd-machine-id-setup || dbus-uuidgen --ensure=/etc/machine-id) >/dev/null 2>&1 || true"]
    if "net-rules" in items:
        once += ["rm -f /etc/udev/rules.d/70-persistent-net.rules",
                 "sed -i '/^HWADDR=/d' /etc/sysconfig/network-scripts/ifcfg-* 2>/dev/null || true"]
    if "ssh-hostkeys" in items:
        once += ["rm -f /etc/ssh/ssh_host_*"]
    cfg: dict = {}
    if once:
        script = (f"if [ ! -e {FIRSTBOOT_MARK} ]; then " + "; ".join(once)
                  + f"; mkdir -p {FIRSTBOOT_MARK.rsplit('/', 1)[0]}; touch {FIRSTBOOT_MARK}; fi")
        cfg["bootcmd"] = [["sh", "-c", script]]
    if "ssh-hostkeys" in items:
        cfg["ssh_deletekeys"] = True
        cfg["runcmd"] = [["sh", "-c", "ssh-keygen -A || true"]]
    if "hostname" in items:
        cfg["preserve_hostname"] = False
    body = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None, width=1000)
    return f"#cloud-config\n{FIRSTBOOT_HEADER} ({' '.join(items)})\n{body}"


def merge_user_data(user_data: str | None, firstboot: str | None) -> str:
    """The user's user-data with the template's first-boot config added.

    Both cloud-config: one document, list keys (bootcmd, runcmd...) joined
    (the template's first), the user's scalar keys win. Otherwise (a
    script, a #include...) a MIME multi-part both go in, which cloud-init
    reads. Already merged (the header is there) -> unchanged.
    """
    if not firstboot:
        return user_data or ""
    if not user_data or not user_data.strip():
        return firstboot
    if FIRSTBOOT_HEADER in user_data:
        return user_data
    if user_data.lstrip().startswith("#cloud-config"):
        try:
            mine = safeyaml.load(user_data) or {}
            theirs = safeyaml.load(firstboot) or {}
        except yaml.YAMLError:
            mine = None
        if isinstance(mine, dict) and isinstance(theirs, dict):
            merged = dict(theirs)
            for key, value in mine.items():
                if isinstance(value, list) and isinstance(merged.get(key), list):
                    merged[key] = merged[key] + value
                else:
                    merged[key] = value
            items = firstboot.splitlines()[1] if len(firstboot.splitlines()) > 1 else FIRSTBOOT_HEADER
            body = yaml.safe_dump(merged, sort_keys=False, default_flow_style=None, width=1000)
            return f"#cloud-config\n{items}\n{body}"
    msg = MIMEMultipart()
    for text in (firstboot, user_data):
        subtype = "cloud-config" if text.lstrip().startswith("#cloud-config") else "x-shellscript"
        if text.lstrip().startswith("#include"):
            subtype = "x-include-url"
        part = MIMEText(text, subtype, "utf-8")
        msg.attach(part)
    return msg.as_string()


def now_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_prepared(dom: libvirt.virDomain, method: str, items: list[str],
                    firstboot: str | None = None) -> TemplateMeta:
    """Blocking: note in the metadata how the VM was prepared (and the
    first-boot config clones get)."""
    meta = read_meta(dom)
    meta.method = method
    meta.prepared_at = now_stamp()
    meta.items = list(items)
    meta.firstboot = firstboot
    write_meta(dom, meta)
    return meta


# ---------------------------------------------------------------------------
# by UUID: what the screens ask through the service
# ---------------------------------------------------------------------------


def set_marked_by_uuid(conn: libvirt.virConnect, uuid: str, marked: bool) -> TemplateMeta:
    """Blocking: :func:`set_marked` on the domain with ``uuid``."""
    return set_marked(conn.lookupByUUIDString(uuid), marked)


def meta_by_uuid(conn: libvirt.virConnect, uuid: str) -> TemplateMeta:
    """Blocking: :func:`read_meta` of the domain with ``uuid``."""
    return read_meta(conn.lookupByUUIDString(uuid))


def _shut_off_domain(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
    dom = conn.lookupByUUIDString(uuid)
    if dom.isActive():
        raise VmtuiError("prepare", f"domain '{dom.name()}'", "it is running: shut it off first")
    return dom


def record_preparation(conn: libvirt.virConnect, uuid: str, method: str, items: list[str],
                       firstboot: str | None = None, *, mark: bool = False) -> TemplateMeta:
    """Blocking: :func:`record_prepared` on the shut-off domain ``uuid``, then
    mark it as a template when ``mark``. A running domain is refused."""
    dom = _shut_off_domain(conn, uuid)
    meta = record_prepared(dom, method, items, firstboot)
    if mark:
        meta = set_marked(dom, True)
    return meta


def sysprep_disks(conn: libvirt.virConnect, uuid: str) -> list[str]:
    """Blocking: the disk images virt-sysprep may change on the shut-off
    domain ``uuid`` (writable, not shareable). Refused (VmtuiError) while it
    runs, or when a disk backs a linked clone (``storage.overlays_of``):
    changing it would corrupt that clone."""
    dom = _shut_off_domain(conn, uuid)
    ov = domxml.parse_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    paths = [d.path for d in ov.disks if d.device == "disk" and d.path and not d.readonly and not d.shareable]
    clones = storage.overlays_of(conn, *paths)
    if clones:
        raise VmtuiError("prepare", f"domain '{dom.name()}'",
                         "its disks are the backing files of linked clones (" + ", ".join(clones)
                         + "); changing them would corrupt those clones")
    return paths
