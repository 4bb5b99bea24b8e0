"""The settings screen (e on the list or the details screen) on libvirt's test
driver: every section edited through the keyboard and forms, checked in the
XML libvirt holds afterwards; the message under a field while it is wrong;
what applies now and what at the next boot of a running VM; the pending
line; and a domain full of devices vmtui does not model keeps them all.

The core underneath: tests/test_edit.py. A real running guest:
tests/real/test_real_settings.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest
from textual.widgets import Checkbox, Input, Select, Static, TextArea

from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.dialogs import ConfirmDialog
from vmtui.ui.forms import field_id
from vmtui.ui.settings import SECTIONS, SettingsScreen
from vmtui.ui.settings.general import BootList
from vmtui.ui.settings.nics import NicDialog, NicTable
from vmtui.ui.settings.screen import SectionList

from .conftest import ALPHA, BRAVO, SMALL_HOST, host_uri, press_button, wait_for
from .notes import Notes
from .test_edit import KEEPER, KEEPER_XML, unmodelled

INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def make_app() -> VmtuiApp:
    return VmtuiApp(LibvirtService(host_uri(SMALL_HOST), stats_interval=3600, reconnect=False), Config())


async def config_xml(app, uuid: str, flags: int = INACTIVE) -> ET.Element:
    xml = await app.service.call(lambda c: c.lookupByUUIDString(uuid).XMLDesc(flags))
    return ET.fromstring(xml)


async def open_settings(pilot, uuid: str, section: str | None = None) -> SettingsScreen:
    app = pilot.app
    await wait_for(lambda: app.ready and app.table.row_count >= 5, what="list")
    await app.service.wait_loaded()
    app.table.select(uuid)
    await pilot.pause()
    await pilot.press("e")
    await wait_for(lambda: isinstance(app.screen, SettingsScreen) and app.screen.state is not None,
                   what="settings screen")
    screen = app.screen
    if section:
        await go_to(pilot, section)
    return screen


async def go_to(pilot, section: str) -> None:
    """Highlight ``section`` in the list with the arrow keys, then Enter."""
    screen = pilot.app.screen
    keys = [k for k, _ in SECTIONS]
    sections = screen.query_one(SectionList)
    sections.focus()
    await pilot.pause()
    while sections.highlighted != keys.index(section):
        await pilot.press("down" if sections.highlighted < keys.index(section) else "up")
    await pilot.press("enter")
    await pilot.pause()
    assert screen.current.id == f"pane-{section}"


async def apply_and_wait(pilot, section: str) -> str:
    """Ctrl+S, and the pane's status once the save is done and the VM read again."""
    screen = pilot.app.screen
    pane = screen.panes[section]
    status = pane.query_one(f"#pane-{section}-status", Static)
    await pilot.press("ctrl+s")
    await wait_for(lambda: str(status.content) not in ("", "Saving…") and not pane.dirty, what=f"{section} saved")
    await wait_for(lambda: not screen.workers or all(w.is_finished for w in screen.workers), what="reload")
    await pilot.pause()
    return str(status.content)


def error_under(screen, field: str) -> str:
    w = screen.query_one(f"#{field_id(field)}", Static)
    return str(w.content) if w.display else ""


# ---------------------------------------------------------------------------
# getting there
# ---------------------------------------------------------------------------


async def test_e_opens_the_settings_from_the_list_and_from_the_details():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, BRAVO)
        assert "bravo (shut off)" in str(screen.query_one("#settings-title", Static).content)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, SettingsScreen), what="back to the list")
        await pilot.press("enter")
        await wait_for(lambda: type(app.screen).__name__ == "DetailsScreen", what="details")
        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, SettingsScreen) and app.screen.state is not None,
                       what="settings from the details")
        await pilot.press("escape")
        await wait_for(lambda: type(app.screen).__name__ == "DetailsScreen", what="back to the details")


# ---------------------------------------------------------------------------
# each section
# ---------------------------------------------------------------------------


async def test_overview_changes_title_and_description_live_too_and_autostart():
    app = make_app()
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes.hook) as pilot:
        screen = await open_settings(pilot, ALPHA, "overview")
        assert screen.query_one("#ov-firmware", Select).disabled  # running: shut off only
        await pilot.press("ctrl+a", "ctrl+k", *"Front end")  # the title field has the focus
        screen.query_one("#ov-description", TextArea).load_text("nginx\nand php")
        screen.query_one("#ov-autostart", Checkbox).value = True
        status = await apply_and_wait(pilot, "overview")
        assert "Now: Title 'Front end'; Description changed; Autostart on" in status
        root = await config_xml(app, ALPHA)
        assert root.findtext("title") == "Front end" and root.findtext("description") == "nginx\nand php"
        live = await config_xml(app, ALPHA, 0)
        assert live.findtext("title") == "Front end"
        assert await app.service.call(lambda c: c.lookupByUUIDString(ALPHA).autostart()) == 1
        assert notes.has("Applied now: Title 'Front end'")


async def test_firmware_changes_while_shut_off_with_a_warning():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, BRAVO, "overview")
        screen.query_one("#ov-firmware", Select).value = "efi"
        await pilot.pause()
        assert error_under(screen, "firmware").startswith("warning: An installed OS usually boots only")
        status = await apply_and_wait(pilot, "overview")
        assert "Saved: Firmware UEFI" in status
        assert (await config_xml(app, BRAVO)).find("os").get("firmware") == "efi"


async def test_cpus_say_what_is_wrong_under_the_field_and_save_nothing_until_fixed():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, BRAVO, "cpus")
        before = ET.tostring(await config_xml(app, BRAVO))
        screen.query_one("#cpus-maximum", Input).value = "4"
        screen.query_one("#cpus-sockets", Input).value = "1"
        screen.query_one("#cpus-cores", Input).value = "2"
        screen.query_one("#cpus-threads", Input).value = "1"
        await pilot.pause()
        assert error_under(screen, "cpus.topology") == \
            "1 sockets × 2 cores × 1 threads is 2, not the maximum of 4 vCPUs"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Fix the fields marked above first." in str(screen.query_one("#pane-cpus-status", Static).content)
        assert ET.tostring(await config_xml(app, BRAVO)) == before
        screen.query_one("#cpus-threads", Input).value = "2"
        screen.query_one("#cpus-mode", Select).value = "custom"
        screen.query_one("#cpus-model", Input).value = "qemu64"
        await pilot.pause()
        assert error_under(screen, "cpus.topology") == ""
        status = await apply_and_wait(pilot, "cpus")
        assert status.startswith("Saved: Maximum vCPUs 4; CPU qemu64; Topology 1 sockets × 2 cores × 2 threads")
        root = await config_xml(app, BRAVO)
        assert root.find("vcpu").text == "4" and root.find("vcpu").get("current") == "2"
        assert root.find("cpu").get("mode") == "custom" and root.findtext("cpu/model") == "qemu64"
        assert root.find("cpu/topology").get("cores") == "2"


async def test_memory_of_a_running_vm_without_balloon_waits_and_the_pending_line_says_so():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, ALPHA, "memory")
        assert str(screen.query_one("#settings-pending", Static).content) == "No changes wait for the next boot."
        screen.query_one("#memory-current", Input).value = "512M"
        await pilot.pause()
        assert error_under(screen, "memory.current").startswith("warning: The VM has no balloon device")
        screen.query_one("#memory-maximum", Input).value = "lots"
        await pilot.pause()
        assert error_under(screen, "memory.maximum").startswith("'lots' is not a size")
        screen.query_one("#memory-maximum", Input).value = "2G"
        status = await apply_and_wait(pilot, "memory")
        assert "At next boot: Maximum memory 2G (the maximum is fixed while the VM runs); Memory 512M (the " \
               "running VM has no balloon device)" in status
        root = await config_xml(app, ALPHA)
        assert root.find("memory").text == "2097152" and root.find("currentMemory").text == "524288"  # KiB
        pending = str(screen.query_one("#settings-pending", Static).content)
        assert pending == ("Pending at next boot: Memory: 1.0 GiB now, 512.0 MiB at next boot; "
                           "Maximum memory: 1.0 GiB now, 2.0 GiB at next boot")


async def test_boot_order_menu_and_kernel_through_the_keyboard():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, BRAVO, "boot")
        boot = screen.query_one(BootList)
        assert screen.focused is boot
        await pilot.press("down", "space", "u")  # CD-ROM on, first
        assert [(e.key, e.enabled) for e in boot.entries][:2] == [("cdrom", True), ("hd", True)]
        await pilot.press("space", "down", "space")  # both off: nothing to boot from
        await pilot.pause()
        assert error_under(screen, "boot.order").startswith("Choose at least one device to boot from")
        await pilot.press("space", "up", "space")
        screen.query_one("#boot-menu", Checkbox).value = True
        screen.query_one("#boot-timeout", Input).value = "3000"
        screen.query_one("#boot-cmdline", Input).value = "console=ttyS0"
        await pilot.pause()
        assert error_under(screen, "boot.cmdline") == "Kernel arguments need a kernel (direct kernel boot)"
        screen.query_one("#boot-kernel", Input).value = "/var/lib/libvirt/boot/vmlinuz"
        status = await apply_and_wait(pilot, "boot")
        assert "Saved: Boot order CD-ROM, Hard disk; Boot menu on, 3000 ms; Kernel" in status
        root = await config_xml(app, BRAVO)
        assert [b.get("dev") for b in root.findall("os/boot")] == ["cdrom", "hd"]
        assert root.find("os/bootmenu").attrib == {"enable": "yes", "timeout": "3000"}
        assert root.findtext("os/kernel") == "/var/lib/libvirt/boot/vmlinuz"
        assert root.findtext("os/cmdline") == "console=ttyS0"


async def test_nics_add_edit_link_and_remove():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, BRAVO, "nics")
        table = screen.query_one(NicTable)
        assert screen.focused is table and table.row_count == 1
        # add
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, NicDialog), what="NIC dialog")
        dialog = app.screen
        assert dialog.query_one("#nic-source", Select).value == "default"
        dialog.query_one("#nic-mac", Input).value = "01:02:03:04:05:06"
        await pilot.pause()
        assert error_under(dialog, "nic.mac").startswith("This is a multicast address")
        dialog.query_one("#nic-mac", Input).value = "52:54:00:12:34:56"
        dialog.query_one("#nic-model", Select).value = "e1000e"
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, SettingsScreen) and table.row_count == 2, what="added")
        nics = (await config_xml(app, BRAVO)).findall("devices/interface")
        assert [(n.find("mac").get("address"), n.find("model").get("type")) for n in nics] == [
            ("52:54:00:00:00:02", "virtio"), ("52:54:00:12:34:56", "e1000e")]
        # link down
        table.move_cursor(row=1)
        await pilot.press("l")
        await wait_for(lambda: str(table.get_row_at(1)[3]) == "down", what="link down")
        nic = (await config_xml(app, BRAVO)).findall("devices/interface")[1]
        assert nic.find("link").get("state") == "down"
        # edit: another model
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, NicDialog), what="edit dialog")
        app.screen.query_one("#nic-model", Select).value = "rtl8139"
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, SettingsScreen) and str(table.get_row_at(1)[2]) == "rtl8139",
                       what="edited")
        nic = (await config_xml(app, BRAVO)).findall("devices/interface")[1]
        assert nic.find("model").get("type") == "rtl8139" and nic.find("link").get("state") == "down"
        # remove, after confirming
        await pilot.press("r")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="confirm")
        await pilot.press("y")
        await wait_for(lambda: table.row_count == 1, what="removed")
        assert len((await config_xml(app, BRAVO)).findall("devices/interface")) == 1


async def test_a_new_nic_on_a_running_vm_waits_when_libvirt_cannot_plug_it():
    app = make_app()
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes.hook) as pilot:
        screen = await open_settings(pilot, ALPHA, "nics")
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, NicDialog), what="NIC dialog")
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, SettingsScreen) and screen.query_one(NicTable).row_count == 2,
                       what="added")
        await wait_for(lambda: notes.has("At the next boot of 'alpha': New NIC"), what="told")
        assert notes.find("At the next boot of 'alpha'").count("not live: this function is not supported") == 1
        assert notes.severity_of("At the next boot of 'alpha'") == "warning"
        table = screen.query_one(NicTable)
        await wait_for(lambda: str(table.get_row_at(1)[4]) == "next boot", what="marked next boot")
        assert "NIC 52:54:00:" in str(screen.query_one("#settings-pending", Static).content)


async def test_display_serial_agent_tpm_rng():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, BRAVO, "display")
        screen.query_one("#display-graphics", Select).value = "spice"
        screen.query_one("#display-listen", Input).value = "localhost"
        await pilot.pause()
        assert error_under(screen, "display.listen") == "Enter an IP address to listen on, e.g. 127.0.0.1"
        screen.query_one("#display-listen", Input).value = "127.0.0.1"
        screen.query_one("#display-video", Select).value = "qxl"
        status = await apply_and_wait(pilot, "display")
        assert status.startswith("Saved: Display SPICE on 127.0.0.1; Video qxl")

        await go_to(pilot, "serial")
        await pilot.press("a")
        await wait_for(lambda: len(screen.state.settings.serials) == 2, what="serial added")
        await pilot.press("down", "r")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="confirm")
        await pilot.press("y")
        await wait_for(lambda: len(screen.state.settings.serials) == 1, what="serial removed")

        await go_to(pilot, "agent")
        await pilot.press("space")  # the checkbox has the focus
        await apply_and_wait(pilot, "agent")
        await go_to(pilot, "tpm")
        screen.query_one("#tpm-model", Select).value = "tpm-crb"
        await apply_and_wait(pilot, "tpm")
        await go_to(pilot, "rng")
        await pilot.press("space")
        await apply_and_wait(pilot, "rng")

        root = await config_xml(app, BRAVO)
        devices = root.find("devices")
        assert devices.find("graphics").get("type") == "spice"
        assert devices.find("video/model").get("type") == "qxl"
        assert [s.find("target").get("port") for s in devices.findall("serial")] == ["0"]
        assert devices.find("channel/target").get("name") == "org.qemu.guest_agent.0"
        assert devices.find("tpm").get("model") == "tpm-crb"
        assert devices.find("tpm/backend").attrib == {"type": "emulator", "version": "2.0"}
        assert devices.findtext("rng/backend") == "/dev/urandom"


async def test_every_section_keeps_the_devices_vmtui_does_not_model():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.ready, what="list")
        await app.service.call(lambda c: c.defineXML(KEEPER_XML))
        await wait_for(lambda: app.table.row_count == 6, what="keeper listed")
        before = unmodelled(ET.tostring(await config_xml(app, KEEPER), encoding="unicode"))
        screen = await open_settings(pilot, KEEPER, "overview")
        screen.query_one("#ov-title", Input).value = "Still keeps it"
        await apply_and_wait(pilot, "overview")
        await go_to(pilot, "cpus")
        screen.query_one("#cpus-maximum", Input).value = "4"
        await apply_and_wait(pilot, "cpus")
        await go_to(pilot, "memory")
        screen.query_one("#memory-current", Input).value = "256M"
        await apply_and_wait(pilot, "memory")
        await go_to(pilot, "boot")
        await pilot.press("down", "space")
        await apply_and_wait(pilot, "boot")
        await go_to(pilot, "nics")
        await pilot.press("l")
        await wait_for(lambda: not screen.state.settings.nics[0].values.link_up, what="link down")
        await go_to(pilot, "display")
        screen.query_one("#display-port", Input).value = "5911"
        await apply_and_wait(pilot, "display")
        await go_to(pilot, "serial")
        await pilot.press("a")
        await wait_for(lambda: len(screen.state.settings.serials) == 2, what="serial added")
        for section in ("agent", "rng"):
            await go_to(pilot, section)
            await pilot.press("space")
            await apply_and_wait(pilot, section)
        await go_to(pilot, "tpm")
        screen.query_one("#tpm-model", Select).value = "tpm-tis"
        await apply_and_wait(pilot, "tpm")
        after = ET.tostring(await config_xml(app, KEEPER), encoding="unicode")
        assert unmodelled(after) == before
        s = screen.state.settings
        assert (s.overview.title, s.cpus.maximum, s.memory.current_mib, s.display.port) == (
            "Still keeps it", 4, 256, 5911)
        assert s.agent and s.rng.present and s.tpm.model == "tpm-tis" and s.boot.order == ["hd", "cdrom"]


async def test_a_libvirt_refusal_is_shown_and_changes_nothing(monkeypatch):
    app = make_app()
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes.hook) as pilot:
        screen = await open_settings(pilot, BRAVO, "memory")
        before = ET.tostring(await config_xml(app, BRAVO))

        def refuse(self, xml):
            libvirt.virResetLastError()
            raise libvirt.libvirtError("unsupported configuration: the memory is refused")

        monkeypatch.setattr(libvirt.virConnect, "defineXML", refuse)
        screen.query_one("#memory-current", Input).value = "1G"
        await pilot.press("ctrl+s")
        message = "Cannot change the memory of domain 'bravo': unsupported configuration: the memory is refused"
        await wait_for(lambda: notes.has(message), what="the refusal told")
        assert notes.severity_of(message) == "error"
        assert str(screen.query_one("#pane-memory-status", Static).content) == message
        assert screen.query_one("#memory-current", Input).value == "1G"  # kept for another try
        monkeypatch.undo()
        assert ET.tostring(await config_xml(app, BRAVO)) == before


# ---------------------------------------------------------------------------
# leaving, and the details screen
# ---------------------------------------------------------------------------


async def test_escape_asks_before_dropping_what_was_not_saved():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, BRAVO, "memory")
        screen.query_one("#memory-current", Input).value = "1G"
        await pilot.pause()
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), what="asked")
        assert "Leave without saving the changes to Memory?" in str(app.screen.question)
        await pilot.press("n")
        await wait_for(lambda: app.screen is screen, what="stayed")
        await pilot.press("ctrl+r")  # revert
        await pilot.pause()
        assert screen.query_one("#memory-current", Input).value == "2G"
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, SettingsScreen), what="left without asking")


async def test_details_screen_shows_the_pending_changes():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.ready, what="list")
        await app.service.call(lambda c: c.lookupByUUIDString(ALPHA).setMemoryFlags(
            2 * 1024 * 1024, libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_MEM_MAXIMUM))
        app.table.select(ALPHA)
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(lambda: type(app.screen).__name__ == "DetailsScreen", what="details")
        line = app.screen.query_one("#details-pending", Static)
        await wait_for(lambda: line.display, what="pending line")
        assert str(line.content) == ("Pending at next boot: Maximum memory: 1.0 GiB now, 2.0 GiB at next boot "
                                     "(e: settings)")


@pytest.mark.parametrize("size", [(80, 24)])
async def test_every_section_fits_and_has_its_keys_in_the_footer(size):
    """Each section at 80×24: its pane shows, and the keys that act on it are
    bound (Ctrl+S on the forms, the table's keys on the lists)."""
    app = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await open_settings(pilot, ALPHA)
        for key, cls in SECTIONS:
            await go_to(pilot, key)
            pane = screen.panes[key]
            assert pane.region.width > 40 and pane.region.height >= 18
            shown = {b.binding.key for b in screen.active_bindings.values() if b.binding.show and b.enabled}
            if pane.has_form:
                assert {"ctrl+s", "ctrl+r", "escape"} <= shown
            else:
                assert "a" in shown and "escape" in shown and "ctrl+s" not in shown


async def test_a_source_the_host_does_not_list_is_typed(monkeypatch):
    """A host that lists no bridge (a remote one without libvirt's interface
    driver): the bridge's name is typed instead of chosen."""
    from vmtui.core.host import networks

    monkeypatch.setattr(networks, "list_host_bridges", lambda conn: [])
    monkeypatch.setattr(networks, "list_host_interfaces", lambda conn: [])
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, BRAVO, "nics")
        assert screen.state.offers.bridges == [] and screen.state.offers.networks == ["default"]
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, NicDialog), what="NIC dialog")
        dialog = app.screen
        text = dialog.query_one("#nic-source-text", Input)
        assert not text.display and dialog.query_one("#nic-source", Select).display
        dialog.query_one("#nic-kind", Select).value = "bridge"
        await wait_for(lambda: text.display, what="a field to type the bridge in")
        assert not dialog.query_one("#nic-source", Select).display
        text.value = "br7"
        await press_button(pilot, "#ok")
        await wait_for(lambda: isinstance(app.screen, SettingsScreen) and screen.query_one(NicTable).row_count == 2,
                       what="added")
        nic = (await config_xml(app, BRAVO)).findall("devices/interface")[1]
        assert nic.get("type") == "bridge" and nic.find("source").get("bridge") == "br7"


async def test_the_screen_follows_the_vm_starting():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, BRAVO, "memory")
        assert not screen.state.settings.running
        await app.service.start(BRAVO)
        await wait_for(lambda: screen.state.settings.running, what="the screen to see it run")
        assert "bravo (running)" in str(screen.query_one("#settings-title", Static).content)
        assert str(screen.query_one("#pane-memory-hint", Static).content).startswith("Running with 2G")
