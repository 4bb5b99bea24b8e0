"""``e`` on the XML view with $EDITOR, in a real pseudo-terminal: vmtui
hands the terminal to the editor (Textual's App.suspend), the editor reads
what is typed, and vmtui comes back whole afterwards (issue 13, part 2)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.ptyterm import PtyTerminal

from .conftest import SMALL_HOST, host_uri
from .test_xml_edit import FAKE_EDITOR

ROOT = Path(__file__).resolve().parent.parent
ALPHA_MEM = "<memory unit='KiB'>1048576</memory>"
NEW_MEM = "<memory unit='KiB'>1572864</memory>"


def test_editor_gets_the_terminal_and_vmtui_comes_back(tmp_path):
    script = tmp_path / "fake-editor"
    script.write_text(FAKE_EDITOR.format(python=sys.executable))
    script.chmod(0o755)
    env = {
        "VISUAL": "", "EDITOR": str(script),
        "FAKE_EDITOR_STATE": str(tmp_path / "runs"), "FAKE_EDITOR_WAIT": "1",
        "FAKE_EDITOR_STEPS": f"{ALPHA_MEM}=>{NEW_MEM}",
        "VMTUI_CONFIG": str(tmp_path / "config.yaml"), "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    argv = [sys.executable, "-m", "vmtui", "-c", host_uri(SMALL_HOST)]
    with PtyTerminal(argv, cols=100, rows=30, env=env, cwd=str(ROOT)) as term:
        term.wait_for("alpha", timeout=60)
        term.send("x")  # the cursor is on alpha, the first row
        term.wait_for("XML — alpha (live)", timeout=30)
        term.send("e")
        # the editor owns the terminal: it shows its line (pyte has no alternate screen: vmtui's
        # last frame stays around it), and it reads ours: it edits the file only after that
        term.wait_for("FAKE-EDITOR editing alpha.xml: type a line", timeout=30)
        term.send("done\r")
        # vmtui is back, drawn whole, with the diff of what the editor changed
        term.wait_for("Define 'alpha' with these changes?", timeout=30)
        # the rest of the frame may still be on its way through the pty
        term.wait_for(lambda t: f"+  {NEW_MEM}" in t and f"-  {ALPHA_MEM}" in t, timeout=30)
        screen = term.text()
        assert "FAKE-EDITOR" not in screen
        term.send("y")
        term.wait_for("XML — alpha (persistent configuration)", timeout=30)
        term.wait_for(NEW_MEM, timeout=30)  # what libvirt holds now
        term.wait_for("Defined 'alpha'", timeout=30)  # the notification
        # keys reach vmtui again (its input thread is back)
        term.send("\x1b")
        term.wait_for(lambda t: "XML — alpha" not in t and "bravo" in t, timeout=30)
    assert (tmp_path / "runs").read_text() == "1"
