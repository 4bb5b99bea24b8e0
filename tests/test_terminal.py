"""TerminalView: the pyte-based terminal widget, on recorded byte streams."""

from __future__ import annotations

import pytest
from rich.color import Color
from textual.app import App, ComposeResult

from vmtui.ui.terminal import TerminalView, char_style, key_to_bytes


class TermApp(App):
    def __init__(self, size=(40, 10)):
        super().__init__()
        self.sent: list[bytes] = []
        self.detached = 0
        self.term_size = size

    def compose(self) -> ComposeResult:
        yield TerminalView(on_input=self.sent.append, id="term")

    def on_mount(self) -> None:
        t = self.query_one(TerminalView)
        t.styles.width, t.styles.height = self.term_size
        t.focus()

    def on_terminal_view_detach(self, message: TerminalView.Detach) -> None:
        self.detached += 1


def make(columns=20, lines=5) -> tuple[TerminalView, list[bytes]]:
    sent: list[bytes] = []
    return TerminalView(on_input=sent.append, columns=columns, lines=lines), sent


def styles_of(term: TerminalView, y: int) -> list[tuple[str, object]]:
    return [(seg.text, seg.style) for seg in term._build(term.screen_buffer.buffer[y], term.screen_buffer.columns, None)]


# --- emulation (no app needed) ------------------------------------------------

def test_plain_text_and_crlf():
    t, _ = make()
    t.feed(b"hello\r\nworld\r\n")
    assert t.display_lines[0].rstrip() == "hello"
    assert t.display_lines[1].rstrip() == "world"
    assert (t.screen_buffer.cursor.x, t.screen_buffer.cursor.y) == (0, 2)


def test_split_utf8_across_chunks():
    t, _ = make()
    data = "grüße €".encode()
    for i in range(len(data)):
        t.feed(data[i:i + 1])
    assert t.display_lines[0].rstrip() == "grüße €"


def test_cursor_movement_and_clear():
    t, _ = make()
    t.feed(b"aaaa\r\nbbbb\r\ncccc")
    t.feed(b"\x1b[2;3HX")  # row 2, col 3 (1-based)
    assert t.display_lines[1].rstrip() == "bbXb"
    t.feed(b"\x1b[H\x1b[2J")
    assert all(not line.strip() for line in t.display_lines)
    assert (t.screen_buffer.cursor.x, t.screen_buffer.cursor.y) == (0, 0)
    t.feed(b"top")
    assert t.display_lines[0].rstrip() == "top"


def test_sgr_colours_to_styles():
    t, _ = make(columns=30)
    t.feed(b"\x1b[1;31mERR\x1b[0m ok \x1b[38;5;33mX\x1b[38;2;255;128;0mY\x1b[7;44mZ\x1b[0m\x1b[3;4mI")
    segs = styles_of(t, 0)
    by_text = {text: style for text, style in segs}
    err = by_text["ERR"]
    assert err.bold and err.color == Color.parse("red")
    assert by_text[" ok "].color is None and not by_text[" ok "].bold
    x = by_text["X"]  # 256-colour 33 = #0087ff
    assert x.color.triplet.hex == "#0087ff"
    y = by_text["Y"]
    assert y.color.triplet.hex == "#ff8000"
    z = by_text["Z"]
    assert z.reverse and z.bgcolor == Color.parse("blue")
    i = by_text["I"]
    assert i.italic and i.underline


def test_bright_and_brown_colour_names():
    t, _ = make()
    t.feed(b"\x1b[33my\x1b[92mg\x1b[0m")
    assert char_style(t.screen_buffer.buffer[0][0]).color == Color.parse("yellow")
    assert char_style(t.screen_buffer.buffer[0][1]).color == Color.parse("bright_green")


def test_line_wrapping_at_width():
    t, _ = make(columns=10, lines=4)
    t.feed(b"0123456789abcdef")
    assert t.display_lines[0] == "0123456789"
    assert t.display_lines[1].rstrip() == "abcdef"


def test_scrolling_keeps_history():
    t, _ = make(columns=10, lines=3)
    t.feed(b"".join(b"line%d\r\n" % i for i in range(10)))
    assert [l.rstrip() for l in t.display_lines] == ["line8", "line9", ""]
    assert "line0" in t.text().splitlines()[0]
    assert len(t.screen_buffer.history) == 8


def test_cursor_position_query_is_answered():
    t, sent = make()
    t.feed(b"\r\nvmtui-guest# \x1b[6n")
    assert sent == [b"\x1b[2;14R"]


def test_resize_changes_screen():
    t, _ = make(columns=20, lines=5)
    t.feed(b"hello")
    t.resize_screen(30, 8)
    assert (t.screen_buffer.columns, t.screen_buffer.lines) == (30, 8)
    assert len(t.display_lines) == 8 and len(t.display_lines[0]) == 30
    assert t.display_lines[0].startswith("hello")


# --- key table ----------------------------------------------------------------

@pytest.mark.parametrize("key,char,expected", [
    ("a", "a", b"a"),
    ("A", "A", b"A"),
    ("exclamation_mark", "!", b"!"),
    ("space", " ", b" "),
    ("enter", "\r", b"\r"),
    ("backspace", "\x7f", b"\x7f"),
    ("tab", "\t", b"\t"),
    ("shift+tab", None, b"\x1b[Z"),
    ("escape", "\x1b", b"\x1b"),
    ("up", None, b"\x1b[A"),
    ("down", None, b"\x1b[B"),
    ("right", None, b"\x1b[C"),
    ("left", None, b"\x1b[D"),
    ("home", None, b"\x1b[H"),
    ("end", None, b"\x1b[F"),
    ("pageup", None, b"\x1b[5~"),
    ("pagedown", None, b"\x1b[6~"),
    ("insert", None, b"\x1b[2~"),
    ("delete", None, b"\x1b[3~"),
    ("f1", None, b"\x1bOP"),
    ("f4", None, b"\x1bOS"),
    ("f5", None, b"\x1b[15~"),
    ("f10", None, b"\x1b[21~"),
    ("f12", None, b"\x1b[24~"),
    ("ctrl+a", None, b"\x01"),
    ("ctrl+c", None, b"\x03"),
    ("ctrl+d", None, b"\x04"),
    ("ctrl+z", None, b"\x1a"),
    ("ctrl+up", None, b"\x1b[1;5A"),
    ("shift+right", None, b"\x1b[1;2C"),
    ("alt+x", "x", b"\x1bx"),
    ("alt+b", None, b"\x1bb"),
    ("ctrl+right_square_bracket", None, None),
    ("shift+pageup", None, None),
])
def test_key_table(key, char, expected):
    assert key_to_bytes(key, char) == expected


def test_application_cursor_mode():
    assert key_to_bytes("up", None, app_cursor=True) == b"\x1bOA"
    t, _ = make()
    t.feed(b"\x1b[?1h")
    assert t.key_bytes("left", None) == b"\x1bOD"
    t.feed(b"\x1b[?1l")
    assert t.key_bytes("left", None) == b"\x1b[D"


# --- in an app ----------------------------------------------------------------

async def test_keys_in_app_and_detach():
    app = TermApp()
    async with app.run_test() as pilot:
        await pilot.pause()
        term = app.query_one(TerminalView)
        assert term.has_focus
        await pilot.press("l", "s", "enter", "tab", "up", "ctrl+c", "f2", "backspace")
        await pilot.pause()
        assert b"".join(app.sent) == b"ls\r\t\x1b[A\x03\x1bOQ\x7f"
        assert term.has_focus  # Tab went to the guest, not to focus_next
        app.sent.clear()
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause()
        assert app.detached == 1
        assert app.sent == []


async def test_widget_follows_size_and_renders():
    app = TermApp(size=(50, 12))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        term = app.query_one(TerminalView)
        assert (term.screen_buffer.columns, term.screen_buffer.lines) == (50, 12)
        term.feed(b"\x1b[32mgreen\x1b[0m text\r\n$ ")
        term.flush()
        await pilot.pause()
        strip = term.render_line(0)
        assert strip.text.startswith("green text")
        assert any(seg.text == "green" and seg.style.color == Color.parse("green") for seg in strip)
        # the cursor (reverse video) sits after the prompt
        cur = term.render_line(1)
        assert any(seg.style and seg.style.reverse and seg.text == " " for seg in cur)
        term.styles.width = 30
        await pilot.pause()
        assert term.screen_buffer.columns == 30


async def test_scrollback_with_shift_pageup():
    app = TermApp(size=(20, 4))
    async with app.run_test() as pilot:
        await pilot.pause()
        term = app.query_one(TerminalView)
        term.feed(b"".join(b"row%02d\r\n" % i for i in range(30)))
        term.flush()
        await pilot.pause()
        assert term.render_line(0).text.startswith("row27")
        await pilot.press("shift+pageup")
        await pilot.pause()
        assert term.scroll_offset_lines == 2
        assert term.render_line(0).text.startswith("row25")
        await pilot.press("shift+pagedown")
        await pilot.pause()
        assert term.scroll_offset_lines == 0
        assert app.sent == []


async def test_feed_threadsafe_coalesces():
    import threading

    app = TermApp(size=(20, 4))
    async with app.run_test() as pilot:
        await pilot.pause()
        term = app.query_one(TerminalView)
        th = threading.Thread(target=lambda: [term.feed_threadsafe(b"x") for _ in range(100)])
        th.start()
        th.join()
        await pilot.pause(0.1)
        assert term.bytes_fed == 100
        assert "x" * 20 in term.display_lines[0]


# --- resize like xterm ----------------------------------------------------------

def test_fewer_lines_move_top_lines_into_history():
    t, _ = make(columns=10, lines=5)
    t.feed(b"l1\r\nl2\r\nl3\r\nl4\r\nl5")
    t.resize_screen(10, 3)
    assert [l.rstrip() for l in t.display_lines] == ["l3", "l4", "l5"]
    assert ["".join(c.data for c in line.values()).rstrip() for line in t.screen_buffer.history] == ["l1", "l2"]
    assert t.screen_buffer.cursor.y == 2  # still on the last line
    t.feed(b"!")
    assert t.display_lines[2].rstrip() == "l5!"


def test_fewer_lines_drop_blank_lines_below_the_cursor_first():
    t, _ = make(columns=10, lines=6)
    t.feed(b"top\r\nprompt$ ")
    t.resize_screen(10, 3)
    assert [l.rstrip() for l in t.display_lines] == ["top", "prompt$", ""]
    assert len(t.screen_buffer.history) == 0


def test_more_lines_pull_lines_back_from_history():
    t, _ = make(columns=10, lines=3)
    t.feed(b"".join(b"r%d\r\n" % i for i in range(6)) + b"$ ")
    assert [l.rstrip() for l in t.display_lines] == ["r4", "r5", "$"]
    t.resize_screen(10, 5)
    assert [l.rstrip() for l in t.display_lines] == ["r2", "r3", "r4", "r5", "$"]
    assert t.screen_buffer.cursor.y == 4
    assert "r0" in t.text() and t.text().count("r2") == 1


def test_fewer_columns_cut_no_reflow():
    t, _ = make(columns=12, lines=3)
    t.feed(b"0123456789AB\r\nshort")
    t.resize_screen(6, 3)
    assert t.display_lines[0] == "012345"
    assert t.display_lines[1].rstrip() == "short"
    t.resize_screen(12, 3)
    assert t.display_lines[0].rstrip() == "012345"  # cut, as xterm does



async def test_keys_are_not_starved_by_a_flood():
    """Queued output is emulated in slices: a key typed behind a big backlog
    reaches the guest before the backlog is done, and nothing is lost."""
    import asyncio

    from textual import events

    app = TermApp(size=(80, 24))
    async with app.run_test() as pilot:
        await pilot.pause()
        term = app.query_one(TerminalView)
        flood = b"".join(b"flood line %06d\r\n" % i for i in range(150_000))  # ~2.6 MB
        term.feed_threadsafe(flood)
        await asyncio.sleep(0)
        app.post_message(events.Key("a", "a"))
        for _ in range(500):
            if app.sent:
                break
            await asyncio.sleep(0.01)
        assert app.sent == [b"a"]
        assert term.bytes_fed < len(flood)  # the key did not wait for the whole backlog
        term.flush()
        assert term.bytes_fed == len(flood)
        assert term.display_lines[-2].startswith("flood line 149999")
