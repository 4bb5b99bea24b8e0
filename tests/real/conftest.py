"""Fixtures for tests against the real libvirtd + QEMU (qemu:///system).

* ``system_conn`` -- an open ``qemu:///system`` connection (skips the test
  when libvirtd is not reachable; fails it in CI, see tests/prereq.py).
* ``tiny_guest_files`` -- session-scoped :class:`tests.guest.GuestFiles`
  (kernel + stock initramfs, staged under /var/lib/libvirt/boot).
* ``tiny_guest`` -- factory defining (and by default starting) a uniquely
  named tiny guest; every guest it made is destroyed and undefined at
  teardown, even if the test restarted libvirtd meanwhile.
* ``serial_console`` -- factory opening a :class:`tests.guest.SerialConsole`
  on a domain; closed at teardown.

Mark the tests that use them with ``@pytest.mark.real``.
"""

from __future__ import annotations

import itertools
import os
import re

import pytest

import libvirt  # noqa: E402

from tests import guest  # noqa: E402
from tests.prereq import missing  # noqa: E402
from vmtui.core import storage  # noqa: E402

URI = "qemu:///system"
NAME_PREFIX = "vmtui-test-"
_counter = itertools.count(1)


def _open_or_skip():
    try:
        return libvirt.open(URI)
    except libvirt.libvirtError as exc:
        missing(f"cannot open {URI} (is libvirtd running? `make host` starts it): {exc}")


def _remove_stale_test_domains(conn) -> None:
    """Undefine leftovers of earlier, crashed test sessions.

    Only names ``vmtui-test-<pid>-...`` whose pid is gone are touched, so a
    concurrently running test session keeps its guests.
    """
    for dom in conn.listAllDomains():
        m = re.match(re.escape(NAME_PREFIX) + r"(\d+)-", dom.name())
        if m and int(m.group(1)) != os.getpid() and not guest.pid_alive(int(m.group(1))):
            guest.destroy_and_undefine(conn, dom.name())


@pytest.fixture(scope="session")
def _libvirt_available():
    conn = _open_or_skip()
    try:
        _remove_stale_test_domains(conn)
    finally:
        conn.close()


@pytest.fixture
def system_conn(_libvirt_available):
    """An open qemu:///system connection, closed at teardown."""
    conn = _open_or_skip()
    yield conn
    try:
        conn.close()
    except libvirt.libvirtError:
        pass


POOL_PREFIX = "vmtui-test-pool-"
_pools = itertools.count(1)


@pytest.fixture
def pool(system_conn):
    """A fresh transient dir pool under /var/lib/libvirt/images; yields its
    name; removed with its volumes afterwards."""
    guest.remove_stale_pools(system_conn, POOL_PREFIX)
    name = f"{POOL_PREFIX}{os.getpid()}-{next(_pools)}-{os.urandom(2).hex()}"
    (guest.IMAGES / name).mkdir(mode=0o755)
    system_conn.storagePoolCreateXML(storage.dir_pool_xml(name, str(guest.IMAGES / name)), 0)
    yield name
    conn = libvirt.open(URI)
    try:
        guest.remove_pool(conn, name)
    finally:
        conn.close()


@pytest.fixture
def domains(_libvirt_available):
    """Names of domains to destroy and undefine (NVRAM included) afterwards."""
    made: list[str] = []
    yield made
    guest.remove_domains(URI, made)


@pytest.fixture
async def svc(_libvirt_available):
    """A connected service on qemu:///system (no ticks, no reconnect)."""
    from tests.conftest import connected

    async with connected(URI) as service:
        yield service


@pytest.fixture(scope="session")
def tiny_guest_files(_libvirt_available) -> guest.GuestFiles:
    """Kernel + stock initramfs (banner, ACPI poweroff, shell on ttyS0)."""
    try:
        return guest.tiny_guest_files()
    except Exception as exc:  # no apt, no network, ...
        missing(f"cannot build the tiny test guest: {exc}")


@pytest.fixture
def tiny_guest(system_conn, tiny_guest_files):
    """Factory: ``tiny_guest(start=True, **domain_xml_kwargs) -> virDomain``.

    Keyword arguments: ``name`` (default ``vmtui-test-<pid>-<n>``; always
    keep the ``vmtui-test-`` prefix), ``files`` (a :class:`GuestFiles`, e.g.
    with a custom initramfs), ``start``, ``conn``, and anything
    :func:`tests.guest.domain_xml` takes (``memory_mib``,
    ``extra_devices_xml``, ``graphics``, ``cmdline``, ``on_reboot`` ...).
    """
    made: list[str] = []

    def make(*, start: bool = True, name: str | None = None, files: guest.GuestFiles | None = None, conn=None, **kw):
        conn = conn or system_conn
        files = files or tiny_guest_files
        if name is None:
            name = f"{NAME_PREFIX}{os.getpid()}-{next(_counter)}-{os.urandom(2).hex()}"
        assert name.startswith(NAME_PREFIX), name
        made.append(name)
        dom = conn.defineXML(guest.domain_xml(name, files.kernel, files.initrd, **kw))
        if start:
            dom.create()
        return dom

    yield make

    guest.remove_domains(URI, made)


@pytest.fixture
def serial_console():
    """Factory: ``serial_console(dom, force=False) -> SerialConsole``."""
    opened: list[guest.SerialConsole] = []

    def open_console(dom, **kw) -> guest.SerialConsole:
        con = guest.SerialConsole(dom, **kw)
        opened.append(con)
        return con

    yield open_console
    for con in opened:
        con.close()


@pytest.fixture(scope="session")
def session_daemon(_libvirt_available):
    """A private libvirt host: a non-root user's session libvirtd
    (:class:`tests.sessiond.SessionDaemon`), for tests that stop, kill or
    flood a daemon. Stopped at the end of the session."""
    from tests.prereq import missing
    from tests.sessiond import SessionDaemon, SessionDaemonError

    daemon = SessionDaemon("vmtui-h1")
    try:
        daemon.start()
    except (SessionDaemonError, OSError) as exc:
        missing(f"cannot start a private session libvirtd: {exc}")
    yield daemon
    daemon.stop()


@pytest.fixture
def private_daemon(session_daemon):
    """The session daemon, running and answering (a test before may have
    stopped or killed it); domains this test defined on it are removed after."""
    import signal

    if session_daemon.running():
        session_daemon.signal(signal.SIGCONT)
    session_daemon.start()
    yield session_daemon
    if session_daemon.running():
        session_daemon.signal(signal.SIGCONT)
    try:
        session_daemon.start()
        conn = libvirt.open(session_daemon.uri)
    except Exception:  # noqa: BLE001 - best effort clean-up
        return
    try:
        for dom in conn.listAllDomains():
            if dom.name().startswith(f"{NAME_PREFIX}{os.getpid()}-"):
                guest.destroy_and_undefine(conn, dom.name())
    finally:
        conn.close()


FLEET_USERS = ("vmtui-h2", "vmtui-h3")
FLEET_POOL = "vmtui-fleet"


@pytest.fixture(scope="session")
def _fleet_daemons(_libvirt_available):
    """Two private libvirt hosts on this machine (issue 15): the session
    daemons of vmtui-h2 and vmtui-h3, each with its own host_uuid; root
    reaches both (SessionDaemon.uri). Stopped at the end of the session."""
    from tests.prereq import missing
    from tests.sessiond import SessionDaemon, SessionDaemonError

    daemons = [SessionDaemon(user) for user in FLEET_USERS]
    try:
        for d in daemons:
            d.start()
    except (SessionDaemonError, OSError) as exc:
        missing(f"cannot start the two private session daemons: {exc}")
    yield daemons
    for d in daemons:
        d.stop()


@pytest.fixture
def two_daemons(_fleet_daemons):
    """Hosts A and B, running and answering (a test before may have killed
    one); this test's domains and volumes on them are removed after."""
    for d in _fleet_daemons:
        d.start()
    yield tuple(_fleet_daemons)
    mine = f"{NAME_PREFIX}{os.getpid()}-"
    for d in _fleet_daemons:
        try:
            d.start()
            conn = libvirt.open(d.uri)
        except Exception:  # noqa: BLE001 - best effort clean-up
            continue
        try:
            for dom in conn.listAllDomains():
                if dom.name().startswith(mine):
                    guest.destroy_and_undefine(conn, dom.name())
            try:
                pool = conn.storagePoolLookupByName(FLEET_POOL)
                pool.refresh(0)
                for vol in pool.listAllVolumes():
                    if vol.name().startswith(mine):
                        vol.delete(0)
            except libvirt.libvirtError:
                pass
        finally:
            conn.close()


def fleet_pool(uri: str, user: str):
    """The dir pool ``vmtui-fleet`` of a session daemon (in the user's home), active."""
    conn = libvirt.open(uri)
    try:
        try:
            pool = conn.storagePoolLookupByName(FLEET_POOL)
        except libvirt.libvirtError:
            import pwd

            path = f"{pwd.getpwnam(user).pw_dir}/{FLEET_POOL}-images"
            pool = conn.storagePoolDefineXML(
                f"<pool type='dir'><name>{FLEET_POOL}</name><target><path>{path}</path></target></pool>", 0)
            pool.build(0)
        if not pool.isActive():
            pool.create(0)
        return pool.name()
    finally:
        conn.close()
