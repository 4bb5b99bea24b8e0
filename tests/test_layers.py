"""vmtui.core must not pull in Textual (or Rich): the UI is a layer on top."""

import subprocess
import sys


def test_core_imports_no_textual():
    code = (
        "import sys, pkgutil, importlib, vmtui.core\n"
        "for m in pkgutil.iter_modules(vmtui.core.__path__):\n"
        "    importlib.import_module('vmtui.core.' + m.name)\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('textual', 'rich')})\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
