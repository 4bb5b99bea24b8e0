"""The command line: version, URI choice, and failures without tracebacks."""

import os
import subprocess
import sys

from vmtui import __version__
from vmtui.cli import build_parser, demo_uri, resolve_uri, DEMO_HOST


def run(args, **env):
    e = dict(os.environ, **env)
    e.pop("LIBVIRT_DEFAULT_URI", None) if "LIBVIRT_DEFAULT_URI" not in env else None
    return subprocess.run([sys.executable, "-m", "vmtui", *args], capture_output=True, text=True,
                          env=e, timeout=60, stdin=subprocess.DEVNULL)


def test_version():
    out = run(["--version"])
    assert out.returncode == 0 and out.stdout.strip() == f"vmtui {__version__}"


def test_help_mentions_connect_and_demo():
    out = run(["--help"])
    assert out.returncode == 0 and "-c URI, --connect URI" in out.stdout and "--demo" in out.stdout


def test_uri_resolution(monkeypatch):
    p = build_parser()
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    assert resolve_uri(p.parse_args([]), None) == "qemu:///system"
    assert resolve_uri(p.parse_args([]), "qemu+ssh://a/system") == "qemu+ssh://a/system"
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///default")
    assert resolve_uri(p.parse_args([]), "qemu+ssh://a/system") == "test:///default"
    assert resolve_uri(p.parse_args(["-c", "qemu:///session"]), None) == "qemu:///session"
    assert resolve_uri(p.parse_args(["--demo", "-c", "qemu:///session"]), None) == demo_uri()
    assert DEMO_HOST.exists()


def test_connection_failure_exits_nonzero_with_reason(tmp_path):
    out = run(["-c", "test:///no/such/host.xml", "--config", str(tmp_path / "c.yaml")], TERM="dumb")
    assert out.returncode == 1
    text = " ".join((out.stdout + out.stderr).split())
    assert "Cannot connect to test:///no/such/host.xml" in text
    assert "--demo" in text
    assert "Traceback" not in text


def test_unknown_option_is_a_usage_error():
    out = run(["--bogus"])
    assert out.returncode == 2 and "usage: vmtui" in out.stderr


def test_the_connection_opens_while_the_ui_is_imported():
    """run_ui starts libvirt's open before it imports Textual and the app
    (issue 14): the two overlap."""
    import json
    from pathlib import Path

    host = Path(__file__).resolve().parent / "data" / "host-small.xml"
    script = f"""
import json, sys
from vmtui import cli
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
seen = {{}}
real = LibvirtService.open_early
def early(self):
    seen["ui imported"] = "textual.app" in sys.modules or "vmtui.ui.app" in sys.modules
    real(self)
LibvirtService.open_early = early
class Stop(Exception):
    pass
def instrument(service, app):
    seen["opening"] = service._opener._pending is not None
    raise Stop
try:
    cli.run_ui("test://{host}", Config(), instrument=instrument)
except Stop:
    print(json.dumps(seen))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ui imported": False, "opening": True}
