"""What a disk image really is, before a VM is built on it: its format, its
size, its own backing file and who may read it -- probed, never guessed.

A cloud image named as a host path used to get an overlay with backing
format *raw* (libvirt's default when the volume XML names none): the guest
then read the qcow2 header as its disk and SeaBIOS found nothing to boot.
:func:`probe_image` asks, in this order:

1. libvirt, when a storage pool has the image (``vol.XMLDesc`` re-reads the
   file's header each time);
2. libvirt again after refreshing the active pools on the image's directory
   (a file copied in by hand is listed only after a refresh);
3. ``qemu-img info`` when the host is this machine;
4. libvirt once more through a transient dir pool started on the image's
   directory and stopped again (as virt-manager does for paths outside any
   pool; stopping a dir pool removes no file) -- this works on remote hosts.

An image none of these can read is refused with the reasons: vmtui does not
guess a format.

**Owner and mode of a base image.** When a VM starts, libvirt's DAC security
driver (libvirt 9.0, ``dynamic_ownership=1``, the default) changes the owner
of every image of a disk's backing chain to the QEMU user, and when the VM
stops it gives back only the top image's: a shared base image stays owned by
``libvirt-qemu``. vmtui therefore writes the backing chain into the domain
XML with ``<seclabel model='dac' relabel='no'/>`` on each base layer
(:meth:`vmtui.core.xml.domain_model.Disk.set_backing_chain`): libvirt leaves
the base alone, and QEMU must be able to read it as it is.
:func:`qemu_read_problem` says when it cannot (owner, group and mode against
the QEMU user of the host's DAC security model).

Every function taking a ``conn`` is blocking.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import stat
import subprocess
import urllib.parse
import uuid as uuid_mod
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import libvirt

from ..errors import VmtuiError, failure as _fail, is_connection_lost

log = logging.getLogger(__name__)

__all__ = ["ImageProbe", "is_local_uri", "probe_image", "qemu_ids", "qemu_read_problem"]

QEMU_IMG_TIMEOUT = 60.0  # seconds for one ``qemu-img info``
MAX_CHAIN = 8  # backing files followed below a base image
PROBE_POOL_PREFIX = "vmtui-probe-"


@dataclass
class ImageProbe:
    """One disk image as libvirt or qemu-img sees it.

    ``how`` says who answered (for messages). ``owner``/``group``/``mode``
    are None when nobody told (the test driver). ``below`` is the probe of
    the image's own backing file, if it has one."""

    path: str
    format: str
    capacity: int  # virtual size, bytes
    how: str
    pool: str | None = None
    volume: str | None = None
    owner: int | None = None
    group: int | None = None
    mode: int | None = None  # permission bits
    backing: str | None = None
    below: "ImageProbe | None" = None

    @property
    def chain(self) -> list[tuple[str, str]]:
        """(path, format) of this image and the ones below it, top first."""
        out: list[tuple[str, str]] = []
        probe: ImageProbe | None = self
        while probe is not None:
            out.append((probe.path, probe.format))
            probe = probe.below
        return out

    @property
    def layers(self) -> list["ImageProbe"]:
        out: list[ImageProbe] = []
        probe: ImageProbe | None = self
        while probe is not None:
            out.append(probe)
            probe = probe.below
        return out


def is_local_uri(uri: str) -> bool:
    """True when the libvirt host is this machine (paths can be checked here).
    The test driver's files are imaginary: not local."""
    parts = urllib.parse.urlsplit(uri or "")
    driver, _, transport = parts.scheme.partition("+")
    if driver == "test":
        return False
    host = parts.hostname or ""
    return host in ("", "localhost", "127.0.0.1", "::1") and transport in ("", "unix")


def _conn_is_local(conn: libvirt.virConnect) -> bool:
    try:
        return is_local_uri(conn.getURI())
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        return False


# ---------------------------------------------------------------------------
# the answers


def _int(text: str | None, base: int = 10) -> int | None:
    try:
        return int((text or "").strip(), base)
    except ValueError:
        return None


def _from_volume_xml(xml: str, pool: str, how: str) -> ImageProbe:
    from . import _parse_volume

    info = _parse_volume(xml, pool)
    root = ET.fromstring(xml)
    perms = root.find("target/permissions")
    mode = _int(perms.findtext("mode"), 8) if perms is not None else None
    return ImageProbe(path=info.path, format=info.format or "", capacity=info.capacity, how=how, pool=pool,
                      volume=info.name, owner=_int(perms.findtext("owner")) if perms is not None else None,
                      group=_int(perms.findtext("group")) if perms is not None else None,
                      mode=mode, backing=info.backing)


def _from_volume(vol: libvirt.virStorageVol, how: str | None = None) -> ImageProbe:
    pool = vol.storagePoolLookupByVolume().name()
    return _from_volume_xml(vol.XMLDesc(0), pool, how or f"libvirt (volume of pool '{pool}')")


def _pool_path(pool: libvirt.virStoragePool) -> str | None:
    try:
        path = ET.fromstring(pool.XMLDesc(0)).findtext("target/path")
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        return None
    return posixpath.normpath(path) if path else None


def _after_refresh(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol | None:
    """The volume at ``path`` after refreshing the active pools on its directory."""
    directory = posixpath.dirname(path)
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        if _pool_path(pool) != directory:
            continue
        try:
            pool.refresh(0)
            return pool.storageVolLookupByName(posixpath.basename(path))
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            log.info("pool %s: %s", pool.name(), err)
    return None


def _missing(path: str) -> bool:
    """Surely not there (a directory we may not search is not "missing")."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


class _NoAnswer(Exception):
    """One way of probing could not tell (the message says why)."""


def _qemu_img(path: str) -> ImageProbe:
    cmd = ["qemu-img", "info", "--output=json", "-U", path]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT,
                             stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise _NoAnswer("qemu-img is not installed here") from None
    except (OSError, subprocess.TimeoutExpired) as err:
        raise _NoAnswer(f"qemu-img info failed: {err}") from None
    if out.returncode != 0:
        lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1].removeprefix("qemu-img: ") if lines else f"exit code {out.returncode}"
        raise _NoAnswer(f"qemu-img: {last}")
    try:
        info = json.loads(out.stdout)
        fmt = str(info["format"])
        size = int(info["virtual-size"])
    except (ValueError, KeyError, TypeError):
        raise _NoAnswer("qemu-img info gave no format") from None
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    if backing and not str(backing).startswith("/"):
        backing = posixpath.normpath(posixpath.join(posixpath.dirname(path), str(backing)))
    probe = ImageProbe(path=path, format=fmt, capacity=size, how="qemu-img info", backing=backing or None)
    try:
        st = os.stat(path)
        probe.owner, probe.group, probe.mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return probe


def _through_transient_pool(conn: libvirt.virConnect, path: str) -> ImageProbe:
    """libvirt probes the file through a dir pool started on its directory
    for this one question (works on remote hosts too)."""
    directory = posixpath.dirname(path) or "/"
    from . import dir_pool_xml

    try:
        pool = conn.storagePoolCreateXML(dir_pool_xml(f"{PROBE_POOL_PREFIX}{uuid_mod.uuid4().hex[:12]}", directory), 0)
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        raise _NoAnswer(f"libvirt cannot look into {directory}: {err.get_error_message()}") from None
    try:
        try:
            vol = pool.storageVolLookupByName(posixpath.basename(path))
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            raise _NoAnswer(f"no such file on the host: {path}") from None
        return _from_volume_xml(vol.XMLDesc(0), "", f"libvirt (a transient pool on {directory})")
    finally:
        try:
            pool.destroy()  # transient: gone; the files stay
        except libvirt.libvirtError as err:
            if is_connection_lost(err):
                raise
            log.warning("cannot stop the probe pool on %s: %s", directory, err)


def probe_image(conn: libvirt.virConnect, ref: str, *, local: bool | None = None,
                _depth: int = 0) -> ImageProbe:
    """Blocking: the image at a host path or ``pool/volume`` (see the module
    text for the order of questions), with its own backing chain probed too.

    ``local``: the host is this machine (None: decided from the URI). Raises
    :class:`VmtuiError` naming the image and every reason it could not be
    read; a lost connection stays a ``libvirtError``."""
    from . import _lookup

    action = "probe the disk image"
    obj = f"'{ref}'"
    ref = (ref or "").strip()
    if local is None:
        local = _conn_is_local(conn)
    why: list[str] = []
    probe: ImageProbe | None = None
    try:
        vol = _lookup(conn, ref)
        if vol is None and ref.startswith("/"):
            vol = _after_refresh(conn, posixpath.normpath(ref))
        if vol is not None:
            probe = _from_volume(vol)
        elif not ref.startswith("/"):
            raise VmtuiError(action, obj, "no storage pool has this volume" if "/" in ref
                             else "give a path on the host or pool/volume")
        else:
            path = posixpath.normpath(ref)
            if local and _missing(path):
                raise VmtuiError(action, obj, "no such file on the host")
            ways = ([_qemu_img] if local else []) + [lambda p: _through_transient_pool(conn, p)]
            for way in ways:
                try:
                    probe = way(path)
                    break
                except _NoAnswer as err:
                    why.append(str(err))
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        raise _fail(action, obj, err) from None
    if probe is None:
        raise VmtuiError(action, obj, "cannot tell its format: " + "; ".join(why),
                         "vmtui does not guess a format: put the image into a storage pool, "
                         "or make it readable")
    if not probe.format:
        raise VmtuiError(action, obj, f"{probe.how} gave no format for it")
    if probe.backing:
        if _depth >= MAX_CHAIN:
            raise VmtuiError(action, obj, f"its backing chain is longer than {MAX_CHAIN} images")
        try:
            probe.below = probe_image(conn, probe.backing, local=local, _depth=_depth + 1)
        except VmtuiError as err:
            raise VmtuiError(action, obj, f"its backing file {probe.backing}: {err.cause}", err.hint) from None
    return probe


# ---------------------------------------------------------------------------
# may QEMU read it?


def qemu_ids(conn: libvirt.virConnect, virt_type: str = "kvm") -> tuple[int, int] | None:
    """(uid, gid) QEMU runs as, from the host capabilities' DAC security
    model (``<baselabel type='kvm'>+64055:+994</baselabel>``); None when the
    host has no DAC model (then libvirt changes no owner either)."""
    try:
        root = ET.fromstring(conn.getCapabilities())
    except libvirt.libvirtError as err:
        if is_connection_lost(err):
            raise
        return None
    for sec in root.iterfind("host/secmodel"):
        if (sec.findtext("model") or "").strip() != "dac":
            continue
        labels = {b.get("type"): (b.text or "").strip() for b in sec.iterfind("baselabel")}
        label = labels.get(virt_type) or labels.get("kvm") or labels.get("qemu") or ""
        uid, _, gid = label.partition(":")
        u, g = _int(uid.lstrip("+")), _int(gid.lstrip("+"))
        if u is not None and g is not None:
            return u, g
    return None


def _groups_of(uid: int, gid: int) -> set[int]:
    """The groups of local user ``uid`` (supplementary ones too), best effort."""
    import pwd

    try:
        return set(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
    except (KeyError, OSError):
        return {gid}


def _user_name(uid: int, local: bool) -> str:
    if local:
        import pwd

        try:
            return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
        except KeyError:
            pass
    return f"uid {uid}"


def qemu_read_problem(probe: ImageProbe, ids: tuple[int, int] | None, *, local: bool = False) -> str | None:
    """Why QEMU (running as ``ids``) cannot read every layer of ``probe`` as
    the files are -- vmtui tells libvirt not to change their owner -- or
    None (readable, or nobody can tell)."""
    if ids is None:
        return None
    uid, gid = ids
    if uid == 0:
        return None
    groups = _groups_of(uid, gid) if local else {gid}
    for layer in probe.layers:
        if layer.mode is None or layer.owner is None:
            continue
        mode = layer.mode
        if layer.owner == uid:
            ok = bool(mode & 0o400)
        elif layer.group in groups:
            ok = bool(mode & 0o040)
        else:
            ok = bool(mode & 0o004)
        if not ok:
            return (f"QEMU runs as {_user_name(uid, local)} and cannot read {layer.path} (owner {layer.owner}, "
                    f"group {layer.group}, mode {mode:04o}); vmtui does not let libvirt change the owner of a "
                    f"base image other VMs may share: make it readable, e.g. chmod o+r {layer.path}")
    return None
