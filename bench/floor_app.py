"""The floor for the fault benchmarks: a bare Textual app that opens a libvirt
host, lists its domains once in a DataTable, and opens a help screen on ``?``
(Esc closes it). It does nothing else: no events, no stats. What vmtui does
beyond this is what the benchmarks weigh.

    python bench/floor_app.py URI
"""

from __future__ import annotations

import sys

import libvirt
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static


class Help(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Static(" Help — keys")
        yield Static(" ? this help   Esc back")


class Floor(App):
    BINDINGS = [Binding("question_mark", "help", "Help")]

    def __init__(self, uri: str) -> None:
        super().__init__()
        self.uri = uri

    def compose(self) -> ComposeResult:
        yield Static(" floor: connecting", id="status")
        yield DataTable(cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Name", "State")
        self.load()

    @work(thread=True)
    def load(self) -> None:
        libvirt.registerErrorHandler(lambda *_: None, None)
        conn = libvirt.open(self.uri)
        rows = [(d.name(), "running" if d.isActive() else "shut off") for d in conn.listAllDomains()]
        self.call_from_thread(self.show, rows)

    def show(self, rows: list[tuple[str, str]]) -> None:
        self.query_one(DataTable).add_rows(sorted(rows))
        self.query_one("#status", Static).update(f" floor: connected, {len(rows)} domains")

    def action_help(self) -> None:
        self.push_screen(Help())


if __name__ == "__main__":
    Floor(sys.argv[1]).run()
