"""The live figures on the real libvirtd + QEMU (issue 13, part 3): a
running tiny guest's figures and graphs, from the bulk stats tick."""

from __future__ import annotations

import pytest
from textual.widgets import Sparkline, Static

from tests.conftest import wait_for
from tests.test_live_figures import live_figures
from vmtui.core.config import Config
from vmtui.core.connection.service import LibvirtService
from vmtui.ui.app import VmtuiApp
from vmtui.ui.live_figures import LiveFigures
from vmtui.ui.screens import DetailsScreen

pytestmark = pytest.mark.real

URI = "qemu:///system"


async def test_live_figures_of_a_running_guest(tiny_guest):
    dom = tiny_guest(start=True)
    uuid = dom.UUIDString()
    app = VmtuiApp(LibvirtService(URI, stats_interval=1.0), Config(cpu_graph_column=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.ready and uuid in app.table.rows, timeout=30, what="guest in the list")
        app.table.select(uuid)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, DetailsScreen) and app.screen.is_mounted, what="details")
        live = await live_figures(app)
        # the bulk stats tick's figures, and graphs that grow tick by tick
        await wait_for(lambda: live.query_one("#live-cpu").display
                       and str(live.query_one("#fig-cpu", Static).content).endswith("%"),
                       timeout=60, what="CPU figure")
        ring = app.service.history.get(uuid)
        await wait_for(lambda: len(ring) >= 4, timeout=60, what="four ticks of history")
        spark = live.query_one("#spark-cpu", Sparkline).data
        assert spark and len(spark) == app.service.history.capacity + 1
        assert str(live.query_one("#peak-cpu", Static).content).startswith("max ")
        cell = str(app.table.get_cell(uuid, "graph"))
        assert cell.strip() and set(cell) <= set(" ▁▂▃▄▅▆▇█")
