"""The wizard must not mislead (issue 13, part 4): one test per item seen in
the walk-through, through Pilot on the test driver (the keys also through a
real tmux, tests/ptyterm.py).

The host is tests/data/host-small.xml plus a second network ``lab`` and two
host interfaces (bridge ``br0``, ethernet ``eth0``), written per test.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Select, Static

from vmtui.core.host.domcaps import HostCaps
from vmtui.ui.dialogs import ConfirmDialog
from vmtui.ui.forms import FieldError
from vmtui.ui.toggles import Checkbox, RadioButton
from vmtui.ui.wizard import CustomizeScreen, FinishStep, NewVmWizard, PreviewScreen
from vmtui.ui.wizard.screen import WIZARD_KEYS

from .conftest import SMALL_HOST, wait_for
from .notes import Notes
from .prereq import needs
from .test_wizard import choose_os, choose_source, error_of, make_app, next_step, open_wizard, set_input

ROOT = Path(__file__).resolve().parents[1]
GiB = 1024 ** 3

EXTRA_HOST = """
  <network>
    <name>lab</name>
    <uuid>33333333-3333-4333-8333-000000000002</uuid>
    <bridge name='virbr9' stp='on' delay='0'/>
    <ip address='10.9.9.1' netmask='255.255.255.0'/>
  </network>
  <interface type='ethernet' name='eth0'>
    <start mode='onboot'/>
    <mac address='52:54:00:aa:bb:01'/>
  </interface>
  <interface type='bridge' name='br0'>
    <start mode='onboot'/>
    <bridge stp='off'>
      <interface type='ethernet' name='eth1'>
        <mac address='52:54:00:aa:bb:02'/>
      </interface>
    </bridge>
  </interface>
"""


def wizard_host(tmp_path: Path) -> str:
    """host-small.xml with a second network and host interfaces: its test:// URI."""
    path = tmp_path / "host-wizard.xml"
    path.write_text(SMALL_HOST.read_text().replace("</node>", EXTRA_HOST + "</node>"))
    return "test://" + str(path)


async def to_finish(wiz, pilot, *, source: str = "iso", name: str = "vm-x") -> None:
    """From step 1 to the last step with plain answers."""
    if source == "iso":
        await set_input(wiz, pilot, "#iso", "default/install.iso")
    else:
        await choose_source(wiz, pilot, source)
    await next_step(wiz, pilot)
    assert wiz.index == 1, shown_errors(wiz)
    await choose_os(wiz, pilot, "generic linux", wiz.ctx.osdb.search("generic linux")[0].short_id)
    await next_step(wiz, pilot)
    await set_input(wiz, pilot, "#memory", "2G")
    await set_input(wiz, pilot, "#vcpus", "1")
    await next_step(wiz, pilot)
    await set_input(wiz, pilot, "#vol-size", "1G")
    await next_step(wiz, pilot)
    assert isinstance(wiz.steps[wiz.index], FinishStep), shown_errors(wiz)
    await set_input(wiz, pilot, "#name", name)


def shown_errors(wiz) -> list[str]:
    return [f"{e.field_name}: {e.content}" for e in wiz.query(FieldError) if e.display]


async def choose(wiz, pilot, wid: str, value: str) -> None:
    wiz.query_one(wid, Select).value = value
    await pilot.pause()


async def domain_xml(app, name: str, flags: int = 0) -> ET.Element:
    dom = await asyncio.to_thread(app.service.conn.lookupByName, name)
    return ET.fromstring(await asyncio.to_thread(dom.XMLDesc, flags))


# --- PXE: the boot network is the NIC's, picked once -----------------------------


async def test_pxe_network_is_picked_once_and_follows_the_nic(tmp_path):
    app = make_app(wizard_host(tmp_path))
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await choose_source(wiz, pilot, "pxe")
        await choose(wiz, pilot, "#pxe-network", "net:lab")
        await next_step(wiz, pilot)
        # before: "No NIC is on network 'lab'" -- the NIC was still on 'default'
        assert wiz.index == 1, shown_errors(wiz)
        assert (wiz.spec.nics[0].kind, wiz.spec.nics[0].source) == ("network", "lab")
        await choose_os(wiz, pilot, "generic linux", wiz.ctx.osdb.search("generic linux")[0].short_id)
        for _ in range(3):
            await next_step(wiz, pilot)
        assert isinstance(wiz.steps[wiz.index], FinishStep), shown_errors(wiz)
        assert wiz.query_one("#net-source", Select).value == "net:lab"  # the same choice, shown here
        assert "PXE boots from this network card" in str(wiz.query_one("#pxe-note", Static).content)
        # another network for the NIC: the boot network follows, step 1 shows it
        await choose(wiz, pilot, "#net-source", "net:default")
        assert "PXE through the first NIC (network 'default')" in str(wiz.query_one("#summary").content)
        await pilot.press("ctrl+r")
        for _ in range(3):
            await pilot.press("ctrl+r")
            await pilot.pause()
        assert wiz.index == 0 and wiz.spec.install.network == "default"
        assert wiz.query_one("#pxe-network", Select).value == "net:default"
        for _ in range(4):
            await next_step(wiz, pilot)
        await set_input(wiz, pilot, "#name", "pxe-lab")
        await next_step(wiz, pilot)  # Finish
        await wait_for(lambda: any(d.name == "pxe-lab" for d in app.table.domains.values()), timeout=30,
                       what="created")
        final = await domain_xml(app, "pxe-lab", 2)
        assert [i.find("source").get("network") for i in final.iter("interface")] == ["default"]
        live = await domain_xml(app, "pxe-lab")
        assert live.find("os/boot").get("dev") == "network"


# --- the summary is the spec F2 shows --------------------------------------------


async def test_summary_follows_the_fields_like_the_preview(tmp_path):
    app = make_app(wizard_host(tmp_path))
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await to_finish(wiz, pilot, name="sum-vm")
        summary = lambda: str(wiz.query_one("#summary").content)  # noqa: E731
        assert "Network: virtual network 'default', virtio" in summary()
        await choose(wiz, pilot, "#net-source", "bridge:")
        await set_input(wiz, pilot, "#bridge", "br0")
        await choose(wiz, pilot, "#nic-model", "e1000e")
        # before: "network default" until Next, then "bridge , virtio"
        assert "Network: bridge br0, e1000e" in summary(), summary()
        assert "default" not in summary().split("Network:")[1]
        assert "Disk: new thin qcow2 1.0 GiB in pool 'default' as sum-vm.qcow2" in summary()
        await pilot.press("f2")
        await wait_for(lambda: isinstance(app.screen, PreviewScreen), what="preview")
        prev = app.screen
        await wait_for(lambda: prev.texts is not None, timeout=15, what="preview built")
        line = prev.query_one("#virt-install").text
        assert "--network bridge=br0,model=e1000e" in line and "size=1," in line
        await pilot.press("escape")
        await pilot.pause()
        await choose(wiz, pilot, "#net-source", "net:lab")
        assert "Network: virtual network 'lab', e1000e" in summary()


# --- CPU mode follows the virt type; a KVM start failure offers TCG -------------------

KVM_CAPS = HostCaps(kvm_available=True, virt_types=["kvm", "qemu"], from_libvirt=True, cpus=8,
                    memory_total_kib=16 * 1024 * 1024,
                    cpu_modes={"kvm": {"host-passthrough": True, "host-model": True},
                               "qemu": {"host-passthrough": False, "host-model": True}})


async def test_cpu_mode_follows_the_virt_type_in_customize(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        wiz.ctx.caps = KVM_CAPS  # the test driver offers no KVM: this host does
        wiz.spec.virt_type, wiz.spec.cpu_mode = "kvm", "host-passthrough"
        await to_finish(wiz, pilot, name="tcg-vm")
        wiz.query_one("#customize", Checkbox).value = True
        await pilot.pause()
        await next_step(wiz, pilot)
        await wait_for(lambda: isinstance(app.screen, CustomizeScreen), what="customize")
        cust = app.screen
        assert cust.query_one("#c-cpu-mode", Select).value == "host-passthrough"
        cust.query_one("#c-virt", Select).value = "qemu"
        await pilot.pause()
        await pilot.pause()
        assert cust.query_one("#c-cpu-mode", Select).value == "host-model"
        assert "QEMU (TCG) cannot pass the host CPU through" in str(cust.query_one("#c-cpu-note").content)
        assert cust.problems() == {}  # before: "QEMU (TCG) cannot pass the host CPU through" on Begin
        cust.query_one("#c-virt", Select).value = "kvm"  # back: the CPU the switch replaced
        await pilot.pause()
        await pilot.pause()
        assert cust.query_one("#c-cpu-mode", Select).value == "host-passthrough"


async def test_kvm_start_failure_offers_qemu_tcg_and_retries(small_uri, monkeypatch):
    from vmtui.core.create import installer

    tried = []
    original = installer._start_install

    def start(conn, xml, *rest):
        kind = ET.fromstring(xml).get("type")
        tried.append(kind)
        if kind == "kvm":  # as on a host whose /dev/kvm QEMU cannot open
            import libvirt
            raise libvirt.libvirtError("internal error: process exited while connecting to monitor: "
                                       "Could not access KVM kernel module: No such file or directory")
        return original(conn, xml)

    monkeypatch.setattr(installer, "_start_install", start)
    monkeypatch.setattr(installer, "host_caps", _async_value(KVM_CAPS))
    notes = Notes()
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40), message_hook=notes.hook) as pilot:
        wiz = await open_wizard(app, pilot)
        wiz.ctx.caps = KVM_CAPS
        wiz.spec.virt_type, wiz.spec.cpu_mode = "kvm", "host-passthrough"
        await to_finish(wiz, pilot, name="kvm-vm")
        await next_step(wiz, pilot)  # Finish: KVM fails to start, everything is removed
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), timeout=30, what="the offer")
        text = str(app.screen.query_one(".dialog-body", Static).content)
        assert "Could not access KVM kernel module" in text and "QEMU (TCG)" in text
        assert not any(d.name == "kvm-vm" for d in app.service.domains.values())
        await pilot.press("y")
        await wait_for(lambda: any(d.name == "kvm-vm" for d in app.table.domains.values()), timeout=30,
                       what=f"created under TCG {notes.messages}")
        assert tried == ["kvm", "qemu"]
        final = await domain_xml(app, "kvm-vm", 2)
        assert final.get("type") == "qemu" and final.find("cpu").get("mode") == "host-model"
        assert any("now uses QEMU (TCG)" in m for m in notes.messages)


def _async_value(value):
    async def get(*args, **kwargs):
        return value
    return get


# --- a message follows its field --------------------------------------------------


async def test_field_errors_are_checked_again_when_the_field_changes(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await next_step(wiz, pilot)
        assert error_of(wiz, "install.iso")
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        assert not error_of(wiz, "install.iso")  # gone at once, no Next needed
        await next_step(wiz, pilot)
        await next_step(wiz, pilot)
        assert wiz.index == 2
        await set_input(wiz, pilot, "#memory", "lots")
        await next_step(wiz, pilot)
        first = error_of(wiz, "memory")
        assert first
        await set_input(wiz, pilot, "#memory", "64G")  # still wrong: another message
        assert error_of(wiz, "memory") and error_of(wiz, "memory") != first and "host" in error_of(wiz, "memory")
        await set_input(wiz, pilot, "#vcpus", "1")  # another field: no message appears there while typing
        assert not error_of(wiz, "vcpus")
        await set_input(wiz, pilot, "#memory", "2G")
        assert not error_of(wiz, "memory")
        await next_step(wiz, pilot)
        assert wiz.index == 3
        # the storage step: a size error goes with a good size
        await set_input(wiz, pilot, "#vol-size", "abc")
        await next_step(wiz, pilot)
        assert error_of(wiz, "disks[0].size")
        await set_input(wiz, pilot, "#vol-size", "5G")
        assert not error_of(wiz, "disks[0].size")


# --- keys that reach the app ---------------------------------------------------------


async def test_the_wizard_shows_only_keys_that_reach_the_app(small_uri):
    shown = {k for k, _a, _l in WIZARD_KEYS}
    assert not any(k.startswith(("alt+", "meta+", "super+")) for k in shown), shown
    assert "ctrl+b" not in shown and "ctrl+a" not in shown  # tmux's and screen's prefixes
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        footer = {ab.binding.key for ab in wiz.active_bindings.values() if ab.binding.show}
        assert footer == shown, footer
        await to_finish(wiz, pilot, name="keys-vm")
        wiz.query_one("#customize", Checkbox).value = True
        await pilot.pause()
        await next_step(wiz, pilot)
        await wait_for(lambda: isinstance(app.screen, CustomizeScreen), what="customize")
        keys = {ab.binding.key for ab in app.screen.active_bindings.values() if ab.binding.show}
        assert not any("alt+" in k for k in keys), keys


def _vmtui_in(multiplexer: str | None, cols: int, rows: int, env: dict | None = None):
    from .ptyterm import PtyTerminal

    cmd = [sys.executable, "-m", "vmtui", "--demo"]
    if multiplexer == "tmux":
        sock = f"vmtui-test-{os.getpid()}-{os.urandom(2).hex()}"
        inner = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        argv = ["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-x", str(cols), "-y", str(rows),
                f"cd {ROOT} && exec env {inner} {' '.join(cmd)}", ";", "set-option", "status", "off"]
        term = PtyTerminal(argv, cols=cols, rows=rows, cwd=str(ROOT))
        term.cleanup = ["tmux", "-L", sock, "kill-server"]
        return term
    if multiplexer == "screen":
        name = f"vmtui-test-{os.getpid()}-{os.urandom(2).hex()}"
        argv = ["screen", "-S", name, "-c", "/dev/null", "env", *(f"{k}={v}" for k, v in (env or {}).items()),
                *cmd]
        term = PtyTerminal(argv, cols=cols, rows=rows, cwd=str(ROOT))
        term.cleanup = ["screen", "-S", name, "-X", "quit"]
        return term
    return PtyTerminal(cmd, cols=cols, rows=rows, cwd=str(ROOT), env=env)


def _close(term) -> None:
    cleanup = getattr(term, "cleanup", None)
    term.close()
    if cleanup:
        import subprocess
        subprocess.run(cleanup, capture_output=True)


# what a terminal sends for each key (xterm); tmux passes them on in its own terms
KEY_BYTES = {"ctrl+n": "\x0e", "ctrl+r": "\x12", "ctrl+s": "\x13", "f2": "\x1bOQ", "escape": "\x1b",
             "alt+f": "\x1bf", "down": "\x1b[B", "space": " "}


@pytest.mark.parametrize("where", [
    pytest.param("tmux", marks=needs(shutil.which("tmux") is not None,
                                     "tmux is not installed (scripts/setup-host.sh installs it)")),
    pytest.param("screen", marks=needs(shutil.which("screen") is not None,
                                       "GNU screen is not installed (scripts/setup-host.sh installs it)")),
    "plain pty (as over SSH)"])
def test_wizard_keys_reach_the_app_in_tmux_screen_and_a_plain_terminal(where):
    term = _vmtui_in(where if where in ("tmux", "screen") else None, 100, 30)
    try:
        term.wait_for("running", timeout=60)
        term.send("n")
        term.wait_for("^n Next", timeout=30)
        footer = term.text().splitlines()[-1]
        assert "^r Back" in footer and "alt+" not in footer, footer
        term.send(KEY_BYTES["down"])  # the source list has the focus: the CD-ROM (/dev/sr0 filled in)
        term.send(KEY_BYTES["space"])
        term.wait_for("▐●▌ The host's CD-ROM", timeout=15)
        term.send(KEY_BYTES["ctrl+n"])
        term.wait_for("step 2 of", timeout=15)
        term.send(KEY_BYTES["ctrl+r"])
        term.wait_for("step 1 of", timeout=15)
        term.send(KEY_BYTES["alt+f"])  # what Alt+F sends: Textual reads ESC f as Ctrl+Right, never Next
        term.send(KEY_BYTES["ctrl+s"])
        term.wait_for("Save the answers", timeout=15)
        term.send("\t\t\r")  # the dialog's Cancel button
        term.wait_for(lambda t: "Save the answers" not in t, timeout=15)
        assert "step 1 of" in term.text()  # still step 1: Alt+F did not move on
        term.send(KEY_BYTES["f2"])
        term.wait_for("Preview", timeout=15)
        if where == "screen":
            # GNU screen 4.09 never lets a lone Esc through to Textual (any screen of
            # vmtui, not only the wizard; tmux and a plain terminal do): stop here
            return
        term.send(KEY_BYTES["escape"])
        term.wait_for("step 1 of", timeout=15)
        term.send(KEY_BYTES["escape"])  # an answer was given (the CD-ROM): it asks first
        term.wait_for("Throw away the answers", timeout=15)
        term.send("y")
        term.wait_for(lambda t: "New VM" not in t and "running" in t, timeout=15)
    finally:
        _close(term)


# --- 80x24: every step fits or scrolls to the focused field --------------------------


def _fully_visible(widget, step) -> bool:
    r, s = widget.region, step.region
    return r.height > 0 and r.y >= s.y and r.bottom <= s.bottom


async def _tab_through(app, pilot, wiz) -> list[str]:
    """Tab through the step's fields: each focused one (with its label) shows."""
    step = wiz.steps[wiz.index]
    seen, hidden = [], []
    for _ in range(25):
        await pilot.press("tab")
        await pilot.pause()
        await pilot.pause()
        f = app.focused
        if f is None or step not in f.ancestors:
            continue
        if f.id in seen:
            break
        seen.append(f.id)
        group = step.field_group(f)
        if not all(_fully_visible(w, step) for w in group):
            hidden.append(f"{f.id} at {f.region} (step {step.region})")
    return hidden


@pytest.mark.parametrize("net", ["net:default", "bridge:", "macvtap:"])
async def test_every_step_fits_or_scrolls_at_80x24(tmp_path, net):
    app = make_app(wizard_host(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        wiz = await open_wizard(app, pilot)
        hidden: list[str] = []
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        hidden += await _tab_through(app, pilot, wiz)
        await next_step(wiz, pilot)
        await choose_os(wiz, pilot, "generic linux", wiz.ctx.osdb.search("generic linux")[0].short_id)
        hidden += await _tab_through(app, pilot, wiz)
        await next_step(wiz, pilot)
        hidden += await _tab_through(app, pilot, wiz)
        await next_step(wiz, pilot)
        assert wiz.index == 3
        # the thick option, the warnings and the volume name: reached and shown
        wiz.query_one("#vol-thick", RadioButton).value = True
        await set_input(wiz, pilot, "#vol-size", "500G")
        hidden += await _tab_through(app, pilot, wiz)
        wiz.query_one("#vol-size", Input).focus()
        await pilot.pause()
        await pilot.pause()
        step = wiz.steps[3]
        assert _fully_visible(wiz.query_one("#vol-warning"), step)  # the warning under the size shows with it
        await set_input(wiz, pilot, "#vol-size", "1G")
        wiz.query_one("#vol-thin", RadioButton).value = True
        await next_step(wiz, pilot)
        assert isinstance(wiz.steps[wiz.index], FinishStep)
        await choose(wiz, pilot, "#net-source", net)
        if net == "bridge:":
            await set_input(wiz, pilot, "#bridge", "br0")
        elif net == "macvtap:":
            await set_input(wiz, pilot, "#macvtap-dev", "eth0")
        hidden += await _tab_through(app, pilot, wiz)
        assert not hidden, hidden
        # an error below the fold: Next focuses its field and scrolls to it
        await set_input(wiz, pilot, "#mac", "zz")
        wiz.query_one("#name", Input).focus()
        await pilot.pause()
        await next_step(wiz, pilot)
        await pilot.pause()
        await pilot.pause()
        assert app.focused is wiz.query_one("#mac", Input)
        assert _fully_visible(wiz.query_one("#err-nics-0-mac"), wiz.steps[wiz.index])


# --- volumes made after the wizard opened ------------------------------------------------


async def test_volume_made_after_the_wizard_opened_is_found(small_uri):
    from vmtui.core import storage

    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        assert "late.iso" not in wiz.ctx.pool_volumes["default"]
        await app.service.call(lambda c: storage.create_volume(c, "default", "late.iso", 64 * 1024 ** 2, "raw",
                                                               "thin"), action="create", obj="late.iso")
        await app.service.call(lambda c: storage.create_volume(c, "default", "late-disk.qcow2", GiB, "qcow2",
                                                               "thin"), action="create", obj="late-disk")
        await set_input(wiz, pilot, "#iso", "default/late.iso")
        await next_step(wiz, pilot)
        await wait_for(lambda: wiz.index == 1, what=f"the new ISO accepted {shown_errors(wiz)}")
        assert "late.iso" in wiz.ctx.pool_volumes["default"] and "default/late.iso" in wiz.ctx.iso_volumes
        await next_step(wiz, pilot)
        await next_step(wiz, pilot)
        assert wiz.index == 3
        wiz.query_one("#disk-existing", RadioButton).value = True
        await pilot.pause()
        await set_input(wiz, pilot, "#disk-path", "default/late-disk.qcow2")
        await next_step(wiz, pilot)
        await wait_for(lambda: isinstance(wiz.steps[wiz.index], FinishStep), what=f"the disk {shown_errors(wiz)}")
        # a volume that really is not there still says so
        await pilot.press("ctrl+r")
        await pilot.pause()
        await set_input(wiz, pilot, "#disk-path", "default/never.qcow2")
        await next_step(wiz, pilot)
        await pilot.pause()
        assert "has no volume named 'never.qcow2'" in error_of(wiz, "disks[0].path")


# --- bridge and macvtap: listed from the host, checked before Finish ------------------


async def test_bridge_and_macvtap_sources_are_listed_and_checked(tmp_path):
    app = make_app(wizard_host(tmp_path))
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await to_finish(wiz, pilot, name="br-vm")
        await choose(wiz, pilot, "#net-source", "bridge:")
        assert str(wiz.query_one("#bridge-list").content) == "Bridges on this host: br0"
        await set_input(wiz, pilot, "#bridge", "br9")
        await next_step(wiz, pilot)
        await pilot.pause()
        assert isinstance(app.screen, NewVmWizard)  # not created: it would fail at start ("interface MTU")
        assert error_of(wiz, "nics[0].bridge").startswith("The host has no bridge named 'br9' (its bridges: br0)")
        await set_input(wiz, pilot, "#bridge", "eth0")
        assert "not a bridge" in error_of(wiz, "nics[0].bridge")
        await set_input(wiz, pilot, "#bridge", "br0")
        assert not error_of(wiz, "nics[0].bridge")
        await choose(wiz, pilot, "#net-source", "macvtap:")
        assert str(wiz.query_one("#iface-list").content) == "On this host: eth0 (ethernet)"
        await set_input(wiz, pilot, "#macvtap-dev", "eth7")
        await next_step(wiz, pilot)
        await pilot.pause()
        assert error_of(wiz, "nics[0].dev").startswith("The host has no interface named 'eth7'")
        await set_input(wiz, pilot, "#macvtap-dev", "eth0")
        await next_step(wiz, pilot)
        await wait_for(lambda: any(d.name == "br-vm" for d in app.table.domains.values()), timeout=30,
                       what="created")
        final = await domain_xml(app, "br-vm", 2)
        iface = final.find("devices/interface")
        assert iface.get("type") == "direct" and iface.find("source").get("dev") == "eth0"


# --- OS search: no match, no choice --------------------------------------------------


async def test_os_search_without_a_match_leaves_no_os_chosen(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        await next_step(wiz, pilot)
        fedora = wiz.ctx.osdb.search("fedora")[0].short_id
        await choose_os(wiz, pilot, "fedora", fedora)
        await set_input(wiz, pilot, "#os-search", "fedora 39 qqqzzz")
        assert wiz.query_one("#os-list", OptionList).option_count == 0
        assert wiz.spec.os == "" and wiz.os_info is None  # before: the previous choice stayed
        assert "no OS is chosen" in str(wiz.query_one("#os-chosen").content)
        await next_step(wiz, pilot)
        assert wiz.index == 1 and "Choose an operating system" in error_of(wiz, "os")
        await set_input(wiz, pilot, "#os-search", "fedora")
        await pilot.pause()
        assert wiz.spec.os and not error_of(wiz, "os")  # a match chooses again; the message goes


# --- Esc asks first when anything was entered ---------------------------------------------


async def test_esc_asks_before_throwing_answers_away(small_uri):
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_wizard(app, pilot)
        await pilot.press("escape")  # nothing entered: closes at once
        await pilot.pause()
        assert app.screen is app.list_screen
        wiz = await open_wizard(app, pilot)
        await set_input(wiz, pilot, "#iso", "default/install.iso")
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is wiz and wiz.query_one("#iso", Input).value == "default/install.iso"
        await next_step(wiz, pilot)  # on another step, answers saved: still asks
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="the question again")
        await pilot.press("y")
        await wait_for(lambda: app.screen is app.list_screen, what="closed")
        assert app.table.row_count == 5


# --- on and off without colour ---------------------------------------------------------


async def test_radio_buttons_and_checkboxes_differ_without_colour(small_uri, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(small_uri)
    async with app.run_test(size=(100, 40)) as pilot:
        wiz = await open_wizard(app, pilot)
        assert app.no_color
        on = wiz.query_one("#src-iso", RadioButton)
        off = wiz.query_one("#src-pxe", RadioButton)
        assert on.render().plain.startswith("▐●▌") and off.render().plain.startswith("▐ ▌")
        await choose_source(wiz, pilot, "pxe")
        assert on.render().plain.startswith("▐ ▌") and off.render().plain.startswith("▐●▌")
        await choose_source(wiz, pilot, "cloud")
        box = wiz.query_one("#cloudinit-detach", Checkbox)
        assert box.render().plain.startswith("▐ ▌")
        box.value = True
        await pilot.pause()
        assert box.render().plain.startswith("▐X▌")


def test_every_screen_uses_the_toggles_told_apart_without_colour():
    pattern = re.compile(r"from textual\.widgets import [^\n]*\b(Checkbox|RadioButton)\b")
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "vmtui" / "ui").rglob("*.py")
                 if p.name != "toggles.py" and pattern.search(p.read_text())]
    assert not offenders, f"import Checkbox/RadioButton from vmtui.ui.toggles: {offenders}"


def test_toggles_differ_on_a_vt100_without_colour():
    term = _vmtui_in(None, 100, 30, env={"NO_COLOR": "1", "TERM": "vt100"})
    try:
        term.wait_for("running", timeout=60)
        term.send("n")
        term.wait_for("Type a path", timeout=30)
        lines = term.text().splitlines()
        iso = next(line for line in lines if "Local install media" in line)
        pxe = next(line for line in lines if "PXE boot" in line)
        assert "▐●▌" in iso and "▐ ▌" in pxe, (iso, pxe)
    finally:
        _close(term)


# --- the list's footer says Resume on a paused VM ----------------------------------------


async def test_footer_says_resume_on_a_paused_vm(small_uri):
    from textual.widgets._footer import FooterKey

    from .conftest import ALPHA, CHARLIE

    app = make_app(small_uri)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(lambda: app.ready and app.table.row_count > 0, what="list")

        def labels() -> list[str]:
            return [k.description for k in app.list_screen.query(FooterKey)]

        app.table.select(CHARLIE)  # paused
        await wait_for(lambda: "Resume" in labels(), what=f"Resume in {labels()}")
        assert "Pause" not in labels()
        assert app.list_screen.active_bindings["p"].binding.description == "Resume"
        app.table.select(ALPHA)  # running
        await wait_for(lambda: "Pause" in labels(), what=f"Pause in {labels()}")
        assert "Resume" not in labels()
