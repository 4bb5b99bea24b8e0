"""Nothing a C library writes to fd 2 reaches the screen (issue 10.2).

vmtui runs in a real pseudo-terminal with libvirt's debug logging sent to
stderr (``LIBVIRT_LOG_OUTPUTS=1:stderr``): libvirt then writes hundreds of
lines to file descriptor 2 while the UI draws. They must land in the log,
and the screen must show only the UI.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.ptyterm import PtyTerminal

ROOT = Path(__file__).resolve().parent.parent


def run_vmtui(args: list[str], env: dict, **kw) -> PtyTerminal:
    return PtyTerminal([sys.executable, "-m", "vmtui", *args], env=env, cwd=str(ROOT), **kw)


def test_libvirt_debug_output_goes_to_the_log_not_the_screen(tmp_path):
    log = tmp_path / "vmtui.log"
    env = {"LIBVIRT_DEBUG": "1", "LIBVIRT_LOG_OUTPUTS": "1:stderr", "XDG_STATE_HOME": str(tmp_path / "state")}
    with run_vmtui(["--demo", "--log", str(log)], env, cols=100, rows=30) as term:
        term.wait_for("web-01", timeout=60)
        term.send("?")
        term.wait_for("Help", timeout=60)
        screen = term.text()
        term.send("\x1b")
    # not a byte of it reached the terminal (Textual repaints would hide it on screen)
    assert b"debug :" not in term.raw and b"libvirt:" not in term.raw
    assert "debug :" not in screen
    assert log.read_text(errors="replace").count("debug :") > 20  # libvirt's own lines, in the log


def test_default_log_is_in_the_state_dir_and_private(tmp_path):
    env = {"LIBVIRT_DEBUG": "1", "LIBVIRT_LOG_OUTPUTS": "1:stderr", "XDG_STATE_HOME": str(tmp_path / "state")}
    with run_vmtui(["--demo"], env, cols=100, rows=30) as term:
        term.wait_for("web-01", timeout=60)
        screen = term.text()
    log = tmp_path / "state" / "vmtui" / "vmtui.log"
    assert b"debug :" not in term.raw and "debug :" not in screen
    assert log.exists() and "debug :" in log.read_text(errors="replace")
    assert log.stat().st_mode & 0o077 == 0
