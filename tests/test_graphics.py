"""core.graphics: displays and connection lines, PPM/PNG decoding,
half-block rendering, key codes."""

from __future__ import annotations

import shlex
import struct
import zlib

import pytest

from vmtui.core.consoles import graphics as G

# --- displays ------------------------------------------------------------------


def _dom(graphics: str) -> str:
    return f"<domain type='kvm'><name>web</name><devices>{graphics}<video/></devices></domain>"


def test_parse_vnc_running_with_password():
    xml = _dom("<graphics type='vnc' port='5901' autoport='yes' websocket='5701' listen='0.0.0.0' "
               "passwd='s3cret' keymap='de'><listen type='address' address='0.0.0.0'/></graphics>")
    (d,) = G.parse_displays(xml)
    assert (d.type, d.listen_type, d.address, d.port, d.autoport, d.websocket) == \
        ("vnc", "address", "0.0.0.0", 5901, True, 5701)
    assert d.password_set is True and d.wildcard and not d.loopback
    assert "s3cret" not in repr(d) and "s3cret" not in d.describe()
    assert d.describe() == ("listen 0.0.0.0 (all addresses), port 5901 (autoport), websocket 5701, "
                            "password set, keymap de")


def test_parse_variants():
    xml = _dom(
        "<graphics type='spice' port='-1' tlsPort='-1' autoport='yes'><listen type='address' "
        "address='127.0.0.1'/></graphics>"
        "<graphics type='vnc'><listen type='socket' socket='/run/vnc.sock'/></graphics>"
        "<graphics type='spice'><listen type='none'/></graphics>"
        "<graphics type='vnc' port='5905' autoport='no'><listen type='network' network='default' "
        "address='192.168.122.1'/></graphics>"
        "<graphics type='egl-headless'/><graphics type='sdl'/>")
    spice, sock, none, net = G.parse_displays(xml, secure=False)
    assert spice.port is None and spice.tls_port is None and spice.autoport and spice.loopback
    assert spice.password_set is None  # not read with the SECURE flag: unknown
    assert "port assigned when the VM starts" in spice.describe()
    assert "password: unknown" in spice.describe()
    assert (sock.listen_type, sock.socket) == ("socket", "/run/vnc.sock")
    assert none.listen_type == "none" and "no network listener" in none.describe()
    assert (net.listen_type, net.network, net.address, net.port) == ("network", "default", "192.168.122.1", 5905)
    assert net.describe().startswith("listen network 'default' → 192.168.122.1, port 5905")


def test_password_expiry_reveals_password_without_secure_flag():
    (d,) = G.parse_displays(_dom("<graphics type='vnc' port='5900' passwdValidTo='2030-01-01T00:00:00'/>"),
                            secure=False)
    assert d.password_set is True and "valid to 2030" in d.describe()


def test_remote_host_parsing():
    assert G.remote_host("qemu:///system") is None
    assert G.remote_host("qemu+unix:///system") is None
    r = G.remote_host("qemu+ssh://admin@kvm1.example.org/system")
    assert (r.host, r.user, r.port, r.target, r.transport) == ("kvm1.example.org", "admin", None,
                                                               "admin@kvm1.example.org", "ssh")
    r = G.remote_host("qemu+ssh://root@10.0.0.5:2222/system?keyfile=/home/me/.ssh/id_kvm")
    assert r.ssh_options() == ["-p", "2222", "-i", "/home/me/.ssh/id_kvm"]
    r = G.remote_host("qemu+tls://kvm2/system")
    assert (r.host, r.user, r.transport, r.port) == ("kvm2", None, "tls", None)


def _cmds(info: G.ConnectInfo) -> list[str]:
    return [c for _what, c in info.commands]


REMOTE = "qemu+ssh://admin@kvm1.example.org/system"


def test_remote_loopback_vnc_tunnel():
    (d,) = G.parse_displays(_dom("<graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'>"
                                 "<listen type='address' address='127.0.0.1'/></graphics>"))
    info = G.connect_info(d, REMOTE, "web")
    assert _cmds(info) == [
        "ssh -N -L 5901:127.0.0.1:5901 admin@kvm1.example.org",
        "remote-viewer vnc://localhost:5901",
        "vncviewer localhost::5901",
        "virt-viewer --connect qemu+ssh://admin@kvm1.example.org/system web",
    ]
    assert any("tunnel over ssh" in n for n in info.notes)


def test_remote_wildcard_vnc_direct_and_tunnel_with_ssh_port():
    (d,) = G.parse_displays(_dom("<graphics type='vnc' port='5900' listen='0.0.0.0'/>"))
    info = G.connect_info(d, "qemu+ssh://root@kvm1:2222/system", "my vm")
    cmds = _cmds(info)
    assert cmds[:2] == ["remote-viewer vnc://kvm1:5900", "vncviewer kvm1::5900"]
    assert "ssh -N -p 2222 -L 5900:127.0.0.1:5900 root@kvm1" in cmds
    assert cmds[-1] == "virt-viewer --connect qemu+ssh://root@kvm1:2222/system 'my vm'"
    assert any("anyone who can reach it" in n for n in info.notes)


def test_remote_ipv6_wildcard_and_specific_address():
    (d6,) = G.parse_displays(_dom("<graphics type='vnc' port='5902'><listen type='address' address='::'/>"
                                  "</graphics>"))
    assert d6.wildcard
    assert "ssh -N -L '5902:[::1]:5902' admin@kvm1.example.org" in _cmds(G.connect_info(d6, REMOTE, "x"))
    (d,) = G.parse_displays(_dom("<graphics type='vnc' port='5903'><listen type='address' "
                                 "address='fd00::5'/></graphics>"))
    cmds = _cmds(G.connect_info(d, REMOTE, "x"))
    assert "remote-viewer vnc://[fd00::5]:5903" in cmds
    assert "ssh -N -L '5903:[fd00::5]:5903' admin@kvm1.example.org" in cmds
    assert shlex.split("ssh -N -L '5903:[fd00::5]:5903' h")[3] == "5903:[fd00::5]:5903"


def test_remote_spice_with_tls_forwards_both_ports():
    (d,) = G.parse_displays(_dom("<graphics type='spice' port='5930' tlsPort='5931' autoport='yes' "
                                 "passwd='x'><listen type='address' address='127.0.0.1'/></graphics>"))
    info = G.connect_info(d, REMOTE, "db")
    cmds = _cmds(info)
    assert cmds[0] == "ssh -N -L 5930:127.0.0.1:5930 -L 5931:127.0.0.1:5931 admin@kvm1.example.org"
    assert cmds[1] == "remote-viewer 'spice://localhost:5930?tls-port=5931'"
    assert not any(c.startswith("vncviewer") for c in cmds)
    assert any("ask for the password" in n for n in info.notes)


def test_remote_socket_listen_forwards_to_the_socket():
    (d,) = G.parse_displays(_dom("<graphics type='vnc'><listen type='socket' "
                                 "socket='/var/lib/libvirt/qemu/domain-3-web/vnc.sock'/></graphics>"))
    cmds = _cmds(G.connect_info(d, REMOTE, "web"))
    assert cmds[0] == ("ssh -N -L 5900:/var/lib/libvirt/qemu/domain-3-web/vnc.sock "
                       "admin@kvm1.example.org")
    assert cmds[1] == "remote-viewer vnc://localhost:5900"


def test_local_lines():
    (lo, any_, sock, none) = G.parse_displays(_dom(
        "<graphics type='vnc' port='5900' listen='127.0.0.1'/>"
        "<graphics type='spice' port='5930'><listen type='address' address='0.0.0.0'/></graphics>"
        "<graphics type='vnc'><listen type='socket' socket='/run/v.sock'/></graphics>"
        "<graphics type='vnc'><listen type='none'/></graphics>"))
    uri = "qemu:///system"
    assert _cmds(G.connect_info(lo, uri, "a")) == [
        "remote-viewer vnc://127.0.0.1:5900", "vncviewer 127.0.0.1::5900",
        "virt-viewer --connect qemu:///system a"]
    assert _cmds(G.connect_info(any_, uri, "a"))[0] == "remote-viewer spice://localhost:5930"
    assert _cmds(G.connect_info(sock, uri, "a")) == ["virt-viewer --connect qemu:///system a"]
    info = G.connect_info(none, uri, "a")
    assert _cmds(info) == ["virt-viewer --connect qemu:///system a"]
    assert "No network listener" in info.notes[0]
    assert not any("ssh" in c for c in _cmds(G.connect_info(lo, uri, "a")))


def test_not_running_autoport_has_no_port_lines():
    (d,) = G.parse_displays(_dom("<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>"))
    info = G.connect_info(d, REMOTE, "web")
    assert _cmds(info) == ["virt-viewer --connect qemu+ssh://admin@kvm1.example.org/system web"]
    assert "No port assigned yet" in info.notes[0]


# --- image decoding ---------------------------------------------------------------

PIXELS = [[(255, 0, 0), (0, 255, 0), (0, 0, 255)],
          [(10, 20, 30), (200, 100, 50), (255, 255, 255)]]


def _img(rows) -> G.Image:
    return G.Image(len(rows[0]), len(rows), bytes(v for row in rows for px in row for v in px))


def test_decode_ppm_with_comment_and_16_bit():
    body = bytes(v for row in PIXELS for px in row for v in px)
    img = G.decode_image("image/x-portable-pixmap", b"P6\n# made by QEMU\n3 2\n255\n" + body)
    assert img == _img(PIXELS)
    wide = b"".join(struct.pack(">H", v * 257) for v in body)
    assert G.decode_ppm(b"P6 3 2 65535\n" + wide) == _img(PIXELS)
    with pytest.raises(G.ImageError, match="truncated"):
        G.decode_ppm(b"P6 3 2 255\n" + body[:-1])


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(ftype: int, row: bytes, prior: bytes, bpp: int) -> bytes:
    """The PNG encoder side: apply filter ``ftype`` to one row."""
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][ftype]
        out.append((x - pred) & 255)
    return bytes(out)


def _png(width, height, depth, ctype, rows: list[bytes], palette=b"", filters=(0, 1, 2, 3, 4)) -> bytes:
    bpp = max(1, {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype] * depth // 8)
    raw = b""
    prior = bytes(len(rows[0]))
    for y, row in enumerate(rows):
        f = filters[y % len(filters)]
        raw += bytes([f]) + _filter_row(f, row, prior, bpp)
        prior = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0))
    if palette:
        data += chunk(b"PLTE", palette)
    comp = zlib.compress(raw)
    # split the image data over two IDAT chunks, as encoders may
    return data + chunk(b"IDAT", comp[:5]) + chunk(b"IDAT", comp[5:]) + chunk(b"IEND", b"")


def _noise(width: int, height: int) -> G.Image:
    seed = 12345
    data = bytearray()
    for _ in range(width * height * 3):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        data.append((seed >> 16) & 255)
    return G.Image(width, height, bytes(data))


@pytest.mark.parametrize("ftype", [0, 1, 2, 3, 4])
def test_decode_png_rgb_every_filter(ftype):
    img = _noise(7, 5)
    rows = [img.data[y * 21:(y + 1) * 21] for y in range(5)]
    assert G.decode_png(_png(7, 5, 8, 2, rows, filters=(ftype,))) == img


def test_decode_png_rgba_grey_palette_and_16_bit():
    img = _img(PIXELS)
    rgba_rows = [bytes(v for px in row for v in (*px, 255)) for row in PIXELS]
    assert G.decode_image("image/png", _png(3, 2, 8, 6, rgba_rows)) == img
    half = [bytes(v for px in row for v in (*px, 128)) for row in PIXELS]  # on black
    assert G.decode_png(_png(3, 2, 8, 6, half)).pixel(0, 0) == (128, 0, 0)
    rgb16 = [b"".join(struct.pack(">H", v * 257) for px in row for v in px) for row in PIXELS]
    assert G.decode_png(_png(3, 2, 16, 2, rgb16)) == img
    grey = G.decode_png(_png(2, 1, 8, 0, [bytes([0, 200])]))
    assert grey.pixel(1, 0) == (200, 200, 200)
    # 2-bit palette, 5 pixels wide: the row is padded to whole bytes
    pal = bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    indexes = [0, 1, 2, 3 % 3, 1]
    packed = bytes([(indexes[0] << 6) | (indexes[1] << 4) | (indexes[2] << 2) | indexes[3], indexes[4] << 6])
    p = G.decode_png(_png(5, 1, 2, 3, [packed], palette=pal))
    assert [p.pixel(x, 0) for x in range(5)] == [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 0), (255, 0, 0)]
    # 1-bit grey
    g1 = G.decode_png(_png(3, 1, 1, 0, [bytes([0b10100000])]))
    assert [g1.pixel(x, 0) for x in range(3)] == [(255, 255, 255), (0, 0, 0), (255, 255, 255)]


def test_encode_png_round_trip_and_errors():
    img = G.sample_image(64, 40)
    assert G.decode_png(G.encode_png(img)) == img
    with pytest.raises(G.ImageError, match="unsupported screenshot format"):
        G.decode_image("image/gif", b"GIF89a")
    with pytest.raises(G.ImageError):
        G.decode_png(G.encode_png(img)[:40])


# --- scaling and half blocks --------------------------------------------------------


def test_halfblock_exact_size_maps_pixels_to_cells():
    # 4x4 image into 4 columns x 2 rows: one pixel per half cell
    rows = [[(x * 60, y * 60, 0) for x in range(4)] for y in range(4)]
    cells = G.halfblock_rows(_img(rows), 4, 2)
    assert cells[0][1] == ((60, 0, 0), (60, 60, 0))
    assert cells[1][3] == ((180, 120, 0), (180, 180, 0))


def test_halfblock_keeps_aspect_and_pads_with_none():
    # 8x2 (wide) into 8 cols x 4 rows: 8x2 pixels fit, vertically centred
    rows = [[(255, 255, 255)] * 8, [(0, 0, 255)] * 8]
    cells = G.halfblock_rows(_img(rows), 8, 4)
    assert len(cells) == 4 and all(len(r) == 8 for r in cells)
    assert cells[0][0] == (None, None) and cells[3][0] == (None, None)
    assert cells[1][0] == (None, None) or cells[1][0][0] is None or cells[2][0][1] is None
    coloured = [c for r in cells for c in r if c != (None, None)]
    assert {(255, 255, 255), (0, 0, 255)} <= {x for c in coloured for x in c if x}
    stretched = G.halfblock_rows(_img(rows), 8, 4, keep_aspect=False)
    assert all(c[0] is not None and c[1] is not None for r in stretched for c in r)


def test_downscale_averages_areas():
    # left half black, right half white, 20x10 -> 2x1 cells (2x2 pixels, but aspect keeps 2x1)
    rows = [[(0, 0, 0)] * 10 + [(255, 255, 255)] * 10 for _ in range(10)]
    cells = G.halfblock_rows(_img(rows), 2, 1, keep_aspect=False)
    assert cells == [[((0, 0, 0), (0, 0, 0)), ((255, 255, 255), (255, 255, 255))]]
    # a checkerboard averages to grey
    chk = [[(255, 255, 255) if (x + y) % 2 else (0, 0, 0) for x in range(12)] for y in range(12)]
    (((r, g, b), _),) = G.halfblock_rows(_img(chk), 1, 1, keep_aspect=False)[0:1][0][0:1]
    assert 80 <= r <= 175 and r == g == b


def test_ramp_rows_for_no_color():
    rows = [[(0, 0, 0), (128, 128, 128), (255, 255, 255)]] * 2
    cells = G.halfblock_rows(_img(rows), 3, 1, keep_aspect=False)
    (line,) = G.ramp_rows(cells)
    assert line[0] == " " and line[2] == "@" and line[1] in G.RAMP[3:7]
    assert G.ramp_rows([[(None, None)]]) == [" "]


def test_fit_size():
    assert G.fit_size(720, 400, 80, 48) == (80, 44)
    assert G.fit_size(1024, 768, 80, 44) == (59, 44)
    assert G.fit_size(0, 10, 5, 5) == (0, 0)


# --- keys ------------------------------------------------------------------------------


def test_keycodes_for_text():
    assert G.keycodes_for_text("aZ1!") == [[30], [42, 44], [2], [42, 2]]
    assert G.keycodes_for_text("echo hi\n") == [[18], [46], [35], [24], [57], [35], [23], [28]]
    assert G.keycodes_for_text('~|:"<>?_+{}') == [[42, 41], [42, 43], [42, 39], [42, 40], [42, 51], [42, 52],
                                                 [42, 53], [42, 12], [42, 13], [42, 26], [42, 27]]
    assert G.keycodes_for_text("-=[];'`\\,./\t") == [[12], [13], [26], [27], [39], [40], [41], [43],
                                                    [51], [52], [53], [15]]
    with pytest.raises(ValueError, match="cannot type 'é'"):
        G.keycodes_for_text("café")
    assert G.untypable("café ü é") == ["é", "ü"]


def test_combos():
    combos = dict(G.COMBOS)
    assert combos["Ctrl+Alt+Del"] == [29, 56, 111]
    assert combos["Ctrl+Alt+F1"] == [29, 56, 59] and combos["Ctrl+Alt+F7"] == [29, 56, 65]


class FakeDom:
    def __init__(self):
        self.calls = []

    def sendKey(self, codeset, holdtime, codes, n, flags):
        self.calls.append((codeset, holdtime, list(codes), n, flags))


def test_send_combo_and_type_text_call_sendkey():
    import libvirt
    dom = FakeDom()
    G.send_combo(dom, [29, 56, 111])
    assert dom.calls == [(libvirt.VIR_KEYCODE_SET_LINUX, 0, [29, 56, 111], 3, 0)]
    dom.calls.clear()
    assert G.type_text(dom, G.keycodes_for_text("Hi")) == 2
    assert [c[2] for c in dom.calls] == [[42, 35], [23]] and dom.calls[0][1] == G.TYPE_HOLD_MS
    stop = iter([False, True])
    assert G.type_text(dom, G.keycodes_for_text("abc"), cancelled=lambda: next(stop)) == 1
    with pytest.raises(ValueError):
        G.send_combo(dom, [])
