"""The layers: vmtui.core must not pull in Textual (or Rich), vmtui.ui must
not import libvirt, and vmtui.core's folders are layers (ovf over create
over ... over xml over files). The import-linter contracts in pyproject.toml
say so and `make test` checks them before the tests; these tests check that
they hold, that they bite, and that the Makefile runs them."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_core_imports_no_textual():
    """Every module of vmtui.core, subpackages (core/provision) included."""
    code = (
        "import sys, pkgutil, importlib, vmtui.core\n"
        "names = [m.name for m in pkgutil.walk_packages(vmtui.core.__path__, 'vmtui.core.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert 'vmtui.core.provision.seed' in names, names\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('textual', 'rich')})\n"
        "ui = sorted(m for m in sys.modules if m.startswith('vmtui.ui'))\n"
        "print(bad, ui)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[] []"


def _lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extras (pip install -e '.[test]')")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], capture_output=True, text=True, cwd=cwd)


def test_import_contracts_are_kept():
    out = _lint_imports()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


def test_import_contracts_fail_when_broken(tmp_path):
    """The same contracts on a copy of vmtui where the UI imports libvirt, the
    core imports Textual and the XML model imports storage (a layer above
    it): lint-imports exits non-zero, naming all three."""
    shutil.copytree(ROOT / "vmtui", tmp_path / "vmtui", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "vmtui" / "ui" / "dialogs.py", "a") as fh:
        fh.write("\nimport libvirt  # broken on purpose\n")
    with open(tmp_path / "vmtui" / "core" / "names.py", "a") as fh:
        fh.write("\nfrom textual.app import App  # broken on purpose\n")
    with open(tmp_path / "vmtui" / "core" / "xml" / "xmlmodel.py", "a") as fh:
        fh.write("\nfrom vmtui.core.storage import disks  # broken on purpose\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    out = subprocess.run([str(LINT_IMPORTS), "--no-cache"], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0, out.stdout
    assert "0 kept, 3 broken" in out.stdout, out.stdout + out.stderr
    assert "vmtui.ui.dialogs -> libvirt" in out.stdout
    assert "vmtui.core.names -> textual" in out.stdout
    assert "vmtui.core.xml.xmlmodel -> vmtui.core.storage.disks" in out.stdout


def test_contracts_name_the_layers():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}
    assert set(contracts["core-without-ui"]["forbidden_modules"]) >= {"textual", "rich", "vmtui.ui"}
    assert contracts["core-without-ui"]["source_modules"] == ["vmtui.core"]
    assert "libvirt" in contracts["ui-without-libvirt"]["forbidden_modules"]
    assert contracts["ui-without-libvirt"]["source_modules"] == ["vmtui.ui"]
    layers = contracts["core-layers"]["layers"]
    assert layers[-2:] == ["vmtui.core.xml", "vmtui.core.files"] and "vmtui.core.ovf" in layers[0].split(" | ")
    # every folder of vmtui.core is a layer
    folders = {p.name for p in (ROOT / "vmtui" / "core").iterdir() if (p / "__init__.py").exists()}
    assert {f"vmtui.core.{f}" for f in folders} == {m.strip() for layer in layers for m in layer.split("|")}
    assert any(dep.startswith("import-linter") for dep in config["project"]["optional-dependencies"]["test"])


def test_make_test_runs_the_contracts_before_pytest():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "no test target"
    lines = [line.strip() for line in recipe.group(1).splitlines()]
    lint = next(i for i, line in enumerate(lines) if "lint-imports" in line)
    pytest_line = next(i for i, line in enumerate(lines) if "pytest" in line)
    assert lint < pytest_line
    # a plain recipe line: make stops at its non-zero exit (no "-" prefix, no "|| true")
    assert not lines[lint].startswith("-") and "||" not in lines[lint]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
