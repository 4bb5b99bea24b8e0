"""Bad input against the real hypervisor: paths on this (local) host are
checked, and a FIFO named as the ISO -- which used to block `vmtui create`
forever -- is refused at once, with nothing defined."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import NAME_PREFIX, URI

pytestmark = pytest.mark.real


def _vmtui(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LIBVIRT_DEFAULT_URI"}
    env["VMTUI_CONFIG"] = "/nonexistent/vmtui-test-config.yaml"
    root = str(Path(__file__).resolve().parent.parent.parent)
    return subprocess.run([sys.executable, "-m", "vmtui", *args], capture_output=True, text=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL, cwd=root)


@pytest.mark.parametrize("dry_run", [False, True])
def test_fifo_as_iso_path_is_refused_at_once(system_conn, tmp_path, dry_run):
    name = f"{NAME_PREFIX}{os.getpid()}-badiso-{os.urandom(2).hex()}"
    fifo = tmp_path / "install.iso"
    os.mkfifo(fifo)
    spec = tmp_path / "vm.yaml"
    spec.write_text(f"name: {name}\nvirt_type: qemu\nmemory: 256M\ninstall:\n  kind: iso\n  iso: {fifo}\n"
                    "disks: []\nnics: []\ngraphics: none\n")
    out = _vmtui("create", "--from", str(spec), "-c", URI, *(["--dry-run"] if dry_run else []))
    assert (out.returncode, out.stdout) == (2, "")
    assert f"{spec}:6: install.iso: {fifo} is a FIFO (named pipe), not an ISO image" in out.stderr.splitlines()
    assert "Traceback" not in out.stderr
    assert name not in [d.name() for d in system_conn.listAllDomains(0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["install.iso", "vm.yaml"]
