"""A terminal emulator widget (pyte) for serial consoles.

``TerminalView.feed(bytes)`` runs guest output through a pyte screen;
repaints are coalesced (at most ~30 per second) and cover only the lines
pyte marked dirty. Rendering uses Textual's Line API. Keys typed go out as
the bytes a VT100/xterm would send, through ``on_input(bytes)``; ``Ctrl+]``
is not sent but posts :class:`TerminalView.Detach` (as ``virsh console``).
Shift+PgUp/PgDn (and the mouse wheel) scroll back through lines that
scrolled off the top.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import threading
import time
from typing import Callable

import pyte
from rich.color import Color, ColorParseError
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

REFRESH_INTERVAL = 1 / 30
FEED_SLICE = 4096  # bytes per pyte feed call
FEED_BUDGET = 0.015  # seconds of emulation before yielding to the event loop (keys, repaints)
HISTORY_LINES = 5000
DEFAULT_SIZE = (80, 24)

_DECCKM = 1 << 5  # pyte stores private modes shifted by 5

# --------------------------------------------------------------------------
# keys -> bytes

_CSI = "\x1b["
_SS3 = "\x1bO"

#: Keys with a fixed sequence (no modifiers).
KEY_SEQUENCES: dict[str, str] = {
    "enter": "\r",
    "tab": "\t",
    "shift+tab": "\x1b[Z",
    "backspace": "\x7f",
    "ctrl+h": "\x08",
    "escape": "\x1b",
    "space": " ",
    "ctrl+space": "\x00",
    "ctrl+@": "\x00",
    "ctrl+backslash": "\x1c",
    "ctrl+circumflex_accent": "\x1e",
    "ctrl+underscore": "\x1f",
    "ctrl+left_square_bracket": "\x1b",
}

#: CSI final letters for cursor keys (SS3 form in application cursor mode).
_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
#: CSI ~ numbers.
_TILDE = {"insert": 2, "delete": 3, "pageup": 5, "pagedown": 6,
          "f5": 15, "f6": 17, "f7": 18, "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24}
_F1_4 = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}

DETACH_KEY = "ctrl+right_square_bracket"
SCROLL_KEYS = {"shift+pageup": -1, "shift+pagedown": 1}


def _split_mods(key: str) -> tuple[set[str], str]:
    parts = key.split("+")
    mods: set[str] = set()
    while len(parts) > 1 and parts[0] in ("shift", "ctrl", "alt", "meta", "super", "hyper"):
        mods.add(parts.pop(0))
    return mods, "+".join(parts)


def key_to_bytes(key: str, character: str | None = None, *, app_cursor: bool = False) -> bytes | None:
    """The bytes an xterm sends for a Textual key, or None (not for the guest)."""
    if key == DETACH_KEY or key in SCROLL_KEYS:
        return None
    if key in KEY_SEQUENCES:
        return KEY_SEQUENCES[key].encode()
    mods, base = _split_mods(key)
    if "alt" in mods or "meta" in mods:
        rest = "+".join(sorted(mods - {"alt", "meta"}, key=["shift", "ctrl"].index) + [base]) \
            if mods - {"alt", "meta"} else base
        if len(base) == 1 and not (mods - {"alt", "meta", "shift"}):
            inner = (base.upper() if "shift" in mods else base).encode()
        else:
            inner = key_to_bytes(rest, None, app_cursor=app_cursor)
        if inner is None:
            return None
        if inner.startswith(b"\x1b[") or inner.startswith(b"\x1bO"):
            # modified special key: xterm's modifier parameter instead of an ESC prefix
            param = 1 + (1 if "shift" in mods else 0) + 2 + (4 if "ctrl" in mods else 0)
            return _modified(base, param)
        return b"\x1b" + inner
    param = 1 + (1 if "shift" in mods else 0) + (4 if "ctrl" in mods else 0)
    if base in _CURSOR or base in _TILDE or base in _F1_4:
        if param == 1:
            if base in _CURSOR:
                return ((_SS3 if app_cursor else _CSI) + _CURSOR[base]).encode()
            if base in _F1_4:
                return (_SS3 + _F1_4[base]).encode()
            return f"{_CSI}{_TILDE[base]}~".encode()
        return _modified(base, param)
    if mods == {"ctrl"} and len(base) == 1 and base.isalpha():
        return bytes([ord(base.lower()) - ord("a") + 1])
    if character and character.isprintable():
        return character.encode("utf-8")
    if character and len(character) == 1 and ord(character) < 32 or character == "\x7f":
        return character.encode()
    return None


def _modified(base: str, param: int) -> bytes | None:
    if base in _CURSOR:
        return f"{_CSI}1;{param}{_CURSOR[base]}".encode()
    if base in _F1_4:
        return f"{_CSI}1;{param}{_F1_4[base]}".encode()
    if base in _TILDE:
        return f"{_CSI}{_TILDE[base]};{param}~".encode()
    return None


# --------------------------------------------------------------------------
# pyte -> Rich styles

_NAMED = {"black": "black", "red": "red", "green": "green", "brown": "yellow", "yellow": "yellow",
          "blue": "blue", "magenta": "magenta", "cyan": "cyan", "white": "white"}


def _color(name: str) -> Color | None:
    if not name or name == "default":
        return None
    if name in _NAMED:
        return Color.parse(_NAMED[name])
    if name.startswith("bright") and name[6:] in _NAMED:
        return Color.parse("bright_" + _NAMED[name[6:]])
    try:
        if len(name) == 6:
            return Color.parse("#" + name)
        return Color.parse(name)
    except ColorParseError:
        return None


_style_cache: dict[tuple, Style] = {}


def char_style(char: pyte.screens.Char) -> Style:
    """Rich style of a pyte character (cached by attributes)."""
    key = char[1:]
    style = _style_cache.get(key)
    if style is None:
        _d, fg, bg, bold, italics, underscore, strike, reverse, blink = char
        style = Style(color=_color(fg), bgcolor=_color(bg), bold=bold or None, italic=italics or None,
                      underline=underscore or None, strike=strike or None, reverse=reverse or None,
                      blink=blink or None)
        if len(_style_cache) > 4096:
            _style_cache.clear()
        _style_cache[key] = style
    return style


_CURSOR_STYLE = Style(reverse=True)


# --------------------------------------------------------------------------
# the screen


class _Screen(pyte.Screen):
    """pyte screen that keeps lines scrolled off the top, and answers
    device-status / cursor-position queries through ``writer``."""

    def __init__(self, columns: int, lines: int, history: int, writer: Callable[[str], None]) -> None:
        self.history: collections.deque = collections.deque(maxlen=history)
        self.history_added = 0
        self._writer = writer
        self._chars: dict = {}  # attrs -> {character: Char}
        super().__init__(columns, lines)

    def index(self) -> None:
        top, bottom = self.margins or pyte.screens.Margins(0, self.lines - 1)
        if self.cursor.y == bottom and top == 0:
            self.history.append(self.buffer[top])
            self.history_added += 1
        super().index()

    def draw(self, data: str) -> None:
        """pyte's draw, with a fast path for printable ASCII in replace mode
        with auto-wrap (almost all console output): one shared Char per
        distinct character instead of a namedtuple ``_replace`` per cell."""
        text = data.translate(self.g1_charset if self.charset else self.g0_charset)
        if not (text.isascii() and text.isprintable()) or pyte.modes.IRM in self.mode \
                or pyte.modes.DECAWM not in self.mode:
            super().draw(data)
            return
        cursor = self.cursor
        cols = self.columns
        attrs = cursor.attrs
        made = self._chars.get(attrs)
        if made is None:
            if len(self._chars) > 512:
                self._chars.clear()
            made = self._chars[attrs] = {}
        for ch in set(text).difference(made):
            made[ch] = attrs._replace(data=ch)
        get = made.__getitem__
        i, n = 0, len(text)
        while i < n:
            if cursor.x >= cols:
                self.dirty.add(cursor.y)
                self.carriage_return()
                self.linefeed()
            x = cursor.x
            part = text[i:i + cols - x]
            self.buffer[cursor.y].update(zip(range(x, x + len(part)), map(get, part)))
            cursor.x = x + len(part)
            i += len(part)
        self.dirty.add(cursor.y)

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize like xterm, not like pyte: fewer lines first drop blank
        lines below the cursor, then move the top lines into the history
        (nothing is lost, the cursor line stays on screen); more lines pull
        lines back from the history. Fewer columns cut the lines (the guest
        redraws at its own width; no reflow: a serial guest never learns
        the new width, see :meth:`TerminalView.resize_screen`)."""
        lines = lines or self.lines
        columns = columns or self.columns
        if (lines, columns) == (self.lines, self.columns):
            return
        old = self.lines
        buf = self.buffer
        cy = self.cursor.y
        if lines < old:
            excess = old - lines
            blank_below = 0
            for y in range(old - 1, cy, -1):
                if y in buf and any(ch.data.strip() for ch in buf[y].values()):
                    break
                blank_below += 1
            push = excess - min(excess, blank_below)
            for y in range(push):
                self.history.append(buf[y])
                self.history_added += 1
            rows = {y - push: buf[y] for y in range(push, push + lines) if y in buf}
            buf.clear()
            buf.update(rows)
            self.cursor.y = max(0, cy - push)
        elif lines > old and self.history:
            pull = min(lines - old, len(self.history))
            rows = {y + pull: line for y, line in buf.items() if y < old}
            for i in range(pull):
                rows[pull - 1 - i] = self.history.pop()
            buf.clear()
            buf.update(rows)
            self.cursor.y = cy + pull
        if columns < self.columns:
            for line in buf.values():
                for x in range(columns, self.columns):
                    line.pop(x, None)
        self.lines, self.columns = lines, columns
        self.set_margins()
        self.cursor.x = min(self.cursor.x, columns - 1)
        self.cursor.y = min(self.cursor.y, lines - 1)
        self.dirty.update(range(lines))

    def erase_in_display(self, how: int = 0, *args, **kwargs) -> None:
        super().erase_in_display(how, *args, **kwargs)
        if how == 3:
            self.history.clear()

    def write_process_input(self, data: str) -> None:
        self._writer(data)


class TerminalView(Widget, can_focus=True):
    """A VT100/xterm-ish terminal: feed it bytes, it renders; type, it sends."""

    DEFAULT_CSS = """
    TerminalView {
        width: 1fr;
        height: 1fr;
        background: black;
        color: #c0c0c0;
    }
    """

    class Detach(Message):
        """Ctrl+] was pressed: leave the console."""

        def __init__(self, terminal: "TerminalView") -> None:
            self.terminal = terminal
            super().__init__()

        @property
        def control(self) -> "TerminalView":
            return self.terminal

    def __init__(self, on_input: Callable[[bytes], None] | None = None, *,
                 columns: int = DEFAULT_SIZE[0], lines: int = DEFAULT_SIZE[1],
                 history: int = HISTORY_LINES, follow_size: bool = True,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.on_input = on_input
        self.follow_size = follow_size
        self.screen_buffer = _Screen(columns, lines, history, self._answer)
        self._stream = pyte.ByteStream(self.screen_buffer)
        self._lines: dict[int, Strip] = {}  # cached strips of screen rows (without cursor)
        self._refresh_pending = False
        self._scroll = 0  # lines scrolled back (0 = live)
        self._seen_history = 0
        self._last_cursor: tuple[int, int] | None = None
        self._pending: list[bytes] = []
        self._pending_lock = threading.Lock()
        self.bytes_fed = 0
        #: False: keys are not for a guest (nothing connected); they bubble
        #: up to the screen's bindings instead (Ctrl+] and scrolling still work).
        self.input_enabled = True
        self._sized = False
        self._unsized: list[bytes] = []
        self.on_resize_terminal: Callable[[int, int], None] | None = None
        self._feed_loop: asyncio.AbstractEventLoop | None = None
        self._ctx: contextvars.Context | None = None

    def on_mount(self) -> None:
        self._feed_loop = asyncio.get_running_loop()
        self._ctx = contextvars.copy_context()

    # -- output -----------------------------------------------------------

    def _answer(self, data: str) -> None:
        """pyte's replies (ESC[6n cursor position, DSR, DA) go to the guest."""
        if self.on_input is not None and data:
            self.on_input(data.encode())

    def feed(self, data: bytes) -> None:
        """Run guest output through the emulator (UI thread); repaint soon.
        In an app, output that arrives before the widget has its size waits
        for it, so history is laid out at the real width (no reflow later)."""
        if not data:
            return
        if not self._sized and self.follow_size and self.is_attached:
            self._unsized.append(data)
            return
        self._stream.feed(data)
        self.bytes_fed += len(data)
        self._schedule_refresh()

    def feed_threadsafe(self, data: bytes) -> None:
        """``feed`` from any thread: chunks are queued and fed together."""
        with self._pending_lock:
            first = not self._pending
            self._pending.append(data)
        if first:
            loop = self._feed_loop
            if loop is None:
                raise RuntimeError("TerminalView.feed_threadsafe before the widget was mounted")
            # run in the app's context (Textual's active_app/active_message_pump)
            loop.call_soon_threadsafe(self._feed_pending, context=self._ctx)

    def _feed_pending(self, everything: bool = False) -> None:
        """Feed queued output in slices of at most ~FEED_BUDGET seconds, then
        yield to the event loop (typed keys, repaints) and carry on: a
        guest flooding its console never starves the keyboard."""
        with self._pending_lock:
            chunks, self._pending = self._pending, []
        if not chunks:
            return
        data = b"".join(chunks)
        if everything:
            self.feed(data)
            return
        start = time.perf_counter()
        pos = 0
        while pos < len(data):
            self.feed(data[pos:pos + FEED_SLICE])
            pos += FEED_SLICE
            if time.perf_counter() - start > FEED_BUDGET:
                break
        if pos < len(data):
            with self._pending_lock:
                self._pending.insert(0, data[pos:])
            loop = self._feed_loop
            if loop is not None:  # the rest on a later turn of the loop
                loop.call_soon(self._feed_pending, context=self._ctx)

    def _schedule_refresh(self) -> None:
        if not self._refresh_pending:
            self._refresh_pending = True
            if self.is_mounted:
                self.set_timer(REFRESH_INTERVAL, self._apply_dirty)
            else:
                self._refresh_pending = False

    def _apply_dirty(self) -> None:
        """Repaint the lines pyte marked dirty (and the cursor's old/new line)."""
        self._refresh_pending = False
        scr = self.screen_buffer
        dirty = set(scr.dirty)
        scr.dirty.clear()
        added = scr.history_added - self._seen_history
        self._seen_history = scr.history_added
        if self._scroll and added:
            # keep the scrolled-back view on the same text
            self._scroll = min(self._scroll + added, len(scr.history))
            self._lines.clear()
            self.refresh()
            return
        for y in dirty:
            self._lines.pop(y, None)
        cur = (scr.cursor.x, scr.cursor.y)
        if self._last_cursor != cur:
            if self._last_cursor is not None:
                dirty.add(self._last_cursor[1])
            dirty.add(cur[1])
            self._last_cursor = cur
        if self._scroll:
            self.refresh()
            return
        width = self.size.width or scr.columns
        if len(dirty) > scr.lines // 2:
            self.refresh()
        else:
            for y in dirty:
                self.refresh(Region(0, y, width, 1))

    def flush(self) -> None:
        """Apply pending repaints now (tests, benchmarks)."""
        self._feed_pending(everything=True)
        self._apply_dirty()

    # -- inspection ----------------------------------------------------------

    @property
    def display_lines(self) -> list[str]:
        """The visible screen as text (live, ignoring scroll-back)."""
        return self.screen_buffer.display

    def text(self) -> str:
        """Scroll-back plus screen as text, trailing blanks stripped."""
        scr = self.screen_buffer
        rows = ["".join(line[x].data for x in range(scr.columns)) for line in scr.history]
        rows += scr.display
        return "\n".join(r.rstrip() for r in rows).rstrip("\n")

    @property
    def scroll_offset_lines(self) -> int:
        return self._scroll

    # -- rendering -----------------------------------------------------------

    def _row(self, y: int):
        """The pyte line shown at widget row ``y`` (history when scrolled back)."""
        scr = self.screen_buffer
        if self._scroll:
            hist = scr.history
            idx = len(hist) - self._scroll + y
            if idx < len(hist):
                return hist[idx] if idx >= 0 else None
            y = idx - len(hist)
        if y >= scr.lines:
            return None
        return scr.buffer[y]

    def _build(self, line, columns: int, cursor_x: int | None) -> Strip:
        segments: list[Segment] = []
        text: list[str] = []
        cur_key = None
        cur_style: Style | None = None
        # cells past the last written one are the line's default (blank)
        last = max(line) + 1 if line else 0
        end = min(columns, max(last, cursor_x + 1 if cursor_x is not None else 0))
        for x in range(end):
            ch = line[x]
            data = ch.data
            if not data:  # right half of a wide character
                continue
            if x == cursor_x:
                if text:
                    segments.append(Segment("".join(text), cur_style))
                    text = []
                segments.append(Segment(data, char_style(ch) + _CURSOR_STYLE))
                cur_key = None
                continue
            key = ch[1:]
            if key != cur_key:
                if text:
                    segments.append(Segment("".join(text), cur_style))
                    text = []
                cur_key = key
                cur_style = char_style(ch)
            text.append(data)
        if text:
            segments.append(Segment("".join(text), cur_style))
        if end < columns:
            segments.append(Segment(" " * (columns - end), char_style(line.default)))
        return Strip(segments, columns).apply_style(self.rich_style)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scr = self.screen_buffer
        line = self._row(y)
        if line is None:
            return Strip.blank(width, self.rich_style)
        live_y = y if not self._scroll else None
        cursor_x = None
        if live_y is not None and live_y == scr.cursor.y and not scr.cursor.hidden and self.has_focus:
            cursor_x = min(scr.cursor.x, scr.columns - 1)
        if cursor_x is None and live_y is not None:
            strip = self._lines.get(live_y)
            if strip is None:
                strip = self._lines[live_y] = self._build(line, scr.columns, None)
        else:
            strip = self._build(line, scr.columns, cursor_x)
        return strip.crop_extend(0, width, self.rich_style)

    def on_focus(self) -> None:
        self._last_cursor = None
        self._schedule_refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- size ---------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        if not self.follow_size:
            return
        cols, rows = event.size.width, event.size.height
        if cols <= 0 or rows <= 0:
            return
        self.resize_screen(cols, rows)
        if not self._sized:
            self._sized = True
            if self._unsized:
                data = b"".join(self._unsized)
                self._unsized.clear()
                self.feed(data)

    def resize_screen(self, columns: int, lines: int) -> None:
        scr = self.screen_buffer
        if (scr.columns, scr.lines) == (columns, lines):
            return
        scr.resize(lines=lines, columns=columns)
        self._lines.clear()
        self._scroll = min(self._scroll, len(scr.history))
        self.refresh()
        if self.on_resize_terminal is not None:
            self.on_resize_terminal(columns, lines)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.screen_buffer.columns

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.screen_buffer.lines

    # -- scroll-back ----------------------------------------------------------

    def scroll_history(self, delta_lines: int) -> None:
        """Negative: back into history; positive: towards the live screen."""
        scr = self.screen_buffer
        new = max(0, min(len(scr.history), self._scroll - delta_lines))
        if new != self._scroll:
            self._scroll = new
            self.refresh()

    def scroll_to_live(self) -> None:
        if self._scroll:
            self._scroll = 0
            self.refresh()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.scroll_history(-3)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.scroll_history(3)

    # -- input ----------------------------------------------------------------

    def key_bytes(self, key: str, character: str | None) -> bytes | None:
        return key_to_bytes(key, character, app_cursor=_DECCKM in self.screen_buffer.mode)

    async def _on_key(self, event: events.Key) -> None:
        # Everything goes to the guest, including Tab (no focus change here).
        key = event.key
        if not self.input_enabled and key != DETACH_KEY and key not in SCROLL_KEYS:
            return  # nobody to type to: let the screen's bindings have it
        event.stop()
        event.prevent_default()
        if key == DETACH_KEY:
            self.post_message(self.Detach(self))
            return
        if key in SCROLL_KEYS:
            self.scroll_history(SCROLL_KEYS[key] * max(1, self.screen_buffer.lines // 2))
            return
        data = self.key_bytes(key, event.character)
        if data is None:
            return
        self.scroll_to_live()
        if self.on_input is not None:
            self.on_input(data)
