"""Keys typed ahead, as a slow SSH link delivers them: vmtui in a pty
(80x24, test driver) gets again the bursts after which
scripts/fuzz_typeahead.py once saw it break (the last bursts it printed).
Each must leave it alive with no traceback. Whether a race comes back
depends on timing, so these are end-to-end checks; each fix has its own
deterministic test (test_late_work.py, test_early_bindings.py). The script
runs many more bursts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fuzz_typeahead.py"

BROKE = {
    # vmtui quit without a word: a screen's removal cancelled under the app's loop
    "xml edit, then help": [("x\x1b[B\x1b", 0.0), ("M ", 0.0), ("e", 0.1), ("lo", 0.0), ("z", 0.02),
                            ("?a\x1b[6~", 0.3)],
    # a dialog's handler ran after it was closed (NoMatches)
    "bulk, then kickstart": ["ut", "bo", "lsn O", "c", "iA", "kN"],
    # the XML editor's Esc after it was closed (NoMatches)
    "networks, kickstart, edit": ["N/\x1b[A\x1b[6~m", "c", "ks\rn/", "e", "dO", "knD/r"],
    # the wizard's field group was empty (IndexError)
    "bulk, wizard": ["bS", "\rS", "M", "Sa*a", "bn", "CNDsG"],
    # the wizard's host read saved a step that was gone (NoMatches)
    "from template, settings": ["u", "NO", "i", "d\x1b", "gp", "goD\t"],
    # PageDown in the command palette before its list was laid out (KeyError)
    "palette, page down": ["\r-", "C*", "ikHh", "CJr", "?\x10\x1b[6~i", "xUpKD"],
    # a second Esc on the settings screen closed the list (ScreenStackError)
    "settings, Esc Esc": ["e\x1b\x1b", "e\x1b\x1b", "\re\x1b\x1b\x1b"],
}


def _fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_typeahead", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("what", list(BROKE))
def test_bursts_that_once_broke_vmtui_leave_it_alive(what, capsys):
    fuzz = _fuzz()
    bursts = [b if isinstance(b, tuple) else (b, pause) for pause in (0.0, 0.05) for b in BROKE[what]]
    ok = fuzz.run(0, 0, bursts)
    out = capsys.readouterr().out
    assert ok, out
    assert f"seed 0: {len(bursts)} bursts, alive" in out
