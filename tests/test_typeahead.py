"""Keys typed ahead, as a slow SSH link delivers them: vmtui in a pty
(80x24, test driver) gets the bursts of scripts/fuzz_typeahead.py for the
seeds that once broke it (seed 5: vmtui quit without a word, a screen's
removal cancelled under the app's message loop; seed 14: a dialog's
handler after it was closed; seed 2: a second Esc closing the list). Each
must leave it alive with no traceback. The script runs many more seeds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fuzz_typeahead.py"


def _fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_typeahead", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(("seed", "rounds", "times"), [(5, 6, 3), (14, 36, 1), (2, 89, 1)])
def test_bursts_that_once_broke_vmtui_leave_it_alive(seed, rounds, times, capsys):
    fuzz = _fuzz()
    for _ in range(times):
        ok = fuzz.run(seed, rounds)
        out = capsys.readouterr().out
        assert ok, out
        assert f"seed {seed}: {rounds} bursts, alive" in out
