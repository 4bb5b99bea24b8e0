"""Issue 10.6: work done when a VM stops (emptying vmtui overlays) touches
only the VMs that have something to do, read from a per-domain flag; a VM
that is gone is not an error. A stop never removes a cloud-init seed (issue
12.8: only the vmtui that waits for cloud-init does, tests/test_guests.py)."""

from __future__ import annotations

import asyncio

import libvirt

from tests.notes import notes_of, run_noted
from vmtui.core.clones import templates
from vmtui.core.config import Config
from vmtui.core.connection.service import DomainEvent, LibvirtService
from vmtui.core.provision import seed
from vmtui.core.storage import disks
from vmtui.core.xml import ownmeta
from vmtui.ui.app import VmtuiApp

from .conftest import ALPHA, DELTA, ECHO, wait_for

BASE = """<domain type='kvm'>
  <name>x</name>
  <title>A title</title>
  <description>Some words</description>
  <metadata>
    <other:thing xmlns:other="http://example.org/other/1" marked="yes" detach_after_first_boot="yes"/>
  </metadata>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/images/x.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>"""

OVERLAY = disks.OverlayDisk("vda", "/images/x.qcow2", "qcow2", "/images/x.vda.nonpersistent.qcow2")


async def settle(service: LibvirtService, timeout: float = 5.0) -> None:
    """Wait until the service's background tasks (refreshes, resets) are done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while service.busy():
        assert loop.time() < deadline, "service tasks still running"
        await asyncio.sleep(0.02)


def spy(monkeypatch, module, name: str) -> list:
    calls: list = []
    real = getattr(module, name)

    def wrapper(conn, uuid, *a, **kw):
        calls.append(uuid)
        return real(conn, uuid, *a, **kw)

    monkeypatch.setattr(module, name, wrapper)
    return calls


# --- the flags, from the XML the writers make ---------------------------------------


def test_flags_of_a_plain_domain_are_all_off_and_other_metadata_is_not_ours():
    f = ownmeta.flags_from_xml(BASE)
    assert f == ownmeta.DomainFlags(title="A title", description="Some words")


def test_flags_from_what_templates_disks_and_seed_write():
    xml = templates.set_meta_xml(BASE, templates.TemplateMeta(marked=True))
    xml = disks.set_overlay_meta(disks.point_disk_xml(xml, "vda", OVERLAY.overlay, "qcow2"), {"vda": OVERLAY})
    xml = seed.set_seed_metadata(xml, seed.SeedRecord("/p/x-cidata.iso", "default", "x-cidata.iso", True))
    f = ownmeta.flags_from_xml(xml)
    assert (f.template, f.overlays, f.seed_cleanup) == (True, True, True)
    assert f.title == "A title"
    # the same records, as each module reads them
    assert templates.meta_from_xml(xml).marked and disks.overlay_disks(xml) == {"vda": OVERLAY}
    assert seed.first_boot_cleanup_due(xml)


def test_flags_are_off_when_the_record_says_there_is_nothing_to_do():
    # a seed that stays; an overlay record whose disk reads something else
    # (copied into a clone, or repointed by hand): nothing to empty
    xml = seed.set_seed_metadata(BASE, seed.SeedRecord("/p/x-cidata.iso", "default", "x-cidata.iso", False))
    xml = disks.set_overlay_meta(xml, {"vda": OVERLAY})
    f = ownmeta.flags_from_xml(xml)
    assert (f.overlays, f.seed_cleanup) == (False, False)
    assert disks.reset_overlays(None, None, xml) == []  # and the reset agrees: nothing of ours


def test_a_running_vms_records_come_from_its_definition_its_title_from_what_runs():
    live = BASE.replace("A title", "Live title")
    config = seed.set_seed_metadata(BASE, seed.SeedRecord("/p/x-cidata.iso", "default", "x-cidata.iso", True))
    f = ownmeta.flags_from_xml(live, config)  # attached while it ran: the live XML may lack the record
    assert (f.title, f.seed_cleanup) == ("Live title", True)
    assert not ownmeta.flags_from_xml(live).seed_cleanup


def test_the_list_reads_the_same_flags_from_the_head_of_the_xml():
    """read_flags (what the list uses: one XMLDesc, its head parsed) says
    what flags_from_xml (the whole document) says, for plain domains,
    domains with vmtui's records, escaped titles and odd metadata."""
    plain = BASE.replace("</metadata>", "</metadata>\n  <memory unit='KiB'>1024</memory>")  # libvirt's order
    head = plain.replace("<domain type='kvm'>", "<domain type='kvm' id='7'>")
    odd = BASE.replace("</description>", "</description>\n  <memory unit='KiB'>1024</memory>")
    marked = templates.set_meta_xml(plain, templates.TemplateMeta(marked=True))
    seeded = seed.set_seed_metadata(marked, seed.SeedRecord("/p/x-cidata.iso", "default", "x-cidata.iso", True))
    overlay = disks.set_overlay_meta(disks.point_disk_xml(seeded, "vda", OVERLAY.overlay, "qcow2"), {"vda": OVERLAY})
    escaped = plain.replace("A title", "Tom &amp; Jerry &lt;3")
    no_memory = BASE  # not as libvirt writes it (nor odd): the whole document is read
    for xml in (head, plain, marked, seeded, overlay, escaped, no_memory, odd):
        assert ownmeta.read_flags(xml) == ownmeta.flags_from_xml(xml), xml
    assert ownmeta.read_flags(escaped).title == "Tom & Jerry <3"
    sized = plain.replace("<memory unit='KiB'>1024</memory>", "<memory unit='KiB'>4194304</memory>\n  "
                          "<currentMemory unit='KiB'>2097152</currentMemory>\n  "
                          "<vcpu placement='static' current='2'>4</vcpu>\n  <os><type>hvm</type></os>")
    f = ownmeta.read_flags(sized)
    assert (f.vcpus, f.memory_kib, f.max_memory_kib, f.title) == (2, 2097152, 4194304, "A title")
    assert f == ownmeta.flags_from_xml(sized)
    f = ownmeta.read_flags(overlay)
    assert (f.template, f.overlays, f.seed_cleanup) == (True, True, True)


# --- the service --------------------------------------------------------------------


async def test_flags_come_with_the_list_without_extra_calls(service):
    await service.wait_loaded()
    d = service.domains[DELTA]
    assert d.flags_read and d.title == "Delta database"
    assert not (d.overlays or d.seed_cleanup or d.template)
    # a change of the definition re-reads them
    await asyncio.to_thread(disks.set_mode, service.conn, ECHO, "vda", False, "overlay")
    await wait_for(lambda: service.domains[ECHO].overlays, what="overlay flag after the define event")


async def test_stopping_vms_without_overlays_touches_nothing(service, monkeypatch):
    calls = spy(monkeypatch, disks, "reset_nonpersistent")
    events: list = []
    service.subscribe(lambda m: events.append(m) if isinstance(m, DomainEvent) else None)
    await service.wait_loaded()
    # a guest shutdown, a force off, a running VM deleted
    await service.shutdown(DELTA)
    await wait_for(lambda: service.domains[DELTA].is_shut_off, what="delta off")
    await service.delete(ALPHA)
    await wait_for(lambda: ALPHA not in service.domains, what="alpha deleted")
    # a transient VM (someone else's) that stops is gone at once
    xml = (await asyncio.to_thread(lambda: service.conn.lookupByName("echo").XMLDesc(0)))
    xml = xml.replace("<name>echo</name>", "<name>transient-1</name>").replace(
        "11111111-1111-4111-8111-000000000005", "11111111-1111-4111-8111-0000000000ff")
    dom = await asyncio.to_thread(service.conn.createXML, xml, 0)
    await wait_for(lambda: "11111111-1111-4111-8111-0000000000ff" in service.domains, what="transient listed")
    await asyncio.to_thread(dom.destroy)
    await wait_for(lambda: "11111111-1111-4111-8111-0000000000ff" not in service.domains, what="transient gone")
    await settle(service)
    assert calls == []
    assert not [e for e in events if e.event == "non-persistent reset failed"]


async def test_a_vm_with_overlays_is_still_emptied_at_power_off(service, monkeypatch):
    calls = spy(monkeypatch, disks, "reset_nonpersistent")
    conn = service.conn
    await asyncio.to_thread(disks.set_mode, conn, ECHO, "vda", False, "overlay")
    await wait_for(lambda: service.domains[ECHO].overlays, what="overlay flag")
    over = disks.overlay_disks(await service.domain_xml(ECHO, inactive=True))["vda"]
    await service.start(ECHO)
    await wait_for(lambda: service.domains[ECHO].is_running, what="echo running")
    await service.force_off(ECHO)
    await wait_for(lambda: calls == [ECHO], what="the reset after the power-off")
    await settle(service)
    # made again empty (the guest's writes are emptied for real in tests/real/test_real_disks_snaps.py)
    assert await asyncio.to_thread(lambda: conn.storageVolLookupByPath(over.overlay).path()) == over.overlay


async def test_deleting_a_running_vm_with_overlays_is_no_alarm_and_leaves_nothing(service):
    events: list = []
    service.subscribe(lambda m: events.append(m) if isinstance(m, DomainEvent) else None)
    conn = service.conn
    await asyncio.to_thread(disks.set_mode, conn, ECHO, "vda", False, "overlay")
    await wait_for(lambda: service.domains[ECHO].overlays, what="overlay flag")
    over = disks.overlay_disks(await service.domain_xml(ECHO, inactive=True))["vda"]
    await service.start(ECHO)
    await wait_for(lambda: service.domains[ECHO].is_running, what="echo running")
    key = await asyncio.to_thread(lambda: conn.storageVolLookupByPath(over.overlay).key())
    result = await service.delete(ECHO, [key])
    assert result.errors == [] and result.deleted == [over.overlay]
    await wait_for(lambda: ECHO not in service.domains, what="echo gone")
    await settle(service)
    assert not [e for e in events if e.event == "non-persistent reset failed"]

    def overlay_exists() -> bool:
        try:
            conn.storageVolLookupByPath(over.overlay)
        except libvirt.libvirtError:
            return False
        return True
    assert not await asyncio.to_thread(overlay_exists)  # not made again for a VM that is gone


# --- the app: no false notification, seed cleanup only where due --------------------------


def _app(uri: str) -> VmtuiApp:
    return VmtuiApp(LibvirtService(uri, stats_interval=3600, reconnect=False), Config())


async def test_app_says_nothing_when_vms_without_overlays_or_seed_stop(small_uri, monkeypatch):
    cleanups = spy(monkeypatch, seed, "remove_seed")
    app = _app(small_uri)
    async with run_noted(app, size=(80, 24)) as pilot:
        await wait_for(lambda: app.ready, what="list")
        await app.service.wait_loaded()
        await app.service.shutdown(DELTA)  # the guest shuts itself down: detail 0
        await wait_for(lambda: app.table.domains[DELTA].is_shut_off, what="delta off")
        await app.service.delete(ALPHA)
        await wait_for(lambda: ALPHA not in app.table.domains, what="alpha gone")
        await settle(app.service)
        await pilot.pause()
        texts = [str(n.message) for n in notes_of(app).all]
        assert not [t for t in texts if "Could not discard" in t or "cloud-init" in t], texts
        assert cleanups == []


async def test_a_stop_removes_no_seed_when_nothing_waits_for_it(small_uri, monkeypatch):
    """A seed to go after the first boot stays when the VM stops and nothing
    waited for its cloud-init: the stop of whichever VM is no signal."""
    cleanups = spy(monkeypatch, seed, "remove_seed")
    app = _app(small_uri)
    async with run_noted(app, size=(80, 24)):
        await wait_for(lambda: app.ready, what="list")
        svc = app.service
        await svc.wait_loaded()
        rec = seed.SeedRecord("/var/lib/libvirt/images/echo-cidata.iso", "default", "echo-cidata.iso", True)

        def mark(conn) -> None:
            dom = conn.lookupByUUIDString(ECHO)
            conn.defineXML(seed.set_seed_metadata(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), rec))
        await svc.call(mark)
        await wait_for(lambda: svc.domains[ECHO].seed_cleanup, what="seed flag")
        await svc.start(ECHO)
        await wait_for(lambda: svc.domains[ECHO].is_running, what="echo running")
        await svc.shutdown(ECHO)
        await svc.shutdown(DELTA)
        await wait_for(lambda: svc.domains[ECHO].is_shut_off, what="echo off")
        await wait_for(lambda: svc.domains[DELTA].is_shut_off, what="delta off")
        await settle(svc)
        assert cleanups == []
        assert svc.domains[ECHO].seed_cleanup  # the record (and the seed) stay
