"""Bad input never gives a traceback or a hang (issue 10, part 7).

Each case asserts the message (``FILE:LINE: field: message`` or a one-line
CLI error), the exit code, and that nothing was defined or written: the CLI
runs in-process against the test driver, and every connection it opens is
inventoried (domains, volumes) just before it closes. Cases that hung the old
code (FIFOs) run in a subprocess with a time limit; the YAML bombs are small
files that expand to 10^9 values, refused after 10^5.
"""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import libvirt
import pytest
import yaml

from tests.notes import notes_of, run_noted
from vmtui import cli
from vmtui.core import config as config_mod
from vmtui.core.config import load_config
from vmtui.core.connection.service import LibvirtService
from vmtui.core.create.validation import local_path_checker, validate_url
from vmtui.core.files import safeyaml, userfile
from vmtui.core.provision import cloudinit, cloudinit_form
from vmtui.core.provision.cloudinit import plain_password_problems
from vmtui.core.provision.library import Library, LibraryError
from vmtui.core.provision.seed import CloudInitDocs

from .conftest import wait_for

# --- helpers ---------------------------------------------------------------------


def inventory(conn: libvirt.virConnect) -> tuple:
    vols = []
    for pool in conn.listAllStoragePools(0):
        if pool.isActive():
            vols += [f"{pool.name()}/{v}" for v in pool.listVolumes()]
    return tuple(sorted(d.name() for d in conn.listAllDomains(0))), tuple(sorted(vols))


@dataclass
class Probe:
    uri: str
    baseline: tuple
    closed: list = field(default_factory=list)  # inventory of each connection the CLI closed

    def untouched(self) -> bool:
        return all(inv == self.baseline for inv in self.closed)


@pytest.fixture
def probe(monkeypatch, small_uri) -> Probe:
    conn = libvirt.open(small_uri)
    try:
        p = Probe(small_uri, inventory(conn))
    finally:
        conn.close()
    orig = LibvirtService.close

    async def close(self):
        try:
            p.closed.append(await self.call(inventory))
        except Exception:  # never connected
            pass
        await orig(self)

    monkeypatch.setattr(LibvirtService, "close", close)
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    monkeypatch.setenv("VMTUI_CONFIG", "/nonexistent/vmtui-test-config.yaml")
    return p


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def run_sub(*args: str, stdin=subprocess.DEVNULL, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI in a child process, for what used to block forever (a FIFO)."""
    env = {k: v for k, v in os.environ.items() if k != "LIBVIRT_DEFAULT_URI"}
    env["VMTUI_CONFIG"] = "/nonexistent/vmtui-test-config.yaml"
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "vmtui", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=stdin, cwd=root)


def files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def within(seconds: float, fn, *args):
    """fn(*args) in a thread; fails (instead of hanging the suite) when it blocks."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001 -- handed to the test
            box["error"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} blocked for more than {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def bomb(levels: int = 9, width: int = 10, indent: str = "") -> list[str]:
    """A billion-laughs chain: the last anchor expands to width**levels values."""
    lines = [f'{indent}x0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"{indent}x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return lines


def inline_bomb(levels: int = 9, width: int = 10) -> str:
    """The same chain inside one flow collection (for a key or a value)."""
    parts = ['&a0 ["lol"]']
    for i in range(1, levels + 1):
        parts.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "[" + ", ".join(parts) + "]"


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


BOMB_MSG = "the aliases expand to more than 100,000 values (an alias bomb?)"
GOOD_SPEC = ("name: ok-vm\nvirt_type: qemu\nmemory: 1G\ninstall: {kind: iso, iso: default/install.iso}\n"
             "disks: [{size: 2G}]\n")


def cloud_spec(user_data: str) -> str:
    body = "".join(f"      {line}\n" for line in user_data.splitlines())
    return ("name: ci-vm\nvirt_type: qemu\ninstall:\n  kind: cloud\n  image: default/alpha.qcow2\n"
            f"  cloud_init:\n    user_data: |\n{body}disks: [{{size: 2G}}]\n")


# --- --log -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_in_a_missing_directory(capsys, probe, tmp_path, where):
    spec = tmp_path / "vm.yaml"
    spec.write_text(GOOD_SPEC)
    log = "/nonexistent/dir/x.log"
    args = ["--log", log, "create", "--from", str(spec), "-c", probe.uri] if where == "before" else \
        ["create", "--log", log, "--from", str(spec), "-c", probe.uri]
    rc, out, err = run_cli(capsys, *args)
    assert (rc, out, err) == (2, "", "vmtui: --log /nonexistent/dir/x.log: no such directory: /nonexistent/dir\n")
    assert probe.closed == [] and files(tmp_path) == {"vm.yaml"}


def test_log_that_is_a_directory_stops_the_ui_before_it_starts(capsys, probe, tmp_path, monkeypatch):
    from vmtui.ui.app import VmtuiApp

    monkeypatch.setattr(VmtuiApp, "run", lambda self: pytest.fail("the UI started"))
    rc, out, err = run_cli(capsys, "--log", str(tmp_path), "--demo")
    assert (rc, out, err) == (2, "", f"vmtui: --log {tmp_path}: a directory, not a file\n")
    assert files(tmp_path) == set()


def test_log_that_is_a_fifo_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    out = run_sub("--log", str(fifo), "export", "x", "-c", "test:///default")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == f"vmtui: --log {fifo}: a FIFO (named pipe), not a regular file\n"


def test_log_file_is_private(capsys, probe, tmp_path, monkeypatch):
    import logging

    handlers = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: handlers.extend(kw["handlers"]))
    log = tmp_path / "x.log"
    rc, _out, _err = run_cli(capsys, "--log", str(log), "export", "delta", "-c", probe.uri)
    for h in handlers:
        h.close()
        h.stream.close()
    assert rc == 0 and stat.S_IMODE(log.stat().st_mode) == 0o600


# --- the config file -------------------------------------------------------------


def bad_configs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (config path, the notice it gives)."""
    out = {}
    p = tmp_path / "binary.yaml"
    p.write_bytes(b"theme: nord\nstats_interval: \x00\x01\xff\n")
    out["binary"] = (p, f"{p}:2: not a text file (binary data at byte offset 28); using defaults")
    p = tmp_path / "latin1.yaml"
    p.write_bytes("theme: caf\xe9\n".encode("latin-1"))
    out["latin1"] = (p, f"{p}:1: not UTF-8 text (invalid byte 0xE9 at byte offset 10); using defaults")
    out["dev-zero"] = (Path("/dev/zero"), "/dev/zero: a character device, not a regular file; using defaults")
    out["directory"] = (tmp_path, f"{tmp_path}: a directory, not a file; using defaults")
    p = tmp_path / "bomb.yaml"
    text = "\n".join(["anchors:", *bomb(indent="  "), "theme: *a9"]) + "\n"
    p.write_text(text)
    out["alias-bomb"] = (p, f"{p}:{line_of(text, 'x5:')}: anchors.x5.3: {BOMB_MSG}; using defaults")
    p = tmp_path / "deep.yaml"
    p.write_text("theme: " + "[" * 10000 + "]" * 10000 + "\n")
    out["deep"] = (p, f"{p}:1: theme.0.0: nested more than 64 levels deep; using defaults")
    p = tmp_path / "bigint.yaml"
    p.write_text("theme: nord\nstats_interval: " + "9" * 5000 + "\n")
    out["bigint"] = (p, f"{p}:2: stats_interval: a number of 5,000 digits is too long (at most 1,000); "
                        "using defaults")
    p = tmp_path / "huge.yaml"
    p.write_text("theme: nord\n# " + "x" * (300 * 1024) + "\n")
    out["too-large"] = (p, f"{p}: too large: 300 KiB (at most 256 KiB); using defaults")
    return out


@pytest.mark.parametrize("case", ["binary", "latin1", "dev-zero", "directory", "alias-bomb", "deep", "bigint",
                                  "too-large"])
def test_broken_config_gives_the_notice_and_defaults(tmp_path, case):
    path, notice = bad_configs(tmp_path)[case]
    cfg = within(20, load_config, path)
    assert cfg.notices == [notice]
    assert cfg.unusable and cfg.connections == [] and cfg.theme == "textual-dark"


def test_config_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    cfg = within(20, load_config, fifo)
    assert cfg.notices == [f"{fifo}: a FIFO (named pipe), not a regular file; using defaults"]


def test_config_connection_with_an_impossible_port_is_skipped_with_its_line(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("connections:\n  - name: lab\n    uri: qemu+ssh://lab:99999/system\n    autoconnect: true\n"
                 "  - uri: qemu:///system\n")
    cfg = load_config(p)
    assert cfg.notices == [f"{p}:2: connections[0].uri: the port must be a number from 1 to 65535; skipped"]
    assert [c.uri for c in cfg.connections] == ["qemu:///system"] and cfg.autoconnect_uri is None


def test_config_with_an_impossible_date_is_a_notice(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("theme: nord\nstats_interval: 2001-02-30\n")
    cfg = load_config(p)
    assert cfg.notices == [f"{p}:2: stats_interval: invalid date '2001-02-30': day is out of range for month; "
                           "using defaults"]


def test_export_prints_the_config_notice_and_goes_on(capsys, probe, tmp_path):
    path, notice = bad_configs(tmp_path)["binary"]
    rc, out, err = run_cli(capsys, "--config", str(path), "export", "delta", "-c", probe.uri)
    assert rc == 0 and "name: delta" in out
    assert err.splitlines() == [notice]


def test_create_prints_the_config_notice_and_goes_on_with_an_explicit_uri(capsys, probe, tmp_path):
    path, notice = bad_configs(tmp_path)["alias-bomb"]
    spec = tmp_path / "vm.yaml"
    spec.write_text(GOOD_SPEC)
    rc, out, err = run_cli(capsys, "create", "--config", str(path), "--from", str(spec), "-c", probe.uri, "-q")
    assert rc == 0 and out.startswith("Created VM 'ok-vm'")
    assert err.splitlines() == [notice]


def test_create_refuses_to_guess_the_host_when_the_config_is_unusable(capsys, probe, tmp_path):
    path, notice = bad_configs(tmp_path)["dev-zero"]
    spec = tmp_path / "vm.yaml"
    spec.write_text(GOOD_SPEC)
    rc, out, err = run_cli(capsys, "create", "--config", str(path), "--from", str(spec))
    assert (rc, out) == (2, "")
    assert err.splitlines() == [notice, "vmtui: not connecting to qemu:///system: the connection would come from "
                                        "the config file, which cannot be used (above); fix it or give -c URI"]
    assert probe.closed == []


async def test_the_ui_starts_with_a_broken_config_and_shows_the_notice(small_uri, tmp_path):
    from vmtui.ui.app import VmtuiApp

    path, notice = bad_configs(tmp_path)["binary"]
    app = VmtuiApp(LibvirtService(small_uri, stats_interval=3600, reconnect=False), load_config(path))
    async with run_noted(app, size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready and app.table.row_count > 0, what="list loaded")
        await pilot.pause()
        assert notice in [n.message for n in notes_of(app).all]


# --- the VM spec -----------------------------------------------------------------


def spec_cases(tmp_path: Path) -> dict[str, tuple[Path, list[str]]]:
    """name -> (spec file, the exact stderr lines)."""
    out: dict[str, tuple[Path, list[str]]] = {}

    def case(name: str, content: str | bytes, *lines: str) -> None:
        p = tmp_path / f"{name}.yaml"
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        out[name] = (p, [line.format(f=p) for line in lines])

    case("binary", b"name: x\nvirt_type: \x00qemu\n",
         "{f}:2: cannot read the spec: not a text file (binary data at byte offset 19)")
    case("not-utf8", b"name: x\ntitle: \xff\xfe\n",
         "{f}:2: cannot read the spec: not UTF-8 text (invalid byte 0xFF at byte offset 15)")
    case("too-large", "name: x\n# " + "x" * (2 * 1024 * 1024) + "\n",
         "{f}: cannot read the spec: too large: 2 MiB (at most 1 MiB)")
    text = "name: t\ntitle: " + inline_bomb() + "\n"
    case("bomb-in-title", text, "{f}:2: title[5][3]: " + BOMB_MSG)
    text = "name: k\n? " + inline_bomb() + "\n: 1\n"
    case("bomb-in-key", text, "{f}:2: [5][3]: " + BOMB_MSG)
    text = "\n".join(["name: u", "bogus:", *bomb(indent="  ")]) + "\n"
    case("bomb-under-unknown-key", text, f"{{f}}:{line_of(text, 'x5:')}: bogus.x5[3]: " + BOMB_MSG)
    ud = "\n".join(["#cloud-config", *bomb(), "runcmd: *a9"]) + "\n"
    text = cloud_spec(ud)
    case("bomb-in-user-data", text,
         f"{{f}}:{line_of(text, 'x5:')}: install.cloud_init.user_data: user-data: x5.3: " + BOMB_MSG)
    case("recursive-alias", "name: r\ntitle: &t [1, *t]\n",
         "{f}:2: title[1]: the alias *t points into the collection that holds it (a recursive structure)")
    case("nested", "name: n\ntitle: " + "[" * 10000 + "]" * 10000 + "\n",
         "{f}:2: title[0][0]: nested more than 64 levels deep")
    ud = "#cloud-config\nwrite_files: " + "[" * 10000 + "]" * 10000 + "\n"
    text = cloud_spec(ud)
    case("nested-in-user-data", text,
         f"{{f}}:{line_of(text, 'write_files')}: install.cloud_init.user_data: user-data: write_files.0.0: "
         "nested more than 64 levels deep")
    case("huge-int", "name: i\nvcpus: " + "9" * 5000 + "\n",
         "{f}:2: vcpus: a number of 5,000 digits is too long (at most 1,000)")
    case("huge-hex", "name: i\nmemory: 0x" + "f" * 5000 + "\n",
         "{f}:2: memory: a number of 5,000 digits is too long (at most 1,000)")
    case("impossible-date", "name: d\ntitle: 2001-02-30\n",
         "{f}:2: title: invalid date '2001-02-30': day is out of range for month")
    case("ipv6-bracket", 'name: u\nvirt_type: qemu\ninstall:\n  kind: url\n  url: "http://[::1"\n',
         "{f}:5: install.url: The URL's host has a '[' without its ']' (an IPv6 address is written "
         "http://[::1]/)")
    case("port-out-of-range", 'name: u\nvirt_type: qemu\ninstall:\n  kind: url\n  url: "http://mirror:99999/t"\n',
         "{f}:5: install.url: The port must be a number from 1 to 65535, not '99999'")
    case("port-not-a-number", "name: u\nvirt_type: qemu\ninstall:\n  kind: url\n  url: http://mirror:http/t\n",
         "{f}:5: install.url: The port must be a number from 1 to 65535, not 'http'")
    case("kickstart-dev-zero", "name: ks\nos: fedora40\ninstall:\n  kind: iso\n  iso: default/install.iso\n"
                               "  kickstart_file: /dev/zero\n",
         "{f}:6: install.kickstart_file: cannot read the kickstart file /dev/zero: a character device, not a "
         "regular file")
    (tmp_path / "bin.ks").write_bytes(b"text\nlang en_US\n\x7fELF\x02\x01\x00\x00\n")
    case("kickstart-binary", "name: ks\nos: fedora40\ninstall:\n  kind: iso\n  iso: default/install.iso\n"
                             "  kickstart_file: bin.ks\n",
         f"{{f}}:6: install.kickstart_file: cannot read the kickstart file {tmp_path / 'bin.ks'}: not a text "
         "file (binary data at byte offset 22)")
    # passwords in plain text, wherever cloud-init takes one: the line inside user-data
    for name, ud, needle, path, msg in [
        ("passwd", "#cloud-config\nusers:\n  - name: a\n    passwd: hunter2\n", "passwd:", "users.0.passwd",
         "not a password hash: type the password in the editor's form, which stores its SHA-512 hash"),
        ("plain-text-passwd", "#cloud-config\nhostname: h\nusers:\n  - name: a\n    plain_text_passwd: hunter2\n",
         "plain_text_passwd", "users.0.plain_text_passwd",
         "a password in plain text (anyone who can read the seed can read it): use passwd with its SHA-512 hash "
         "(type the password in the editor's form)"),
        ("chpasswd-text", "#cloud-config\nchpasswd:\n  expire: false\n  users:\n"
                          "    - {name: root, password: hunter2, type: text}\n", "type: text",
         "chpasswd.users.0.password",
         "a password in plain text (anyone who can read the seed can read it): use type: hash with its SHA-512 "
         "hash (mkpasswd -m sha-512)"),
        ("chpasswd-list", "#cloud-config\nchpasswd:\n  list: |\n    root:RANDOM\n    admin:hunter2\n",
         "admin:hunter2", "chpasswd.list.1",
         "a password in plain text (anyone who can read the seed can read it): write user:HASH with its SHA-512 "
         "hash (mkpasswd -m sha-512)"),
        ("password", "#cloud-config\nssh_pwauth: true\npassword: hunter2\n", "password:", "password",
         "a password in plain text (anyone who can read the seed can read it): use passwd with its SHA-512 hash "
         "(type the password in the editor's form)"),
    ]:
        text = cloud_spec(ud)
        case(f"pw-{name}", text,
             f"{{f}}:{line_of(text, needle)}: install.cloud_init.user_data: user-data: {path}: {msg}")
    return out


SPEC_CASES = ["binary", "not-utf8", "too-large", "bomb-in-title", "bomb-in-key", "bomb-under-unknown-key",
              "bomb-in-user-data", "recursive-alias", "nested", "nested-in-user-data", "huge-int", "huge-hex",
              "impossible-date", "ipv6-bracket", "port-out-of-range", "port-not-a-number", "kickstart-dev-zero",
              "kickstart-binary", "pw-passwd", "pw-plain-text-passwd", "pw-chpasswd-text", "pw-chpasswd-list",
              "pw-password"]


@pytest.mark.parametrize("case", SPEC_CASES)
def test_bad_spec(capsys, probe, tmp_path, case):
    path, lines = spec_cases(tmp_path)[case]
    before = files(tmp_path)
    rc, out, err = within(60, run_cli, capsys, "create", "--from", str(path), "-c", probe.uri)
    assert (rc, out) == (2, "")
    assert err.splitlines() == lines
    assert probe.untouched() and files(tmp_path) == before


@pytest.mark.parametrize("case", ["bomb-in-title", "port-out-of-range", "pw-chpasswd-text"])
def test_bad_spec_on_stdin(capsys, probe, tmp_path, monkeypatch, case):
    path, lines = spec_cases(tmp_path)[case]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    rc, out, err = run_cli(capsys, "create", "--from", "-", "-c", probe.uri, "--dry-run")
    assert (rc, out) == (2, "")
    assert err.splitlines() == [line.replace(str(path), "<stdin>") for line in lines]
    assert probe.untouched()


def test_endless_stdin_is_cut_off(capsys, probe, monkeypatch):
    class Zero(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            b[:] = bytes(len(b))
            return len(b)

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Zero())))
    rc, out, err = within(30, run_cli, capsys, "create", "--from", "-", "-c", probe.uri)
    assert (rc, out, err) == (2, "", "<stdin>: cannot read the spec: too large: more than 1 MiB\n")
    assert probe.closed == []


def test_a_one_line_stdin_is_text_not_a_file_name(capsys, probe, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"/etc/passwd")))
    rc, _out, err = run_cli(capsys, "create", "--from", "-", "-c", probe.uri)
    assert rc == 2 and err.startswith("<stdin>:1: the spec must be a mapping") and "root:" not in err


@pytest.mark.parametrize("what", ["dev-zero", "directory"])
def test_spec_that_is_not_a_file(capsys, probe, tmp_path, what):
    path = "/dev/zero" if what == "dev-zero" else str(tmp_path)
    reason = "a character device, not a regular file" if what == "dev-zero" else "a directory, not a file"
    rc, out, err = within(30, run_cli, capsys, "create", "--from", path, "-c", probe.uri)
    assert (rc, out, err) == (2, "", f"{path}: cannot read the spec: {reason}\n")
    assert probe.closed == []


def test_spec_fifo_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "vm.yaml"
    os.mkfifo(fifo)
    out = run_sub("create", "--from", str(fifo), "-c", "test:///default")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == (f"{fifo}: cannot read the spec: a FIFO (named pipe), not a regular file (to read a pipe, "
                          "use --from - and redirect it to standard input)\n")


def test_kickstart_file_fifo_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "ks.cfg")
    spec = tmp_path / "vm.yaml"
    spec.write_text("name: ks\nos: fedora40\ninstall:\n  kind: iso\n  iso: default/install.iso\n"
                    "  kickstart_file: ks.cfg\n")
    out = run_sub("create", "--from", str(spec), "-c", "test:///default")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == (f"{spec}:6: install.kickstart_file: cannot read the kickstart file {tmp_path / 'ks.cfg'}: "
                          "a FIFO (named pipe), not a regular file\n")


def test_kickstart_file_that_is_not_a_kickstart_quotes_one_line(capsys, probe, tmp_path):
    rel = os.path.relpath("/etc/passwd", tmp_path)
    assert rel.startswith("../")
    spec = tmp_path / "vm.yaml"
    spec.write_text(f"name: ks\nos: fedora40\ninstall:\n  kind: iso\n  iso: default/install.iso\n"
                    f"  kickstart_file: {rel}\n")
    passwd = Path("/etc/passwd").read_text().splitlines()
    content = [line for line in passwd if line.strip() and not line.startswith("#")]
    rc, out, err = run_cli(capsys, "create", "--from", str(spec), "-c", probe.uri)
    assert (rc, out) == (2, "")
    first = content[0] if len(content[0]) <= 80 else content[0][:79] + "…"
    assert err.splitlines() == [f"{tmp_path / rel}:1: install.kickstart: not a kickstart: none of its "
                                f"{len(content)} lines is a kickstart command (the first: {first!r})"]
    assert content[1] not in err
    assert probe.untouched()


def test_real_kickstart_errors_are_still_listed_per_line(capsys, probe, tmp_path):
    (tmp_path / "web.ks").write_text("text\nlang en_US.UTF-8\nbogus\nrootpw --lock\nfrobnicate\n")
    spec = tmp_path / "vm.yaml"
    spec.write_text("name: ks\nos: fedora40\ninstall:\n  kind: iso\n  iso: default/install.iso\n"
                    "  kickstart_file: web.ks\n")
    rc, _out, err = run_cli(capsys, "create", "--from", str(spec), "-c", probe.uri)
    assert rc == 2
    ks = tmp_path / "web.ks"
    assert err.splitlines() == [f"{ks}:3: install.kickstart: Unknown command: bogus",
                                f"{ks}:5: install.kickstart: Unknown command: frobnicate"]


def test_user_data_in_a_quoted_string_keeps_its_own_line(capsys, probe, tmp_path):
    spec = tmp_path / "vm.yaml"
    spec.write_text('name: ci\nvirt_type: qemu\ninstall:\n  kind: cloud\n  image: default/alpha.qcow2\n'
                    '  cloud_init:\n    user_data: "#cloud-config\\nusers:\\n  - {name: a, passwd: x}\\n"\n')
    rc, _out, err = run_cli(capsys, "create", "--from", str(spec), "-c", probe.uri)
    assert rc == 2
    assert err.splitlines() == [f"{spec}:7: install.cloud_init.user_data: user-data line 3, column 23: "
                                "users.0.passwd: not a password hash: type the password in the editor's form, "
                                "which stores its SHA-512 hash"]


def test_hashed_and_random_passwords_are_fine():
    ud = ("#cloud-config\nusers:\n  - name: a\n    passwd: $6$salt$hash\n"
          "chpasswd:\n  users:\n    - {name: a, password: $6$s$h}\n    - {name: b, type: RANDOM}\n"
          "  list:\n    - c:R\n    - d:$6$s$h\n")
    assert plain_password_problems(ud) == []
    assert cloudinit.validate_user_data(ud) == []


# --- every other file the user names -------------------------------------------------


def test_iso_path_fifo_and_devices(tmp_path):
    fifo = tmp_path / "install.iso"
    os.mkfifo(fifo)
    assert within(10, local_path_checker, str(fifo), "iso") == f"{fifo} is a FIFO (named pipe), not an ISO image"
    assert local_path_checker("/dev/zero", "iso") == "/dev/zero is a character device, not an ISO image"
    from vmtui.core.create.osinfo import NotAnIsoError, read_iso_ids

    with pytest.raises(NotAnIsoError, match="is a FIFO \\(named pipe\\), not an ISO 9660 image"):
        within(10, read_iso_ids, fifo)
    assert local_path_checker(str(fifo), "cdrom") == \
        f"{fifo} is not a CD-ROM device (a FIFO (named pipe), not a block device)"
    assert local_path_checker(str(fifo), "disk") == \
        f"{fifo} is not a disk image (a FIFO (named pipe), not a file or block device)"


def test_upload_of_a_fifo_is_refused_and_creates_no_volume(tmp_path, small_uri):
    from vmtui.core import storage
    from vmtui.core.errors import VmtuiError

    fifo = tmp_path / "disk.img"
    os.mkfifo(fifo)
    conn = libvirt.open(small_uri)
    try:
        before = inventory(conn)
        with pytest.raises(VmtuiError) as exc:
            within(10, storage.upload_file, conn, "default", "x.img", fifo)
        assert exc.value.cause == "a FIFO (named pipe), not a regular file"
        assert inventory(conn) == before
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_ovf_package_that_is_not_a_file(tmp_path, kind):
    from vmtui.core.ovf import OvfError, open_package
    from vmtui.ui.ovf_screens import check_package_path

    if kind == "fifo":
        path = tmp_path / "appliance.ova"
        os.mkfifo(path)
        what = "a FIFO (named pipe), not a regular file"
    else:
        path = tmp_path / "zero.ova"
        os.symlink("/dev/zero", path)
        what = "a character device, not a regular file"
    assert check_package_path(str(path)) == f"This is {what}"
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(OvfError, match=re.escape(f"this is {what}")):
        within(10, lambda: open_package(path, work_dir=str(work)))
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "binary", "bomb"])
def test_library_import_of_a_bad_file(tmp_path, kind):
    lib = Library(tmp_path / "lib")
    path = tmp_path / "in.yaml"
    if kind == "fifo":
        os.mkfifo(path)
        why = "a FIFO (named pipe), not a regular file"
    elif kind == "dev-zero":
        path = Path("/dev/zero")
        why = "a character device, not a regular file"
    elif kind == "binary":
        path.write_bytes(b"name: x\nuser_data: \x00\n")
        why = "line 2: not a text file (binary data at byte offset 19)"
    else:
        path.write_text("\n".join(["name: b", *bomb(), "user_data: *a9"]) + "\n")
        why = f"line 7: {BOMB_MSG}"
    with pytest.raises(LibraryError) as exc:
        within(10, lib.import_file, path)
    verb = "read" if kind == "bomb" else "import"  # read the file / read the config in it
    assert str(exc.value) == f"Cannot {verb} '{path}': {why}"
    assert not (tmp_path / "lib").exists()


def test_user_data_bombs_are_problems_with_lines():
    ud = "\n".join(["#cloud-config", *bomb(), "runcmd: *a9"]) + "\n"
    (p,) = cloudinit.validate_user_data(ud)
    assert (p.line, p.path, p.message) == (7, "x5.3", BOMB_MSG)
    (p,) = cloudinit.validate_user_data("#cloud-config\nhostname: " + "9" * 5000 + "\n")
    assert (p.line, p.path, p.message) == (2, "hostname", "a number of 5,000 digits is too long (at most 1,000)")
    (p,) = cloudinit.validate_meta_data("instance-id: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n")
    assert (p.line, p.path) == (1, "instance-id.a.a") and "nested more than 64 levels deep" in p.message
    (p,) = cloudinit.validate_network_config("version: 2\nbogus: 2001-02-30\n")
    assert (p.line, p.path) == (2, "bogus") and p.message.startswith("invalid date '2001-02-30'")
    with pytest.raises(ValueError, match="alias bomb"):
        cloudinit_form.form_from_yaml(ud)


async def test_ssh_key_file_that_is_not_a_file(tmp_path):
    from textual.widgets import Input, TextArea

    from .test_cloudinit_editor import SIZE, editor_app

    fifo = tmp_path / "id.pub"
    os.mkfifo(fifo)
    app, _ = editor_app(tmp_path, CloudInitDocs("#cloud-config\n", "instance-id: x\n"))
    async with run_noted(app, size=SIZE) as pilot:
        scr = app.screen
        await pilot.press("f5")
        await pilot.pause()
        scr.query_one("#f-user-add").press()
        await pilot.pause()
        for path, why in ((fifo, "a FIFO (named pipe), not a regular file"),
                          ("/dev/zero", "a character device, not a regular file")):
            scr.query_one("#f-user-keyfile", Input).value = str(path)
            scr.query_one("#f-user-keyfile-add").press()
            await pilot.pause()
            assert f"Cannot read '{path}': {why}" in [str(n.message) for n in notes_of(app).all]
        assert scr.query_one("#f-user-keys", TextArea).text == ""


async def test_kickstart_editor_open_refuses_devices_and_saves_privately(small_uri, tmp_path):
    from textual.widgets import Input

    from .test_kickstart_editor import open_editor
    from .test_ui import make_app

    out = tmp_path / "ks.cfg"
    app = make_app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        screen = await open_editor(app, pilot, text="text\nrootpw --iscrypted $6$a$b\n")
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one(Input).value = "/dev/zero"
        await pilot.press("enter")
        await pilot.pause()
        assert "Cannot read /dev/zero: a character device, not a regular file" in \
            [str(n.message) for n in notes_of(app).all]
        assert screen.text == "text\nrootpw --iscrypted $6$a$b\n"
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one(Input).value = str(out)
        await pilot.press("enter")
        await pilot.pause()
        assert out.read_text() == "text\nrootpw --iscrypted $6$a$b\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert files(tmp_path) == {"ks.cfg"}


# --- files that hold password hashes are private --------------------------------------


def test_saved_cloud_init_configs_are_private(tmp_path):
    old = os.umask(0o022)
    try:
        lib = Library(tmp_path / "lib")
        lib.save("web", CloudInitDocs("#cloud-config\nusers:\n  - {name: a, passwd: $6$s$h}\n", ""))
        (tmp_path / "lib" / "old.yaml").write_text("user_data: '#cloud-config'\n")
        os.chmod(tmp_path / "lib" / "old.yaml", 0o644)
        lib.rename("old", "renamed")
        exported = lib.export_file("web", tmp_path / "web-export.yaml")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "lib").stat().st_mode) == 0o700
    for p in (tmp_path / "lib" / "web.yaml", tmp_path / "lib" / "renamed.yaml", exported):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert files(tmp_path) == {"lib", "lib/web.yaml", "lib/renamed.yaml", "web-export.yaml"}


def test_private_write_never_replaces_what_is_not_a_file(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    with pytest.raises(userfile.UserFileError, match="a FIFO \\(named pipe\\), not a regular file"):
        userfile.write_private_text(fifo, "secret")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(userfile.UserFileError, match="a directory, not a file"):
        userfile.write_private_text(tmp_path, "secret")
    with pytest.raises(FileNotFoundError):
        userfile.write_private_text(tmp_path / "missing" / "x", "secret")
    assert files(tmp_path) == {"out.fifo"}


# --- the limits themselves ------------------------------------------------------------


def test_ordinary_yaml_with_anchors_and_merges_still_loads():
    text = "base: &b {cpus: 2, disks: [a, b]}\nvm1:\n  <<: *b\n  name: one\nvm2: *b\nn: 12345\n"
    assert safeyaml.load(text) == yaml.safe_load(text)


def test_the_node_limit_counts_expansions_not_the_file():
    # 20,000 plain values are fine; 200,000 values through aliases are not
    assert len(safeyaml.load("[" + ", ".join(["x"] * 20000) + "]")) == 20000
    with pytest.raises(safeyaml.LimitError, match="alias bomb"):
        safeyaml.load("a: &a [" + ", ".join(["x"] * 1000) + "]\nb: [" + ", ".join(["*a"] * 200) + "]\n")


def test_url_validation_never_raises():
    for url in ("http://[::1", "http://]/x", "http://[zz]/", "http://h:99999/", "http://h:0/", "http://h:-1/",
                "http://h:x/", "ftp://[::1]:65536/"):
        assert validate_url(url), url
    assert validate_url("http://[::1]:8080/tree") is None and validate_url("https://[fe80::1%25eth0]/") is None


def test_config_module_never_raises_on_any_of_the_cases(tmp_path):
    # belt and braces: every bad config above, through the public entry point
    for path, notice in bad_configs(tmp_path).values():
        assert config_mod.load_config(path).notices == [notice]
