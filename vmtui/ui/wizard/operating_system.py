"""Step 2, the operating system: search osinfo-db, or detect it from the media."""

from __future__ import annotations

import asyncio
import re

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ...core.errors import VmtuiError
from ...core.sizes import fmt_bytes
from ..forms import FieldError
from .step import Step


class OsStep(Step):
    title = "Operating system"
    owns = ("os",)

    def compose(self) -> ComposeResult:
        yield Label("Which operating system will the VM run?", classes="step-question")
        yield Static("", id="os-note", classes="warning")
        with Horizontal(classes="row"):
            yield Input(id="os-search", placeholder="search: debian 12, fedora, windows server…")
            yield Button("Detect from media", id="detect", variant="default")
        yield OptionList(id="os-list")
        yield Static("", id="os-chosen")
        yield FieldError("os")
        yield self.compose_errors()

    def on_mount(self) -> None:
        self.refresh_context()

    def refresh_context(self) -> None:
        db = self.ctx.osdb
        note = self.query_one("#os-note", Static)
        if db is None:
            note.update("Loading the OS list…")
            return
        note.update(escape(db.note) if getattr(db, "note", "") and not db.available else "")
        note.display = bool(note.content)
        self.fill(self.query_one("#os-search", Input).value)

    def fill(self, text: str) -> None:
        db = self.ctx.osdb
        if db is None:
            return
        found = db.search(text) if text.strip() else db.all()
        ol = self.query_one("#os-list", OptionList)
        ol.clear_options()
        ids: list[str] = []
        # an id this osinfo-db lacks (newer than it, or a typo): offered as
        # itself with generic values, never silently as the nearest release
        unknown = typed_os_id(text) if text.strip() else (self.spec.os if db.get(self.spec.os) is None else None)
        if unknown and db.get(unknown) is None:
            fallback = db.fallback_for(unknown)
            near = db.suggest(unknown)
            hint = f"; closest: {', '.join(o.short_id for o in near)}" if near else ""
            ol.add_option(Option(escape(f"{unknown} — not in this osinfo-db: {fallback.name} values{hint}"),
                                 id=UNKNOWN_PREFIX + unknown))
            ids.append(UNKNOWN_PREFIX + unknown)
            if not found:
                found = near
        for os_ in found[:300]:
            label = os_.label + ("  [EOL]" if getattr(os_, "eol", False) else "")
            ol.add_option(Option(escape(label), id=os_.short_id))
            ids.append(os_.short_id)
        if not ids:
            # no match means no choice: the OS chosen before is not kept behind an empty list
            self.wizard.clear_os()
            self.query_one("#os-chosen", Static).update(
                escape(f"No OS matches '{text.strip()}': no OS is chosen. Try fewer words (e.g. only "
                       "the name), or 'generic'."))
            return
        current = self.spec.os
        if unknown and db.get(unknown) is None:
            ol.highlighted = 0
        else:
            ol.highlighted = ids.index(current) if current in ids else 0

    @on(Input.Changed, "#os-search")
    def _search(self, event: Input.Changed) -> None:
        self.fill(event.value)

    @on(Input.Submitted, "#os-search")
    def _search_done(self) -> None:
        self.query_one("#os-list", OptionList).focus()

    @on(OptionList.OptionHighlighted, "#os-list")
    def _highlight(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.choose(event.option.id, announce=False)

    @on(OptionList.OptionSelected, "#os-list")
    async def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.choose(event.option.id)
            await self.wizard.action_next()

    def choose(self, short_id: str, announce: bool = True) -> None:
        db = self.ctx.osdb
        if db is None:
            return
        if short_id.startswith(UNKNOWN_PREFIX):
            given = short_id.removeprefix(UNKNOWN_PREFIX)
            os_ = db.fallback_for(given)
            self.wizard.set_os(os_, short_id=given)
            self.query_one("#os-chosen", Static).update(escape(
                f"Chosen: {given} (not in this host's osinfo-db), with the values of {os_.label}"))
            return
        os_ = db.get(short_id)
        if os_ is None:
            return
        self.wizard.set_os(os_)
        rec = os_.recommended
        bits = [f"Chosen: {os_.label}"]
        if rec.ram_mib:
            bits.append(f"recommended {fmt_bytes(rec.ram_mib * 1024 * 1024)} RAM")
        if rec.vcpus:
            bits.append(f"{rec.vcpus} CPUs")
        if rec.storage_bytes:
            bits.append(f"{fmt_bytes(rec.storage_bytes)} disk")
        self.query_one("#os-chosen", Static).update(escape(", ".join(bits)))
        if self.wizard.is_current(self):
            self.wizard.recheck(self)

    @on(Button.Pressed, "#detect")
    def _detect_pressed(self) -> None:
        self.detect()

    @work(exclusive=True, group="detect")
    async def detect(self) -> None:
        src = self.spec.install
        db = self.ctx.osdb
        err = self.query_one(FieldError)
        try:
            if src.kind == "iso" and src.iso:
                path = await self.wizard.local_path_of(src.iso)
                found = await asyncio.to_thread(db.detect_iso, path)
            elif src.kind == "url" and src.url:
                text = await asyncio.to_thread(fetch_treeinfo, src.url)
                found = db.detect_tree(text)
            else:
                err.set("Detection reads an ISO or an install tree: choose one as the install source first")
                return
        except (OSError, ValueError, VmtuiError) as e:
            err.set(f"Could not read the media: {e}")
            return
        if found is None:
            err.set("The media did not match any OS in osinfo-db: pick one from the list")
            return
        err.set(None)
        self.query_one("#os-search", Input).value = ""
        self.fill("")
        self.choose(found.os.short_id)
        ol = self.query_one("#os-list", OptionList)
        for i in range(ol.option_count):
            if ol.get_option_at_index(i).id == found.os.short_id:
                ol.highlighted = i
                break
        self.notify(f"Detected {found.os.label}", timeout=4)

    def load(self) -> None:
        self.refresh_context()

    def save(self) -> dict[str, str]:
        if not self.spec.os:
            return {"os": "Choose an operating system (or 'generic')"}
        self.wizard.kickstart_changed()  # on leaving the step, not while browsing the list
        return {}


UNKNOWN_PREFIX = "unknown:"
_ID_LIKE = re.compile(r"[a-z][a-z0-9._-]*\d[a-z0-9._-]*")


def typed_os_id(text: str) -> str | None:
    """The OS id a search text names, when it looks like one (a name with a
    version: ``debian12``, ``debian 12``, ``fedora 40``), else None."""
    words = text.strip().casefold().split()
    if not words or len(words) > 2:
        return None
    joined = "".join(words)
    return joined if _ID_LIKE.fullmatch(joined) else None


def fetch_treeinfo(url: str, timeout: float = 15.0) -> str:
    import urllib.parse
    import urllib.request
    base = url if url.endswith("/") else url + "/"
    if urllib.parse.urlsplit(base).scheme not in ("http", "https", "ftp"):
        raise ValueError("only http, https and ftp install trees are supported")
    last: Exception | None = None
    for name in (".treeinfo", "treeinfo"):
        try:
            with urllib.request.urlopen(base + name, timeout=timeout) as resp:  # noqa: S310 (scheme checked)
                return resp.read(1 << 20).decode("utf-8", "replace")
        except OSError as e:
            last = e
    raise OSError(f"no .treeinfo at {base} ({last})")
