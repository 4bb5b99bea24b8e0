"""Several connections open at once, each with its own domains and events."""

import pytest

from vmtui.core.errors import ConnectError
from vmtui.core.connection.hosts import HostRegistry
from vmtui.core.connection.service import LibvirtService

from .conftest import ALPHA, DATA, SMALL_HOST, host_uri, wait_for


async def test_two_hosts_side_by_side():
    reg = HostRegistry(lambda uri: LibvirtService(uri, stats_interval=3600, reconnect=False))
    demo = host_uri(DATA.parent.parent / "vmtui" / "data" / "demo-host.xml")
    try:
        small = await reg.open(host_uri(SMALL_HOST))
        big = await reg.open(demo)
        assert len(reg) == 2 and await reg.open(host_uri(SMALL_HOST)) is small
        assert len(small.domains) == 5 and len(big.domains) >= 12
        await small.pause(ALPHA)
        await wait_for(lambda: small.domains[ALPHA].state == "paused", what="event on the small host")
        assert all(d.name != "alpha" for d in big.domains.values())
        with pytest.raises(ConnectError):
            await reg.open("test:///missing/host.xml")
        assert len(reg) == 2
    finally:
        await reg.close_all()
    assert len(reg) == 0
