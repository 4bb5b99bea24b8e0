"""The graphical console of a VM in the terminal: its screen drawn with
half-block characters (refreshed every second, pausable), keys sent to it,
and the VNC/SPICE connection lines to copy."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Callable

from rich.markup import escape
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..core.connection.service import LibvirtService
from ..core.consoles import graphics as G
from ..core.errors import InvalidState, Unsupported, VmtuiError
from .base import VModal, VScreen
from .footer import KeyFooter
from .forms import SubmitDialog, dialog_buttons
from .toggles import Checkbox

log = logging.getLogger(__name__)

#: A blocking image source (runs in a worker thread): the default takes a
#: screenshot through libvirt; tests and the screenshot script inject one.
Source = Callable[[], "G.Frame | G.Image"]

#: Seconds between the end of one screenshot and the start of the next.
INTERVAL = 1.0
#: Time limit of one screenshot (transfer + decoding).
TIMEOUT = 15.0
#: Typed text goes to the guest in batches of this many characters.
TYPE_BATCH = 16


def _no_support(err: VmtuiError) -> bool:
    return isinstance(err, Unsupported)


def _not_running(err: VmtuiError) -> bool:
    return isinstance(err, InvalidState) or "not running" in err.cause


class ScreenView(Widget):
    """The picture as rows of ``▀`` (fg = top pixel, bg = bottom pixel); a
    luminance ramp of characters when colours are off (NO_COLOR)."""

    DEFAULT_CSS = """
    ScreenView { width: 1fr; height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image: G.Image | None = None
        self.cells: list[list[G.Cell]] = []
        self.scaled_for: tuple[int, int, bool] | None = None  # (cols, rows, keep_aspect) of cells
        self.keep_aspect = True
        self.message = ""
        self._strips: dict[int, Strip] = {}
        self._styles: dict[tuple, Style] = {}
        self._scaling = False

    # --- what to show ----------------------------------------------------------------

    def show(self, image: G.Image, cells: list[list[G.Cell]]) -> None:
        """A new frame, already scaled (off the loop) to this widget's size."""
        self.image = image
        self.message = ""
        if cells and (len(cells), len(cells[0])) == (self.size.height, self.size.width):
            self.cells = cells
            self.scaled_for = (self.size.width, self.size.height, self.keep_aspect)
            self._strips.clear()
            self.refresh()
        else:  # the widget changed size meanwhile
            self.rescale()

    def show_message(self, text: str) -> None:
        """A message instead of a picture (nothing captured yet)."""
        self.message = text
        self._strips.clear()
        self.refresh()

    def target(self) -> tuple[int, int]:
        return self.size.width, self.size.height

    def rescale(self) -> None:
        if self.image is not None and self.size.width > 0 and self.size.height > 0:
            self._rescale_worker()

    @work(exclusive=True, group="rescale", thread=True)
    def _rescale_worker(self) -> None:
        image, (cols, rows), keep = self.image, self.target(), self.keep_aspect
        cells = G.halfblock_rows(image, cols, rows, keep_aspect=keep)
        try:
            self.app.call_from_thread(self._rescaled, image, cells, (cols, rows, keep))
        except RuntimeError:  # the app is closing
            pass

    def _rescaled(self, image: G.Image, cells: list[list[G.Cell]], scaled_for: tuple[int, int, bool]) -> None:
        if image is self.image:
            self.cells = cells
            self.scaled_for = scaled_for
            self._strips.clear()
            self.refresh()

    def on_resize(self) -> None:
        self._strips.clear()
        self.rescale()

    def text(self) -> str:
        """What the widget shows, as plain text (for tests and NO_COLOR)."""
        return "\n".join("".join(seg.text for seg in self.render_line(y)) for y in range(self.size.height))

    # --- drawing -------------------------------------------------------------------------

    def _style(self, top: G.RGB | None, bottom: G.RGB | None) -> Style:
        key = (top, bottom)
        style = self._styles.get(key)
        if style is None:
            from rich.color import Color
            style = Style(color=Color.from_rgb(*top) if top else None,
                          bgcolor=Color.from_rgb(*bottom) if bottom else None)
            if len(self._styles) > 8192:
                self._styles.clear()
            self._styles[key] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if self.message or not self.cells:
            if y == self.size.height // 2 and self.message:
                return Strip([Segment(self.message[:width].center(width), base)], width)
            return Strip.blank(width, base)
        strip = self._strips.get(y)
        if strip is not None:
            return strip
        row = self.cells[y] if y < len(self.cells) else []
        segments: list[Segment] = []
        if self.app.no_color:
            line = G.ramp_rows([row])[0] if row else ""
            segments.append(Segment(line.ljust(width)[:width], base))
        else:
            run: list[str] = []
            run_style: Style | None = None
            for top, bottom in row:
                if top is None and bottom is None:
                    ch, style = " ", base
                elif top is None:
                    ch, style = "▄", self._style(bottom, None)
                elif bottom is None:
                    ch, style = "▀", self._style(top, None)
                else:
                    ch, style = "▀", self._style(top, bottom)
                if style is not run_style and run:
                    segments.append(Segment("".join(run), run_style))
                    run = []
                run_style = style
                run.append(ch)
            if run:
                segments.append(Segment("".join(run), run_style))
        strip = Strip(segments, width).extend_cell_length(width, base).crop(0, width)
        self._strips[y] = strip
        return strip


class SendKeysMenu(VModal["list[int] | None"]):
    """Key combinations a terminal cannot pass on (virt-manager's Send Key menu)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel"), Binding("d", "pick(0)", "Ctrl+Alt+Del")] + [
        Binding(str(n), f"pick({n})", f"Ctrl+Alt+F{n}", show=False) for n in range(1, 8)]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sendkeys"):
            yield Label("Send keys to the VM", classes="dialog-title")
            yield OptionList(*[Option(f"{label}" + (f"   ({hint})" if hint else ""), id=str(i))
                               for i, (label, hint) in enumerate(self._labels())], id="combos")
            yield Static("Enter sends the highlighted keys; d = Ctrl+Alt+Del, 1…7 = Ctrl+Alt+F1…F7, "
                         "Esc cancels.", classes="dim")

    @staticmethod
    def _labels() -> list[tuple[str, str]]:
        out = []
        for label, _codes in G.COMBOS:
            hint = "d" if label == "Ctrl+Alt+Del" else (label[-1] if label.startswith("Ctrl+Alt+F") else "")
            out.append((label, hint))
        return out

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(G.COMBOS[int(event.option.id)][1])

    def action_pick(self, n: int) -> None:
        label = "Ctrl+Alt+Del" if n == 0 else f"Ctrl+Alt+F{n}"
        self.dismiss(dict(G.COMBOS)[label])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class TypeTextDialog(SubmitDialog["str | None"]):
    """Text to type into the VM (US keyboard layout, printable ASCII)."""

    ok_id = "type"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="typetext"):
            yield Label("Type text into the VM", classes="dialog-title")
            yield Input(placeholder="text to type (printable ASCII)", id="text")
            yield Static("", id="text-error", classes="field-error")
            yield Checkbox("Press Enter at the end", value=True, id="enter")
            yield Static("Sent as key presses of a US keyboard; the guest's layout decides what appears.",
                         classes="dim")
            yield dialog_buttons("Type", "type")

    def on_mount(self) -> None:
        self.query_one("#text", Input).focus()

    def _submit(self) -> None:
        text = self.query_one("#text", Input).value
        enter = self.query_one("#enter", Checkbox).value
        error = self.query_one("#text-error", Static)
        bad = G.untypable(text)
        if bad:
            error.update("Cannot type " + ", ".join(repr(c) for c in bad[:5])
                         + ": only printable ASCII (US layout).")
            return
        if not text and not enter:
            error.update("Nothing to type.")
            return
        self.dismiss(text + ("\n" if enter else ""))

    @on(Input.Changed, "#text")
    def _changed(self) -> None:
        self.query_one("#text-error", Static).update("")


class SavePictureDialog(SubmitDialog["Path | None"]):
    """Where to save the current picture; errors appear on the field."""

    ok_id = "save"

    def __init__(self, frame: G.Frame, default: Path) -> None:
        super().__init__()
        self.frame = frame
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="savepicture"):
            yield Label("Save the picture", classes="dialog-title")
            yield Input(str(self.default), id="path")
            yield Static("", id="path-error", classes="field-error")
            yield dialog_buttons("Save", "save")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def _submit(self) -> None:
        error = self.query_one("#path-error", Static)
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            error.update("Give a file name.")
            return
        path = Path(raw).expanduser()
        if path.is_dir():
            path = path / self.default.name
        if path.exists():
            error.update(f"{path} exists: choose another name.")
            return
        if not path.parent.is_dir():
            error.update(f"No directory {path.parent}.")
            return
        try:
            with open(path, "xb") as f:
                f.write(self.frame.file_bytes())
        except OSError as err:
            error.update(f"Cannot write {path}: {err.strerror or err}")
            return
        self.dismiss(path)


class GraphicsScreen(VScreen):
    """The VM's screen, refreshed every second while open; keys; connection lines."""

    BINDINGS = [
        Binding("escape,q", "close", "Back"),
        Binding("space", "pause", "Pause"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("k", "send_keys", "Keys", tooltip="Send Ctrl+Alt+Del, Ctrl+Alt+F1…F7, … (virsh send-key)"),
        Binding("t", "type_text", "Type", tooltip="Type text into the VM as key presses"),
        Binding("i", "toggle_info", "Info", tooltip="Show/hide the connection lines"),
        Binding("f", "toggle_fit", "Fit", tooltip="Keep the aspect ratio / stretch"),
        Binding("y", "copy", "Copy", tooltip="Copy the first command line (OSC 52)", show=False),
        Binding("s", "save", "Save", tooltip="Save the picture to a file (virsh screenshot)"),
    ]

    def __init__(self, service: LibvirtService, uuid: str, name: str, *, source: Source | None = None,
                 displays: list[G.Display] | None = None, interval: float = INTERVAL) -> None:
        super().__init__()
        self.service = service
        self.uuid = uuid
        self.vm_name = name
        self.source = source
        self.interval = interval
        self.paused = False
        self.displays: list[G.Display] | None = displays
        self.infos: list[G.ConnectInfo] = []
        self.frames = 0
        self.last_frame: G.Frame | None = None
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._typing = False

    # --- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(f" Screen — {escape(self.vm_name)}", id="gfx-title", classes="screen-title")
        yield ScreenView(id="gfx-view")
        yield Static(" connecting…", id="gfx-status", classes="screen-title")
        with VerticalScroll(id="gfx-info"):
            yield Static("Loading the displays…", id="gfx-info-text")
        yield KeyFooter(compact=True)

    @property
    def view(self) -> ScreenView:
        return self.query_one(ScreenView)

    def on_mount(self) -> None:
        self.view.show_message("waiting for the first picture…")
        if self.displays is not None:
            self.set_displays(self.displays)
        else:
            self.load_displays()
        self.refresh_loop()

    def _status(self, text: str | Text) -> None:
        self.query_one("#gfx-status", Static).update(text if isinstance(text, Text) else Text(" " + text))

    # --- connection info -----------------------------------------------------------------

    @work(exclusive=True, group="gfx-displays")
    async def load_displays(self) -> None:
        try:
            displays = await self.service.call(
                lambda c: G.displays_of(c, self.uuid),
                action="read the displays of", obj=f"domain '{self.vm_name}'")
        except VmtuiError as err:
            self.query_one("#gfx-info-text", Static).update(Text(err.message, style="red"))
            return
        self.set_displays(displays)

    def set_displays(self, displays: list[G.Display]) -> None:
        self.displays = displays
        self.infos = [G.connect_info(d, self.service.display_uri, self.vm_name) for d in displays]
        kinds = ", ".join(d.label for d in displays) or "no VNC/SPICE display"
        self.query_one("#gfx-title", Static).update(f" Screen — {escape(self.vm_name)} ({kinds})")
        self.query_one("#gfx-info-text", Static).update(info_renderable(self.infos))

    # --- the picture ---------------------------------------------------------------------

    async def _fetch(self) -> G.Frame:
        cols, rows = self.view.target()
        keep = self.view.keep_aspect
        if self.source is not None:
            def job() -> G.Frame:
                got = self.source()
                return got if isinstance(got, G.Frame) else G.Frame(got, "image/x-sample", 0, 0.0)
            frame = await asyncio.wait_for(asyncio.to_thread(job), TIMEOUT)
        else:
            previous = self.last_frame
            frame = await self.service.call(lambda c: G.capture(c, self.uuid, 0, TIMEOUT - 1, previous),
                                            timeout=TIMEOUT, action="take a screenshot of",
                                            obj=f"domain '{self.vm_name}'")
        view = self.view
        if frame.image is view.image and view.cells and (cols, rows, keep) == view.scaled_for:
            frame.cells = view.cells  # the same picture at the same size: nothing to redo
        else:
            frame.cells = await asyncio.to_thread(G.halfblock_rows, frame.image, cols, rows, keep_aspect=keep)
        return frame

    @work(exclusive=True, group="gfx-refresh")
    async def refresh_loop(self) -> None:
        while True:
            if not self.paused:
                delay = await self._refresh_once()
            else:
                delay = 3600.0
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _refresh_once(self) -> float:
        """One screenshot; returns the seconds to wait before the next."""
        try:
            frame = await self._fetch()
        except VmtuiError as err:
            return self._failed(err)
        except asyncio.TimeoutError:
            return self._failed(VmtuiError("take a screenshot of", f"domain '{self.vm_name}'",
                                           f"no picture within {TIMEOUT:g} s"))
        except G.ImageError as err:
            return self._failed(VmtuiError("show the screen of", f"domain '{self.vm_name}'", str(err)))
        except NoMatches:  # the screen is going away
            return 3600.0
        except Exception as err:  # a bug: a message, never a traceback
            log.exception("screenshot failed")
            return self._failed(VmtuiError("show the screen of", f"domain '{self.vm_name}'",
                                           f"{type(err).__name__}: {err}"))
        if not self.is_attached:  # closed while the picture was on its way
            return 3600.0
        recovered = self.last_error is not None
        self.last_error = None
        self.last_frame = frame
        self.frames += 1
        if frame.cells is not self.view.cells:
            self.view.show(frame.image, frame.cells)
        self._show_state()
        if recovered and self.source is None:
            self.load_displays()  # ports change when a VM starts again
        # a slow link or host: wait at least as long as the picture took
        return max(self.interval, min(10.0, frame.seconds))

    def _failed(self, err: VmtuiError) -> float:
        if not self.is_attached:
            return 3600.0
        first = self.last_error != err.cause
        self.last_error = err.cause
        if _no_support(err):
            self.paused = True
            msg = f"no screenshots on this connection ({err.cause})"
            delay = 3600.0
        elif _not_running(err):
            msg = "VM not running — the picture comes back when it runs"
            delay = 3.0
        else:
            msg = err.message.replace("\n", " ")
            delay = 3.0
        if self.view.image is None:
            self.view.show_message(msg)
        self._status(Text(" " + msg + (" (last picture kept)" if self.view.image is not None else ""),
                          style="bold red"))
        if first and not _not_running(err) and not _no_support(err):
            self.notify(err.message, title="Screen", severity="error", timeout=8)
        return delay

    def _show_state(self) -> None:
        f = self.last_frame
        bits = []
        bits.append("❚❚ paused (space resumes)" if self.paused else f"● live, every {self.interval:g} s")
        if f is not None:
            img = f.image
            kind = {"image/png": "PNG", "image/x-portable-pixmap": "PPM",
                    "image/x-sample": "sample picture"}.get(f.mime, f.mime or "?")
            size = f"{f.size / 1024:.0f} KiB" if f.size else ""
            bits.append(f"{img.width}×{img.height} {kind}" + (f" {size}" if size else "")
                        + (f" in {f.seconds:.2f} s" if f.seconds else ""))
            bits.append(time.strftime("%H:%M:%S", time.localtime(f.taken)))
        if not self.view.keep_aspect:
            bits.append("stretched")
        self._status(" " + " · ".join(bits))

    # --- actions ---------------------------------------------------------------------------

    def action_close(self) -> None:
        self.app.pop_screen()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self._show_state()
        self._wake.set()

    def action_refresh_now(self) -> None:
        self._wake.set()
        if self.paused:  # one picture, stay paused
            self._single_refresh()
        if self.source is None:
            self.load_displays()

    @work(group="gfx-single")
    async def _single_refresh(self) -> None:
        await self._refresh_once()

    def action_toggle_info(self) -> None:
        info = self.query_one("#gfx-info")
        info.display = not info.display

    def action_toggle_fit(self) -> None:
        self.view.keep_aspect = not self.view.keep_aspect
        self.view.rescale()
        self._show_state()

    def action_copy(self) -> None:
        for info in self.infos:
            if info.commands:
                what, cmd = info.commands[0]
                self.app.copy_to_clipboard(cmd)
                self.notify(f"Copied ({what}):\n{cmd}", title="Copied", timeout=5)
                return
        self.notify("No command to copy.", severity="warning", timeout=3)

    def action_save(self) -> None:
        frame = self.last_frame
        if frame is None:
            self.notify("No picture yet.", severity="warning", timeout=3)
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(frame.taken))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.vm_name)
        default = Path.cwd() / f"{safe}-{stamp}{frame.extension}"

        def saved(path: Path | None) -> None:
            if path is not None:
                self.notify(f"Saved {frame.image.width}×{frame.image.height} picture to {path}",
                            title="Save", timeout=5)
        self.app.push_screen(SavePictureDialog(frame, default), saved)

    def action_send_keys(self) -> None:
        def chosen(codes: list[int] | None) -> None:
            if codes:
                label = next(lbl for lbl, c in G.COMBOS if c == codes)
                self._send_combo(label, codes)
        self.app.push_screen(SendKeysMenu(), chosen)

    @work(group="gfx-keys")
    async def _send_combo(self, label: str, codes: list[int]) -> None:
        try:
            await self.service.call(lambda c: G.send_combo_to(c, self.uuid, codes),
                                    action=f"send {label} to", obj=f"domain '{self.vm_name}'")
        except VmtuiError as err:
            self.notify(err.message, title="Send keys", severity="error", timeout=10)
            return
        self.notify(f"Sent {label} to '{self.vm_name}'", title="Send keys", timeout=3)
        self._wake.set()  # show the effect soon

    def action_type_text(self) -> None:
        if self._typing:
            self.notify("Still typing the previous text.", severity="warning", timeout=3)
            return

        def chosen(text: str | None) -> None:
            if text:
                self._type(text)
        self.app.push_screen(TypeTextDialog(), chosen)

    @work(group="gfx-keys")
    async def _type(self, text: str) -> None:
        chords = G.keycodes_for_text(text)
        self._typing = True
        sent = 0
        try:
            for start in range(0, len(chords), TYPE_BATCH):
                if not self.is_attached:
                    break
                batch = chords[start:start + TYPE_BATCH]
                sent += await self.service.call(
                    lambda c, b=batch: G.type_text_into(c, self.uuid, b),
                    action="type into", obj=f"domain '{self.vm_name}'")
                if len(chords) > TYPE_BATCH:
                    self._status(f" typing… {sent}/{len(chords)} keys")
        except VmtuiError as err:
            self.notify(f"{err.message}\n{sent} of {len(chords)} keys were sent.", title="Type text",
                        severity="error", timeout=10)
            return
        finally:
            self._typing = False
        self.notify(f"Typed {sent} key{'s' if sent != 1 else ''} into '{self.vm_name}'", title="Type text",
                    timeout=3)
        self._show_state()
        self._wake.set()


def info_renderable(infos: list[G.ConnectInfo]) -> Text:
    """Connection info: one block per display, commands ready to copy."""
    if not infos:
        return Text("This VM has no VNC or SPICE display.", style="italic")
    out = Text()
    for info in infos:
        if out:
            out.append("\n")
        out.append(info.summary, style="bold")
        for note in info.notes:
            out.append("\n  " + note, style="italic")
        for what, cmd in info.commands:
            out.append("\n  ")
            out.append(cmd, style="bold")
            out.append(f"   # {what}", style="dim")
    return out
