"""The README's key table must match the keys the app binds."""

import re
from pathlib import Path

from vmtui.ui.keys import DOMAIN_LIST_KEYS, PAUSED_LABELS, display_key

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_bound_key_is_in_the_readme():
    text = README.read_text()
    table = text.split("## Keys", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"`([^`]+)`", table))
    for key, *_ in DOMAIN_LIST_KEYS:
        assert display_key(key) in documented, f"key {display_key(key)!r} missing from README key table"


def test_labels_that_follow_the_selected_vm_are_in_the_readme():
    """A key whose footer label changes with the VM (p: Pause / Resume) says so in its row."""
    table = README.read_text().split("## Keys", 1)[1].split("\n\n", 2)[1]
    rows = {m.group(1): line for line in table.splitlines() if (m := re.match(r"\| `([^`]+)`", line))}
    for key, action, *_ in DOMAIN_LIST_KEYS:
        if action in PAUSED_LABELS:
            assert PAUSED_LABELS[action] in rows[display_key(key)], rows[display_key(key)]


def test_quick_start_has_exactly_two_commands():
    text = README.read_text()
    block = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_the_architecture_page_is_linked_and_names_every_folder_of_core():
    root = README.parent
    assert "(docs/architecture.md)" in README.read_text()
    doc = (root / "docs" / "architecture.md").read_text()
    folders = sorted(p.name for p in (root / "vmtui" / "core").iterdir() if (p / "__init__.py").exists())
    assert folders and all(f"`{name}/`" in doc for name in folders), folders
