"""The graphical console of a VM, seen from a terminal.

* Displays: which VNC/SPICE servers a domain has, where they listen, and the
  exact commands to reach them (``ssh -L`` tunnel for remote hosts,
  ``remote-viewer`` / ``vncviewer`` lines).  Passwords are never kept: only
  whether one is set.
* Screenshots: ``virDomainScreenshot`` through a stream, the PPM or PNG QEMU
  sends decoded with the standard library (zlib), scaled to a character grid
  and turned into rows of colour pairs for half-block characters (``▀`` with
  the top pixel as foreground, the bottom pixel as background), or into a
  luminance character ramp when there are no colours.
* Keys: Linux input key codes for ``virDomainSendKey``: Ctrl+Alt+Del,
  Ctrl+Alt+F1…F12 and typed ASCII text (US layout, Shift where needed).

Nothing here knows Textual.  The blocking functions (:func:`read_displays`,
:func:`capture`, :func:`send_combo`, :func:`type_text`) are meant to run
inside ``LibvirtService.call``.
"""

from __future__ import annotations

import hashlib
import shlex
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Callable, Iterable, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

import libvirt

from ..xml.domain_model import Domain

__all__ = [
    "Display",
    "ConnectInfo",
    "RemoteHost",
    "parse_displays",
    "read_displays",
    "displays_of",
    "remote_host",
    "connect_info",
    "Image",
    "ImageError",
    "decode_image",
    "decode_ppm",
    "decode_png",
    "encode_png",
    "fit_size",
    "scale",
    "halfblock_rows",
    "ramp_rows",
    "capture",
    "Frame",
    "keycodes_for_text",
    "COMBOS",
    "send_combo",
    "send_combo_to",
    "type_text",
    "type_text_into",
    "sample_image",
]

RGB = tuple[int, int, int]

# ---------------------------------------------------------------------------
# displays: where the VNC / SPICE servers listen
# ---------------------------------------------------------------------------

#: Graphics types a remote viewer can connect to over the network.
VIEWABLE = ("vnc", "spice")


@dataclass
class Display:
    """One ``<graphics>`` device of a domain (VNC or SPICE)."""

    type: str  # "vnc" / "spice"
    listen_type: str  # "address" / "network" / "socket" / "none"
    address: str | None = None  # listen address ("0.0.0.0", "127.0.0.1", "::", a host address)
    network: str | None = None  # libvirt network name for listen type "network"
    socket: str | None = None  # UNIX socket path for listen type "socket"
    port: int | None = None  # None: not allocated (VM not running) or no plain port
    tls_port: int | None = None  # SPICE only
    autoport: bool = False
    websocket: int | None = None  # VNC websocket port (noVNC)
    password_set: bool | None = None  # None: unknown (read-only connection)
    password_expires: str | None = None  # passwdValidTo
    keymap: str | None = None

    @property
    def label(self) -> str:
        return self.type.upper()

    @property
    def wildcard(self) -> bool:
        """Listening on every address of the host."""
        return self.listen_type == "address" and (self.address in (None, "", "0.0.0.0", "::", "[::]"))

    @property
    def loopback(self) -> bool:
        a = (self.address or "").strip("[]")
        return self.listen_type == "address" and (a.startswith("127.") or a in ("::1", "localhost"))

    @property
    def ports(self) -> list[int]:
        return [p for p in (self.port, self.tls_port) if p]

    def describe(self) -> str:
        """One line: listen, ports, password flag (never the password)."""
        if self.listen_type == "socket":
            where = f"UNIX socket {self.socket or '(path assigned at start)'}"
        elif self.listen_type == "none":
            where = "no network listener (reachable only through libvirt)"
        else:
            addr = self.address or "0.0.0.0"
            if self.wildcard:
                addr += " (all addresses)"
            elif self.loopback:
                addr += " (this host only)"
            if self.listen_type == "network":
                addr = f"network '{self.network}'" + (f" → {self.address}" if self.address else "")
            where = f"listen {addr}"
        bits = [where]
        if self.listen_type in ("address", "network"):
            if self.port:
                bits.append(f"port {self.port}" + (" (autoport)" if self.autoport else ""))
            elif self.autoport and not self.tls_port:
                bits.append("port assigned when the VM starts (autoport)")
            if self.tls_port:
                bits.append(f"TLS port {self.tls_port}")
            if self.websocket:
                bits.append(f"websocket {self.websocket}")
        if self.password_set is None:
            bits.append("password: unknown (read-only connection)")
        elif self.password_set:
            bits.append("password set" + (f" (valid to {self.password_expires})" if self.password_expires else ""))
        else:
            bits.append("no password")
        if self.keymap:
            bits.append(f"keymap {self.keymap}")
        return ", ".join(bits)


def parse_displays(xml: str | bytes, *, secure: bool = True) -> list[Display]:
    """The VNC and SPICE displays in a domain XML.

    ``secure`` says whether the XML was read with ``VIR_DOMAIN_XML_SECURE``:
    without it libvirt leaves out ``passwd`` and the password flag is
    unknown (unless an expiry time gives it away).  The password itself is
    never copied.
    """
    out: list[Display] = []
    for g in Domain.parse(xml, register=False).devices.graphics:
        gtype = g.type or ""
        if gtype not in VIEWABLE:
            continue
        d = Display(type=gtype, listen_type="address")
        first = g.first_listen
        if first is not None:
            d.listen_type = first.type or "address"
            d.address = first.address
            d.network = first.network
            d.socket = first.socket
        if d.address is None and d.listen_type == "address":
            d.address = g.listen_attr
        if g.socket_attr and first is None:  # old-style <graphics socket=...>
            d.listen_type, d.socket = "socket", g.socket_attr
        d.port = g.port_number or None
        d.tls_port = g.tls_port_number or None
        d.autoport = g.autoport_on
        d.websocket = g.websocket_port or None
        d.password_expires = g.passwd_valid_to
        if g.passwd is not None or d.password_expires:
            d.password_set = True
        else:
            d.password_set = False if secure else None
        d.keymap = g.keymap
        out.append(d)
    return out


def read_displays(dom: libvirt.virDomain) -> list[Display]:
    """Blocking: the displays of a domain's live XML (config XML when off).

    Reads the XML with ``VIR_DOMAIN_XML_SECURE`` to learn whether a password
    is set; read-only connections may not, so the flag is then unknown.
    """
    try:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
        secure = True
    except libvirt.libvirtError:
        xml = dom.XMLDesc(0)
        secure = False
    try:
        return parse_displays(xml, secure=secure)
    finally:
        del xml  # holds the password in clear text


def displays_of(conn: libvirt.virConnect, uuid: str) -> list[Display]:
    """Blocking: :func:`read_displays` of the domain with ``uuid``."""
    return read_displays(conn.lookupByUUIDString(uuid))


# ---------------------------------------------------------------------------
# connection lines
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteHost:
    """The host part of a remote libvirt URI, as ssh wants it."""

    host: str
    user: str | None = None
    port: int | None = None  # ssh port
    keyfile: str | None = None
    transport: str = "ssh"  # ssh / tls / tcp / libssh / libssh2 / ...

    @property
    def target(self) -> str:
        host = self.host
        return f"{self.user}@{host}" if self.user else host

    def ssh_options(self) -> list[str]:
        opts: list[str] = []
        if self.port:
            opts += ["-p", str(self.port)]
        if self.keyfile:
            opts += ["-i", self.keyfile]
        return opts


def remote_host(uri: str) -> RemoteHost | None:
    """The remote host of ``uri`` (``qemu+ssh://user@host:2222/system``), or
    None for a local URI (``qemu:///system``, ``qemu+unix:///system``)."""
    parts = urlsplit(uri)
    if not parts.hostname:
        return None
    scheme = parts.scheme
    transport = scheme.split("+", 1)[1] if "+" in scheme else "tls"
    if transport in ("unix", "ext"):
        return None
    query = parse_qs(parts.query)
    keyfile = query.get("keyfile", [None])[0]
    try:
        port = parts.port
    except ValueError:
        port = None
    if transport not in ("ssh", "libssh", "libssh2"):
        port = None  # the libvirtd port, not ssh's
    return RemoteHost(host=parts.hostname, user=unquote(parts.username) if parts.username else None,
                      port=port, keyfile=keyfile, transport=transport)


@dataclass
class ConnectInfo:
    """What to tell a user about one display: notes and commands to copy."""

    display: Display
    summary: str
    notes: list[str] = field(default_factory=list)
    commands: list[tuple[str, str]] = field(default_factory=list)  # (what it does, command line)


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _viewer_lines(d: Display, host: str) -> list[tuple[str, str]]:
    """remote-viewer / vncviewer lines for ``host`` (as reached from the user's side)."""
    h = _host_for_url(host)
    if d.type == "vnc":
        if not d.port:
            return []
        return [("view with virt-viewer", f"remote-viewer vnc://{h}:{d.port}"),
                ("or with TigerVNC / TightVNC", f"vncviewer {h}::{d.port}")]
    # spice
    if d.port and d.tls_port:
        url = f"spice://{h}:{d.port}?tls-port={d.tls_port}"
    elif d.port:
        url = f"spice://{h}:{d.port}"
    elif d.tls_port:
        url = f"spice://{h}?tls-port={d.tls_port}"
    else:
        return []
    return [("view with virt-viewer", f"remote-viewer {shlex.quote(url)}" if "?" in url else f"remote-viewer {url}")]


def _then(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Viewer lines that follow a tunnel: the first one says "then"."""
    return [(f"then {what}" if i == 0 else what, cmd) for i, (what, cmd) in enumerate(lines)]


def connect_info(d: Display, uri: str, domain_name: str) -> ConnectInfo:
    """Notes and exact command lines to reach display ``d`` of domain
    ``domain_name`` on the libvirt host of ``uri``."""
    info = ConnectInfo(display=d, summary=f"{d.label}: {d.describe()}")
    remote = remote_host(uri)
    virt_viewer = f"virt-viewer --connect {shlex.quote(uri)} {shlex.quote(domain_name)}"

    def through_libvirt(note: str, how: str = "view through libvirt") -> ConnectInfo:
        info.notes.append(note)
        info.commands.append((how, virt_viewer))
        return info

    if d.password_set:
        info.notes.append("The viewer will ask for the password (vmtui never shows it; "
                          "`virsh dumpxml --security-info` does).")
    if d.listen_type == "none":
        return through_libvirt("No network listener: only clients that go through libvirt can show it.")
    if d.listen_type == "socket":
        if remote is None:
            return through_libvirt(f"Listens on the UNIX socket {d.socket or '(assigned at start)'} of this host.")
        if not d.socket:
            return through_libvirt("The socket path is assigned when the VM starts.",
                                   "view through libvirt (tunnels over ssh itself)")
        local = 5900 if d.type == "vnc" else 5930
        ssh = ["ssh", "-N", *remote.ssh_options(), "-L", f"{local}:{d.socket}", remote.target]
        info.commands.append((f"tunnel: local port {local} → the socket on {remote.host}", shlex.join(ssh)))
        info.commands += _then(_viewer_lines(Display(type=d.type, listen_type="address", port=local),
                                             "localhost"))
        info.commands.append(("or view through libvirt (tunnels over ssh itself)", virt_viewer))
        return info

    if not d.ports:
        return through_libvirt("No port assigned yet: QEMU gets one when the VM starts (autoport).")

    listen = d.address or "0.0.0.0"
    if remote is None:
        host = "localhost" if d.wildcard else listen
        info.commands += _viewer_lines(d, host)
        info.commands.append(("or through libvirt", virt_viewer))
        return info

    # remote host: direct when the listen address is reachable from outside
    if not d.loopback:
        direct_host = remote.host if d.wildcard else listen
        info.notes.append(f"Listens on {'every address of ' + remote.host if d.wildcard else listen}: "
                          "reachable directly if no firewall is in the way"
                          + ("; without TLS or a password anyone who can reach it can use it." if
                             not d.password_set and not d.tls_port else "."))
        info.commands += [(f"direct: {what}", cmd) for what, cmd in _viewer_lines(d, direct_host)]
    else:
        info.notes.append(f"Listens on {listen} of {remote.host} only: tunnel over ssh.")
    # the exact address QEMU listens on; for a wildcard, the loopback of its family
    tunnel_to = ("::1" if listen.strip("[]") == "::" else "127.0.0.1") if d.wildcard else listen.strip("[]")
    ssh = ["ssh", "-N", *remote.ssh_options()]
    for p in d.ports:
        ssh += ["-L", f"{p}:{_host_for_url(tunnel_to)}:{p}"]
    ssh.append(remote.target)
    what = "tunnel: local port" + ("s " if len(d.ports) > 1 else " ") + ", ".join(map(str, d.ports))
    info.commands.append((f"{what} → {tunnel_to} on {remote.host} (pick other local ports if busy)",
                          shlex.join(ssh)))
    info.commands += _then(_viewer_lines(d, "localhost"))
    if remote.transport != "ssh":
        info.notes.append(f"This connection uses {remote.transport}; the tunnel assumes you can ssh to "
                          f"{remote.host}.")
    info.commands.append(("or view through libvirt (tunnels itself)", virt_viewer))
    return info


# ---------------------------------------------------------------------------
# images: PPM / PNG decoding
# ---------------------------------------------------------------------------


class ImageError(ValueError):
    """The screenshot data is not an image we can read."""


@dataclass(frozen=True)
class Image:
    """An 8-bit RGB image: ``data`` holds width*height*3 bytes, rows top first."""

    width: int
    height: int
    data: bytes

    def pixel(self, x: int, y: int) -> RGB:
        i = (y * self.width + x) * 3
        d = self.data
        return d[i], d[i + 1], d[i + 2]

    def colours(self) -> set[RGB]:
        d = self.data
        return {(d[i], d[i + 1], d[i + 2]) for i in range(0, len(d), 3)}


def _ppm_tokens(data: bytes, count: int) -> tuple[list[bytes], int]:
    """First ``count`` whitespace-separated header tokens (comments skipped)
    and the offset just after the single whitespace ending the last one."""
    tokens: list[bytes] = []
    i, n = 0, len(data)
    while len(tokens) < count:
        while i < n and data[i] in b" \t\r\n":
            i += 1
        if i < n and data[i] == ord("#"):
            while i < n and data[i] not in b"\r\n":
                i += 1
            continue
        start = i
        while i < n and data[i] not in b" \t\r\n#":
            i += 1
        if start == i:
            raise ImageError("truncated PPM header")
        tokens.append(data[start:i])
    return tokens, i + 1


def decode_ppm(data: bytes) -> Image:
    """Binary PPM (P6), maxval up to 65535."""
    if not data.startswith(b"P6"):
        raise ImageError("not a binary PPM (P6) image")
    (magic, w, h, maxval), off = _ppm_tokens(data, 4)
    try:
        width, height, maxv = int(w), int(h), int(maxval)
    except ValueError:
        raise ImageError("bad PPM header") from None
    if width <= 0 or height <= 0 or not 0 < maxv < 65536:
        raise ImageError(f"bad PPM size {width}x{height} / maxval {maxv}")
    sample = 1 if maxv < 256 else 2
    need = width * height * 3 * sample
    pixels = data[off:off + need]
    if len(pixels) < need:
        raise ImageError(f"PPM data truncated: {len(pixels)} of {need} bytes")
    if sample == 2:
        pixels = pixels[0::2]  # high bytes
        maxv >>= 8
    if maxv != 255:
        table = bytes(min(255, (v * 255 + maxv // 2) // maxv) for v in range(256))
        pixels = pixels.translate(table)
    return Image(width, height, bytes(pixels))


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """Byte-wise (a + b) mod 256 of two equal-length strings, without a Python
    loop (SWAR on big integers: add the low 7 bits, xor in the top bits)."""
    n = len(a)
    if not n:
        return b""
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    low = int.from_bytes(b"\x7f" * n, "big")
    high = int.from_bytes(b"\x80" * n, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def _unfilter(raw: bytes, width: int, height: int, bpp: int, stride: int) -> bytearray:
    """Undo the PNG row filters (None, Sub, Up, Average, Paeth)."""
    out = bytearray(stride * height)
    prior = bytes(stride)
    pos = 0
    for y in range(height):
        if pos + 1 + stride > len(raw):
            raise ImageError("PNG image data truncated")
        ftype = raw[pos]
        line = raw[pos + 1:pos + 1 + stride]
        pos += 1 + stride
        if ftype == 0:
            cur = bytes(line)
        elif ftype == 1:  # Sub: running sum per byte position modulo bpp
            buf = bytearray(stride)
            mask = (255).__and__
            for c in range(bpp):
                buf[c::bpp] = bytes(map(mask, accumulate(line[c::bpp])))
            cur = bytes(buf)
        elif ftype == 2:  # Up
            cur = _add_bytes(line, prior)
        elif ftype == 3:  # Average
            buf = bytearray(line)
            for i in range(stride):
                left = buf[i - bpp] if i >= bpp else 0
                buf[i] = (buf[i] + ((left + prior[i]) >> 1)) & 255
            cur = bytes(buf)
        elif ftype == 4:  # Paeth (the hot loop of PNG decoding: kept lean)
            buf = bytearray(line)
            for i in range(min(bpp, stride)):  # a = c = 0: Paeth picks b
                buf[i] = (buf[i] + prior[i]) & 255
            for i in range(bpp, stride):
                a = buf[i - bpp]
                b = prior[i]
                c = prior[i - bpp]
                pa = b - c if b > c else c - b
                pb = a - c if a > c else c - a
                pc = a + b - c - c
                if pc < 0:
                    pc = -pc
                if pa <= pb and pa <= pc:
                    buf[i] = (buf[i] + a) & 255
                elif pb <= pc:
                    buf[i] = (buf[i] + b) & 255
                else:
                    buf[i] = (buf[i] + c) & 255
            cur = bytes(buf)
        else:
            raise ImageError(f"bad PNG filter type {ftype} in row {y}")
        out[y * stride:(y + 1) * stride] = cur
        prior = cur
    return out


def decode_png(data: bytes) -> Image:
    """PNG (any colour type, bit depths 1-16, no interlacing) with zlib."""
    if not data.startswith(_PNG_SIG):
        raise ImageError("not a PNG image")
    pos = len(_PNG_SIG)
    ihdr = None
    palette = b""
    idat: list[bytes] = []
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if len(chunk) < length:
            raise ImageError("PNG chunk truncated")
        pos += 12 + length
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk[:13])
        elif ctype == b"PLTE":
            palette = chunk
        elif ctype == b"IDAT":
            idat.append(chunk)
        elif ctype == b"IEND":
            break
    if ihdr is None:
        raise ImageError("PNG without IHDR")
    width, height, depth, ctype, _comp, _filt, interlace = ihdr
    if ctype not in _CHANNELS or depth not in (1, 2, 4, 8, 16):
        raise ImageError(f"unsupported PNG colour type {ctype} / bit depth {depth}")
    if interlace:
        raise ImageError("interlaced PNG images are not supported")
    if width <= 0 or height <= 0 or width * height > 64_000_000:
        raise ImageError(f"bad PNG size {width}x{height}")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as err:
        raise ImageError(f"corrupt PNG data: {err}") from None
    channels = _CHANNELS[ctype]
    bits = channels * depth
    stride = (width * bits + 7) // 8
    bpp = max(1, bits // 8)
    px = _unfilter(raw, width, height, bpp, stride)

    if depth == 16:  # keep the high byte of each sample
        px = px[0::2]
        depth = 8
        stride = width * channels
    if depth < 8:  # unpack 1/2/4-bit samples (grey or palette: one channel)
        per = 8 // depth
        maskv = (1 << depth) - 1
        unpacked = bytearray(width * height)
        for y in range(height):
            row = px[y * stride:(y + 1) * stride]
            vals = bytearray()
            for byte in row:
                for k in range(per - 1, -1, -1):
                    vals.append((byte >> (k * depth)) & maskv)
            unpacked[y * width:(y + 1) * width] = vals[:width]
        px = unpacked
        if ctype == 0:  # scale grey levels to 0..255
            scale_ = 255 // maskv
            px = bytearray(px.translate(bytes(min(255, v * scale_) for v in range(256))))

    n = width * height
    if ctype == 2:
        rgb = bytes(px)
    elif ctype == 6:  # RGBA: drop alpha (composited on black)
        rgb = _composite(px, 4, n)
    elif ctype == 0:
        rgb = bytes(3 * n)
        rgb = bytearray(rgb)
        for c in range(3):
            rgb[c::3] = px
        rgb = bytes(rgb)
    elif ctype == 4:  # grey + alpha
        grey = _composite(px, 2, n)
        rgb = bytearray(3 * n)
        for c in range(3):
            rgb[c::3] = grey
        rgb = bytes(rgb)
    else:  # palette
        if not palette:
            raise ImageError("palette PNG without PLTE")
        pal = palette + bytes(768 - len(palette)) if len(palette) < 768 else palette[:768]
        rgb = bytearray(3 * n)
        for c in range(3):
            rgb[c::3] = bytes(px).translate(pal[c::3])
        rgb = bytes(rgb)
    return Image(width, height, rgb)


def _composite(px: bytes | bytearray, step: int, n: int) -> bytes:
    """Colour channels of an image with alpha, blended onto black."""
    alpha = px[step - 1::step]
    if alpha == b"\xff" * n:  # opaque: just drop alpha
        out = bytearray((step - 1) * n)
        for c in range(step - 1):
            out[c::step - 1] = px[c::step]
        return bytes(out)
    out = bytearray((step - 1) * n)
    for c in range(step - 1):
        out[c::step - 1] = bytes(v * a // 255 for v, a in zip(px[c::step], alpha))
    return bytes(out)


def decode_image(mime: str | None, data: bytes) -> Image:
    """Decode what ``virDomainScreenshot`` returned (the mime type says which
    format; the magic bytes decide when it is missing or odd)."""
    if data.startswith(_PNG_SIG):
        return decode_png(data)
    if data.startswith(b"P6"):
        return decode_ppm(data)
    raise ImageError(f"unsupported screenshot format {mime or 'unknown'!s}")


def encode_png(img: Image) -> bytes:
    """A plain RGB PNG of ``img`` (for tests and saved screenshots)."""
    rows = b"".join(b"\0" + img.data[y * img.width * 3:(y + 1) * img.width * 3] for y in range(img.height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (_PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", img.width, img.height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


# ---------------------------------------------------------------------------
# scaling and half-block rendering
# ---------------------------------------------------------------------------


def fit_size(width: int, height: int, max_w: int, max_h: int) -> tuple[int, int]:
    """Largest size with the image's aspect ratio inside max_w x max_h
    (square pixels: a half-block cell is about as wide as half its height)."""
    if width <= 0 or height <= 0 or max_w <= 0 or max_h <= 0:
        return 0, 0
    k = min(max_w / width, max_h / height)
    return max(1, min(max_w, round(width * k))), max(1, min(max_h, round(height * k)))


def scale(img: Image, out_w: int, out_h: int, samples: int = 4) -> list[list[RGB]]:
    """Resize to out_w x out_h by averaging up to samples x samples points of
    each output pixel's area (cheap box filter: keeps thin text visible as a
    shade instead of dropping it like nearest-neighbour does)."""
    if out_w <= 0 or out_h <= 0:
        return []
    w, h, d = img.width, img.height, img.data
    sx = min(samples, max(1, w // out_w))
    sy = min(samples, max(1, h // out_h))
    xs = [[min(w - 1, int((ox + (i + 0.5) / sx) * w / out_w)) * 3 for i in range(sx)] for ox in range(out_w)]
    rows: list[list[RGB]] = []
    n = sx * sy
    for oy in range(out_h):
        ys = [min(h - 1, int((oy + (j + 0.5) / sy) * h / out_h)) * w * 3 for j in range(sy)]
        row: list[RGB] = []
        for cols in xs:
            r = g = b = 0
            for base in ys:
                for x in cols:
                    i = base + x
                    r += d[i]
                    g += d[i + 1]
                    b += d[i + 2]
            row.append((r // n, g // n, b // n))
        rows.append(row)
    return rows


Cell = tuple["RGB | None", "RGB | None"]


def halfblock_rows(img: Image, cols: int, rows: int, *, keep_aspect: bool = True) -> list[list[Cell]]:
    """The picture as ``rows`` rows of ``cols`` cells; each cell is a pair
    (top pixel colour, bottom pixel colour) to draw as ``▀`` with fg = top and
    bg = bottom.  With ``keep_aspect`` the picture is centred and the unused
    cells are (None, None)."""
    if cols <= 0 or rows <= 0:
        return []
    if keep_aspect:
        pw, ph = fit_size(img.width, img.height, cols, rows * 2)
    else:
        pw, ph = cols, rows * 2
    pixels = scale(img, pw, ph)
    left = (cols - pw) // 2
    top = (rows * 2 - ph) // 2  # in pixels
    out: list[list[Cell]] = []
    for r in range(rows):
        line: list[Cell] = []
        y0, y1 = r * 2 - top, r * 2 + 1 - top
        row0 = pixels[y0] if 0 <= y0 < ph else None
        row1 = pixels[y1] if 0 <= y1 < ph else None
        for c in range(cols):
            x = c - left
            if 0 <= x < pw:
                line.append((row0[x] if row0 else None, row1[x] if row1 else None))
            else:
                line.append((None, None))
        out.append(line)
    return out


#: Darkest to brightest, for terminals without colours.
RAMP = " .:-=+*#%@"


def luminance(c: RGB | None) -> float:
    if c is None:
        return 0.0
    r, g, b = c
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0


def ramp_rows(cells: Sequence[Sequence[Cell]], ramp: str = RAMP) -> list[str]:
    """Half-block cells as characters of a luminance ramp (NO_COLOR)."""
    top = len(ramp) - 1
    out = []
    for line in cells:
        chars = []
        for a, b in line:
            if a is None and b is None:
                chars.append(" ")
                continue
            lum = (luminance(a) + luminance(b)) / 2
            chars.append(ramp[min(top, int(lum * top + 0.5))])
        out.append("".join(chars))
    return out


# ---------------------------------------------------------------------------
# screenshots
# ---------------------------------------------------------------------------

MAX_SCREENSHOT_BYTES = 128 * 1024 * 1024


@dataclass
class Frame:
    """One screenshot: the decoded image and how it came."""

    image: Image
    mime: str
    size: int  # bytes received
    seconds: float  # time to fetch and decode
    taken: float = field(default_factory=time.time)
    cells: list | None = None  # the picture scaled for a widget (halfblock_rows)
    digest: bytes = b""  # of the bytes received: an unchanged screen is not decoded again
    unchanged: bool = False  # same bytes as the previous frame
    payload: bytes = b""  # the bytes as QEMU sent them (PNG or PPM), for saving

    @property
    def extension(self) -> str:
        return ".ppm" if self.payload.startswith(b"P6") else ".png"

    def file_bytes(self) -> bytes:
        """What to write to a file: QEMU's own bytes, or a PNG of the image."""
        return self.payload or encode_png(self.image)


def capture(conn: libvirt.virConnect, uuid: str, screen: int = 0, timeout: float = 10.0,
            previous: Frame | None = None) -> Frame:
    """Blocking: take a screenshot of the domain (virsh screenshot) and decode it.

    The stream is aborted after ``timeout`` seconds so a hung transfer never
    keeps a worker thread forever.  When the bytes are those of ``previous``
    its image is reused (``unchanged`` is set) instead of decoding again.
    """
    start = time.monotonic()
    dom = conn.lookupByUUIDString(uuid)
    stream = conn.newStream(0)
    timer = threading.Timer(timeout, _abort_quietly, args=(stream,))
    timer.daemon = True
    try:
        mime = dom.screenshot(stream, screen, 0) or ""
        timer.start()
        chunks: list[bytes] = []
        total = 0
        while True:
            data = stream.recv(1 << 18)
            if data == -2:  # cannot happen on a blocking stream
                time.sleep(0.01)
                continue
            if not data:
                break
            chunks.append(data)
            total += len(data)
            if total > MAX_SCREENSHOT_BYTES:
                raise ImageError(f"screenshot larger than {MAX_SCREENSHOT_BYTES >> 20} MiB")
        stream.finish()
    except BaseException:
        _abort_quietly(stream)
        raise
    finally:
        timer.cancel()
    payload = b"".join(chunks)
    digest = hashlib.blake2b(payload, digest_size=16).digest()
    if previous is not None and previous.digest == digest:
        return Frame(image=previous.image, mime=mime, size=total, seconds=time.monotonic() - start,
                     digest=digest, unchanged=True, payload=previous.payload)
    image = decode_image(mime, payload)
    return Frame(image=image, mime=mime, size=total, seconds=time.monotonic() - start, digest=digest,
                 payload=payload)


def _abort_quietly(stream) -> None:
    try:
        stream.abort()
    except libvirt.libvirtError:
        pass


# ---------------------------------------------------------------------------
# keys (Linux input event codes, VIR_KEYCODE_SET_LINUX)
# ---------------------------------------------------------------------------

KEY_ESC, KEY_BACKSPACE, KEY_TAB, KEY_ENTER = 1, 14, 15, 28
KEY_LEFTCTRL, KEY_LEFTSHIFT, KEY_LEFTALT, KEY_SPACE = 29, 42, 56, 57
KEY_DELETE = 111
_F_KEYS = [59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 87, 88]  # F1..F12


def key_f(n: int) -> int:
    if not 1 <= n <= 12:
        raise ValueError(f"no F{n} key")
    return _F_KEYS[n - 1]


_ROWS = {
    # unshifted character -> Linux key code (US layout)
    **{c: code for c, code in zip("1234567890-=", range(2, 14))},
    **{c: code for c, code in zip("qwertyuiop[]", range(16, 28))},
    **{c: code for c, code in zip("asdfghjkl;'`", range(30, 42))},
    "\\": 43,
    **{c: code for c, code in zip("zxcvbnm,./", range(44, 54))},
    " ": KEY_SPACE,
    "\n": KEY_ENTER,
    "\t": KEY_TAB,
}
_SHIFTED = dict(zip('!@#$%^&*()_+{}:"~|<>?', "1234567890-=[];'`\\,./"))


def keycodes_for_char(ch: str) -> list[int]:
    """The key codes pressed together to type ``ch`` (Shift first)."""
    if ch in _ROWS:
        return [_ROWS[ch]]
    if "A" <= ch <= "Z":
        return [KEY_LEFTSHIFT, _ROWS[ch.lower()]]
    if ch in _SHIFTED:
        return [KEY_LEFTSHIFT, _ROWS[_SHIFTED[ch]]]
    raise ValueError(f"cannot type {ch!r}: only printable ASCII, Tab and Enter (US keyboard layout)")


def keycodes_for_text(text: str) -> list[list[int]]:
    """One key-code chord per character; ValueError names the first
    character that cannot be typed."""
    return [keycodes_for_char(ch) for ch in text.replace("\r\n", "\n")]


def untypable(text: str) -> list[str]:
    """The distinct characters of ``text`` that cannot be typed, in order."""
    bad: list[str] = []
    for ch in text.replace("\r\n", "\n"):
        try:
            keycodes_for_char(ch)
        except ValueError:
            if ch not in bad:
                bad.append(ch)
    return bad


#: Named key combinations for the send-keys menu: (label, key codes).
COMBOS: list[tuple[str, list[int]]] = [
    ("Ctrl+Alt+Del", [KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE]),
    *[(f"Ctrl+Alt+F{n}", [KEY_LEFTCTRL, KEY_LEFTALT, key_f(n)]) for n in range(1, 8)],
    ("Ctrl+Alt+Backspace", [KEY_LEFTCTRL, KEY_LEFTALT, KEY_BACKSPACE]),
    ("Enter", [KEY_ENTER]),
    ("Esc", [KEY_ESC]),
]

#: Hold time of typed keys in milliseconds (0 would mean QEMU's 100 ms).
TYPE_HOLD_MS = 30


def send_combo(dom: libvirt.virDomain, codes: Sequence[int], holdtime: int = 0) -> None:
    """Blocking: press ``codes`` together, then release them (virsh send-key)."""
    if not 0 < len(codes) <= 16:
        raise ValueError("between 1 and 16 keys at once")
    dom.sendKey(libvirt.VIR_KEYCODE_SET_LINUX, holdtime, list(codes), len(codes), 0)


def send_combo_to(conn: libvirt.virConnect, uuid: str, codes: Sequence[int], holdtime: int = 0) -> None:
    """Blocking: :func:`send_combo` to the domain with ``uuid``."""
    send_combo(conn.lookupByUUIDString(uuid), codes, holdtime)


def type_text(dom: libvirt.virDomain, chords: Iterable[Sequence[int]], *, holdtime: int = TYPE_HOLD_MS,
              gap: float = 0.0, cancelled: Callable[[], bool] | None = None) -> int:
    """Blocking: send each chord (one typed character) in order; returns how
    many were sent.  QEMU queues the key events, so they arrive in order."""
    sent = 0
    for codes in chords:
        if cancelled is not None and cancelled():
            break
        send_combo(dom, codes, holdtime)
        sent += 1
        if gap:
            time.sleep(gap)
    return sent


def type_text_into(conn: libvirt.virConnect, uuid: str, chords: Iterable[Sequence[int]], **kw) -> int:
    """Blocking: :func:`type_text` into the domain with ``uuid``."""
    return type_text(conn.lookupByUUIDString(uuid), chords, **kw)


# ---------------------------------------------------------------------------
# a sample picture (demo host, snapshots, screenshots: the test driver has
# no screenshots)
# ---------------------------------------------------------------------------


def sample_image(width: int = 320, height: int = 200) -> Image:
    """A synthetic installer screen: a blue desktop with a title bar, a
    dialog with lines of "text", a progress bar and two buttons."""
    px = bytearray(width * height * 3)

    def rect(x0: int, y0: int, x1: int, y1: int, c: RGB) -> None:
        x0, x1 = max(0, x0), min(width, x1)
        span = bytes(c) * max(0, x1 - x0)
        for y in range(max(0, y0), min(height, y1)):
            i = (y * width + x0) * 3
            px[i:i + len(span)] = span

    for y in range(height):  # vertical gradient
        shade = (20 + 40 * y // height, 50 + 60 * y // height, 120 + 80 * y // height)
        rect(0, y, width, y + 1, shade)
    rect(0, 0, width, height // 14, (230, 230, 230))
    rect(4, 3, 4 + width // 5, height // 14 - 3, (60, 60, 60))
    dx0, dy0, dx1, dy1 = width // 8, height // 5, width * 7 // 8, height * 4 // 5
    rect(dx0 + 4, dy0 + 4, dx1 + 4, dy1 + 4, (10, 20, 50))  # shadow
    rect(dx0, dy0, dx1, dy1, (236, 236, 236))
    rect(dx0, dy0, dx1, dy0 + height // 12, (200, 60, 40))
    line_h = max(2, height // 40)
    for k, frac in enumerate((0.85, 0.7, 0.9, 0.5)):
        y = dy0 + height // 12 + (k + 1) * line_h * 3
        rect(dx0 + 8, y, dx0 + 8 + int((dx1 - dx0 - 16) * frac), y + line_h, (50, 50, 50))
    py = dy1 - height // 5
    rect(dx0 + 8, py, dx1 - 8, py + height // 20, (170, 170, 170))
    rect(dx0 + 8, py, dx0 + 8 + (dx1 - dx0 - 16) * 3 // 5, py + height // 20, (40, 170, 60))
    by = dy1 - height // 10
    rect(dx1 - width // 3, by, dx1 - width // 5 - 4, by + height // 18, (120, 120, 120))
    rect(dx1 - width // 5, by, dx1 - 8, by + height // 18, (40, 90, 200))
    return Image(width, height, bytes(px))
