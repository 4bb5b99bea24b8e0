"""The seam between the UI and libvirt: the typed core functions the screens
call through the service, typed errors for the codes the UI cares about, and
``LibvirtService.run_long`` for long operations (progress, cancel, limits,
reconnect). Test driver connections (tests/data/host-small.xml)."""

from __future__ import annotations

import asyncio
import errno
import threading

import libvirt
import pytest

from vmtui.core.consoles import graphics
from vmtui.core.host import inventory
from vmtui.core import storage
from vmtui.core.clones import templates
from vmtui.core.errors import CallTimeout, Disconnected, InvalidState, Unsupported, VmtuiError, from_libvirt
from vmtui.core.provision import seed
from vmtui.core.connection.service import ConnectionChanged, ConnState, LibvirtService

from .conftest import ALPHA, ECHO, wait_for


class FakeError(libvirt.libvirtError):
    def __init__(self, msg, code):
        Exception.__init__(self, msg)
        self.err = (code, 0, msg, 0, "", None, None, 0, 0)


# --- typed errors ---------------------------------------------------------------


def test_error_codes_the_ui_needs_are_types():
    e = from_libvirt("take a screenshot of", "domain 'x'",
                     FakeError("this function is not supported by the connection driver: virDomainScreenshot",
                               libvirt.VIR_ERR_NO_SUPPORT))
    assert isinstance(e, Unsupported) and isinstance(e, VmtuiError)
    assert e.message.startswith("Cannot take a screenshot of domain 'x': this function is not supported")
    assert isinstance(from_libvirt("a", "b", FakeError("x", libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED)), Unsupported)
    e = from_libvirt("take a screenshot of", "domain 'x'",
                     FakeError("Requested operation is not valid: domain is not running",
                               libvirt.VIR_ERR_OPERATION_INVALID))
    assert isinstance(e, InvalidState) and e.not_running
    plain = from_libvirt("a", "b", FakeError("boom", libvirt.VIR_ERR_INTERNAL_ERROR))
    assert type(plain) is VmtuiError


async def test_service_raises_the_typed_error(service):
    with pytest.raises(Unsupported) as info:  # the test driver has no host memory statistics
        await service.call(lambda c: c.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS),
                           action="read host memory of", obj="the host")
    assert info.value.message.startswith("Cannot read host memory of the host: this function is not supported")


# --- core functions by UUID / name ------------------------------------------------------


async def test_displays_keys_and_text_by_uuid(service):
    (d,) = await service.call(lambda c: graphics.displays_of(c, ALPHA))
    assert isinstance(d, graphics.Display)
    assert [d] == await service.call(lambda c: graphics.read_displays(c.lookupByUUIDString(ALPHA)))
    await service.call(lambda c: graphics.send_combo_to(c, ALPHA, [graphics.KEY_LEFTCTRL, graphics.KEY_ESC]))
    sent = await service.call(lambda c: graphics.type_text_into(c, ALPHA, graphics.keycodes_for_text("ls"),
                                                                holdtime=0))
    assert sent == 2


async def test_template_functions_by_uuid(service):
    meta = await service.call(lambda c: templates.set_marked_by_uuid(c, ECHO, True))
    assert meta.marked
    assert (await service.call(lambda c: templates.meta_by_uuid(c, ECHO))).marked
    assert templates.is_template_xml(await service.domain_xml(ECHO, inactive=True))
    meta = await service.call(lambda c: templates.record_preparation(c, ECHO, "firstboot", ["machine-id"],
                                                                    "#cloud-config\n", mark=False))
    assert meta.method == "firstboot" and meta.items == ["machine-id"] and meta.marked
    again = await service.call(lambda c: templates.meta_by_uuid(c, ECHO))
    assert again.method == "firstboot" and again.firstboot == "#cloud-config\n"


async def test_preparing_a_running_vm_is_refused(service):
    with pytest.raises(VmtuiError) as info:
        await service.call(lambda c: templates.record_preparation(c, ALPHA, "firstboot", ["machine-id"]))
    assert info.value.message == "Cannot prepare domain 'alpha': it is running: shut it off first"
    with pytest.raises(VmtuiError) as info:
        await service.call(lambda c: templates.sysprep_disks(c, ALPHA))
    assert "it is running" in info.value.message
    assert not (await service.call(lambda c: templates.meta_by_uuid(c, ALPHA))).method


async def test_sysprep_disks_and_the_linked_clone_rule(service):
    paths = await service.call(lambda c: templates.sysprep_disks(c, ECHO))
    assert paths == ["/var/lib/libvirt/images/echo.qcow2"]  # the CD-ROM is not an image to prepare
    # a linked clone's overlay on echo's disk: sysprep would corrupt it
    await service.call(lambda c: storage.create_volume(c, "default", "echo-clone.qcow2", 8 * 1024 ** 3,
                                                       backing="/var/lib/libvirt/images/echo.qcow2",
                                                       backing_format="qcow2"))
    with pytest.raises(VmtuiError) as info:
        await service.call(lambda c: templates.sysprep_disks(c, ECHO), action="read the disks of",
                           obj="domain 'echo'")
    assert "backing files of linked clones (default/echo-clone.qcow2)" in info.value.message


async def test_seed_pools_prefer_the_pool_of_the_first_disk(service):
    where = await service.call(lambda c: seed.seed_pools(c, "echo"))
    assert isinstance(where, seed.SeedPools)
    assert where.pools == ["default"] and where.default == "default"
    with pytest.raises(VmtuiError) as info:
        await service.call(lambda c: seed.seed_pools(c, "nope"), action="read the storage pools for",
                           obj="domain 'nope'")
    assert info.value.message.startswith("Cannot read the storage pools for domain 'nope': ")


async def test_inventory(service):
    inv = await service.call(inventory.read_inventory)
    assert [p.name for p in inv.pools] == ["default"]
    assert inv.iso_volumes == ["default/install.iso"]
    assert "default/echo.qcow2" in inv.image_volumes and "default/install.iso" not in inv.image_volumes
    assert "echo.qcow2" in inv.volume_names()["default"]
    assert inv.network_names == ["default"]
    only = await service.call(inventory.read_storage)
    assert only.networks == [] and only.interfaces == [] and len(only.all_volumes) == len(inv.all_volumes)


# --- run_long ---------------------------------------------------------------------


async def test_run_long_delivers_progress_on_the_loop_in_order(service):
    loop_thread = threading.get_ident()
    seen: list[tuple] = []

    def work(conn, progress, cancel):
        assert threading.get_ident() != loop_thread
        for i in range(50):
            progress(f"step {i}", i / 50)
        return conn.getHostname()

    def shown(message, fraction):
        assert threading.get_ident() == loop_thread
        seen.append((message, fraction))

    result = await service.run_long(work, progress=shown, action="test", obj="x")
    assert result == await service.call(lambda c: c.getHostname())
    assert seen == [(f"step {i}", i / 50) for i in range(50)]  # all of them, before the result


async def test_run_long_cancel_is_honoured(service):
    cancel = threading.Event()
    started = threading.Event()

    def work(conn, progress, cancel):
        started.set()
        while not cancel.wait(0.01):
            progress("working")
        raise VmtuiError("import", "'x'", "cancelled")

    task = asyncio.ensure_future(service.run_long(work, cancel=cancel, action="import", obj="'x'"))
    await asyncio.to_thread(started.wait, 10)
    cancel.set()  # what the screen's Esc does
    with pytest.raises(VmtuiError) as info:
        await task
    assert info.value.message == "Cannot import 'x': cancelled"


async def test_cancelling_the_waiting_task_stops_the_work(service):
    started, stopped = threading.Event(), threading.Event()

    def work(conn, progress, cancel):
        started.set()
        cancel.wait(60)
        stopped.set()

    task = asyncio.ensure_future(service.run_long(work, action="upload", obj="x"))
    await asyncio.to_thread(started.wait, 10)
    task.cancel()  # the screen closed: its worker is cancelled
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(stopped.wait, 10)


async def test_run_long_stall_ends_it_with_a_readable_error(service):
    seen_cancel = threading.Event()

    def work(conn, progress, cancel):
        progress("started")
        if cancel.wait(60):  # hung: reports nothing more
            seen_cancel.set()

    with pytest.raises(CallTimeout) as info:
        await service.run_long(work, progress=lambda *a: None, action="import the disks of", obj="'appliance'",
                               stall=0.3)
    assert info.value.message == "Cannot import the disks of 'appliance': no progress for 0.3 s: stopped"
    assert await asyncio.to_thread(seen_cancel.wait, 10)  # the work was told to stop
    assert await service.call(lambda c: c.getHostname())  # the service still works


async def test_run_long_overall_limit(service):
    def work(conn, progress, cancel):
        while not cancel.wait(0.01):
            progress()  # reports, but never ends

    with pytest.raises(CallTimeout) as info:
        await service.run_long(work, action="export", obj="domain 'x'", timeout=0.3, stall=None)
    assert info.value.message == "Cannot export domain 'x': not done within 0.3 s: stopped"


async def test_run_long_maps_errors(service):
    def missing_file(conn, progress, cancel):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/nope/a.ova")

    with pytest.raises(VmtuiError) as info:
        await service.run_long(missing_file, action="read", obj="a.ova")
    assert info.value.message == "Cannot read a.ova: /nope/a.ova: No such file or directory"

    def libvirt_says_no(conn, progress, cancel):
        conn.lookupByName("nope")

    with pytest.raises(VmtuiError) as info:
        await service.run_long(libvirt_says_no, action="export", obj="domain 'nope'")
    assert info.value.message.startswith("Cannot export domain 'nope': ")
    assert "not found" in info.value.cause.lower()


async def test_lost_connection_during_a_long_operation_starts_the_reconnect(small_uri):
    svc = LibvirtService(small_uri, stats_interval=3600, reconnect=True)
    heard: list[ConnectionChanged] = []
    svc.subscribe(lambda m: heard.append(m) if isinstance(m, ConnectionChanged) else None)
    await svc.connect()
    try:
        def work(conn, progress, cancel):
            progress("converting", 0.5)
            raise FakeError("internal error: client socket is closed", libvirt.VIR_ERR_INTERNAL_ERROR)

        with pytest.raises(VmtuiError) as info:
            await svc.run_long(work, progress=lambda *a: None, action="import the disks of", obj="'x'")
        assert info.value.message == (f"Cannot import the disks of 'x': connection to {small_uri} lost "
                                      "(internal error: client socket is closed)")
        assert any(m.state is not ConnState.CONNECTED and "connection lost" in m.message for m in heard)
        await wait_for(lambda: svc.state is ConnState.CONNECTED, timeout=20, what="reconnect")
    finally:
        await svc.close()


async def test_run_long_when_disconnected():
    svc = LibvirtService("test:///default", reconnect=False)
    with pytest.raises(Disconnected):
        await svc.run_long(lambda conn, progress, cancel: None, action="upload", obj="x")
