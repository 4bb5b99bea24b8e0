"""Command line: ``vmtui [-c URI] [--demo] [-r] [--version]``.

The URI is chosen like virsh does: ``-c/--connect``, else ``LIBVIRT_DEFAULT_URI``,
else the first saved connection marked ``autoconnect`` in the config file,
else ``qemu:///system``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import __version__

DEMO_HOST = Path(__file__).resolve().parent / "data" / "demo-host.xml"


def demo_uri() -> str:
    return "test://" + str(DEMO_HOST)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vmtui",
        description="A keyboard-first terminal UI for libvirt: manage the VMs of a host over SSH.",
        epilog="Examples: vmtui | vmtui -c qemu:///system | vmtui -c qemu+ssh://root@host/system | vmtui --demo",
    )
    p.add_argument("-c", "--connect", metavar="URI",
                   help="libvirt connection URI (default: $LIBVIRT_DEFAULT_URI, the config's autoconnect "
                        "entry, or qemu:///system)")
    p.add_argument("--demo", action="store_true",
                   help="run on the bundled demo host (libvirt's test driver; changes last for the session)")
    p.add_argument("-r", "--readonly", action="store_true", help="open the connection read-only")
    p.add_argument("--config", metavar="FILE", help="configuration file (default: the platform config dir)")
    p.add_argument("--log", metavar="FILE", help="write a debug log to FILE")
    p.add_argument("-V", "--version", action="version", version=f"vmtui {__version__}")
    return p


def resolve_uri(args: argparse.Namespace, config_uri: str | None) -> str:
    if args.demo:
        return demo_uri()
    return args.connect or os.environ.get("LIBVIRT_DEFAULT_URI") or config_uri or "qemu:///system"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.log:
        logging.basicConfig(filename=args.log, level=logging.DEBUG,
                            format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    from .core.config import load_config
    from .core.service import LibvirtService

    config = load_config(args.config)
    if args.demo and not DEMO_HOST.exists():
        print(f"vmtui: the demo host file is missing: {DEMO_HOST}", file=sys.stderr)
        return 2
    uri = resolve_uri(args, config.autoconnect_uri)
    service = LibvirtService(uri, stats_interval=config.stats_interval, readonly=args.readonly,
                             reconnect=not uri.startswith("test:"))

    from .ui.app import VmtuiApp

    app = VmtuiApp(service, config)
    try:
        app.run()
    except KeyboardInterrupt:
        return 130
    rc = app.return_code or 0
    if app.connect_error is not None and rc:
        # Textual already printed the message; keep the exit code honest.
        return rc
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
