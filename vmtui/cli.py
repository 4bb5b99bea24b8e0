"""Command line: ``vmtui [-c URI] [--demo] [-r] [--version]`` starts the UI;
``vmtui create --from FILE`` and ``vmtui export NAME`` work without it.

The URI is chosen like virsh does: ``-c/--connect``, else ``LIBVIRT_DEFAULT_URI``,
else the first saved connection marked ``autoconnect`` in the config file,
else ``qemu:///system``.

Exit codes of the subcommands: 0 done, 1 the host said no (cannot connect,
a creation step failed, no such domain), 2 the spec is wrong (YAML, schema,
or it does not fit the host) or a usage error (a ``--log`` file that cannot
be written, a broken config file the connection would come from).
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from pathlib import Path

from . import __version__

DEMO_HOST = Path(__file__).resolve().parent / "data" / "demo-host.xml"


def demo_uri() -> str:
    return "test://" + str(DEMO_HOST)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vmtui",
        usage="%(prog)s [-h] [-c URI] [--demo] [-r] [--config FILE] [--log FILE] [-V] [COMMAND ...]",
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

    # Subcommands are optional: without one, vmtui starts the UI as before.
    # Their own -c/--config/--log default to SUPPRESS, so an option given
    # before the subcommand is not reset by the subparser.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--connect", metavar="URI", default=argparse.SUPPRESS,
                        help="libvirt connection URI (as for the UI)")
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="configuration file")
    common.add_argument("--log", metavar="FILE", default=argparse.SUPPRESS, help="write a debug log to FILE")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands (optional)",
                           description="Without a command, vmtui starts the terminal UI.")
    c = sub.add_parser("create", parents=[common], help="create a VM from a YAML spec, without the UI",
                       description="Create a VM from a YAML spec (see docs/vm-spec.md), like the New-VM "
                                   "wizard does: checks the spec against the host, creates the disks, "
                                   "defines the VM and starts the installation.")
    c.add_argument("--from", dest="spec_file", metavar="FILE", required=True,
                   help="the VM spec (YAML); '-' reads standard input")
    c.add_argument("--dry-run", action="store_true",
                   help="check the spec and print the domain XML and the equivalent virt-install "
                        "command; create nothing")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    e = sub.add_parser("export", parents=[common], help="print the YAML spec of an existing VM",
                       description="Print a YAML spec that recreates VM NAME (under another name: "
                                   "edit 'name' and run 'vmtui create --from').")
    e.add_argument("name", metavar="NAME", help="the domain to export")
    return p


def resolve_uri(args: argparse.Namespace, config_uri: str | None) -> str:
    if args.demo:
        return demo_uri()
    return args.connect or os.environ.get("LIBVIRT_DEFAULT_URI") or config_uri or "qemu:///system"


def _open_log(path: str):
    """The ``--log`` file opened for appending (created 0600), or the reason it cannot be."""
    from .core.files.userfile import describe_mode

    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as err:
        if err.errno == errno.ENOENT:
            return f"no such directory: {os.path.dirname(os.path.abspath(path))}"
        if err.errno == errno.EISDIR:
            return "a directory, not a file"
        if err.errno == errno.ENXIO:
            return "a FIFO (named pipe), not a regular file"
        return f"cannot write it ({err.strerror or err})"
    except ValueError:
        return "not a valid file name"
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):  # a FIFO would stall every log line
        os.close(fd)
        return f"{describe_mode(mode)}, not a regular file"
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a", encoding="utf-8", errors="replace")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .core.connection.logs import divert_stderr, setup_logging

    log_file = None
    if args.log:
        log_file = _open_log(args.log)
        if isinstance(log_file, str):
            _err(f"vmtui: --log {args.log}: {log_file}")
            return 2
    if args.command is not None:
        from .core.connection.eventloop import silence_default_error_handler

        silence_default_error_handler()  # libvirt would print every error to stderr itself
        if log_file is not None:
            setup_logging(log_file, debug=True, path=args.log)
        if args.command == "create":
            return cmd_create(args)
        return cmd_export(args)

    # The UI. Nothing a C library (libvirt, GLib) or a program it runs (ssh)
    # writes to fd 2 may reach the screen: from here on it goes to the log.
    # Before libvirt is first loaded: it writes as it initializes.
    try:
        log = setup_logging(log_file, debug=log_file is not None, path=args.log)
    except OSError:
        log = Path(os.devnull)  # no writable state dir: C libraries' chatter is dropped
    divert_stderr(log)
    from .core.config import load_config

    config = load_config(args.config)
    if args.demo and not DEMO_HOST.exists():
        print(f"vmtui: the demo host file is missing: {DEMO_HOST}", file=sys.stderr)
        return 2
    return run_ui(resolve_uri(args, config.autoconnect_uri), config, readonly=args.readonly)


def run_ui(uri: str, config, *, readonly: bool = False, instrument=None) -> int:
    """The terminal UI on ``uri``. The connection starts opening before the
    UI is imported (Textual and the app take a good part of a second to
    import; opening a big host takes as long): the two overlap.
    ``instrument(service, app)``, when given, is called before the app runs
    (bench/bench_list.py times the launch through it)."""
    from .core.connection.eventloop import silence_default_error_handler
    from .core.connection.service import LibvirtService

    silence_default_error_handler()
    service = LibvirtService(uri, stats_interval=config.stats_interval, readonly=readonly,
                             reconnect=not uri.startswith("test:"))
    service.open_early()

    from .ui.app import VmtuiApp
    from .core import heap

    heap.settle()  # what the imports made lives as long as the process: out of the collector's way
    app = VmtuiApp(service, config)
    if instrument is not None:
        instrument(service, app)
    try:
        app.run()
    except KeyboardInterrupt:
        return 130
    # when the connection failed Textual already printed the message; the exit code says so too
    return app.return_code or 0


# --- subcommands -------------------------------------------------------------


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _command_config(args: argparse.Namespace):
    """The config for a headless command, its notices printed to stderr (the
    TUI shows the same ones); None when the connection would come from a
    config file that cannot be used (reason printed: exit 2)."""
    from .core.config import load_config

    config = load_config(args.config)
    for notice in config.notices:
        _err(notice)
    explicit = args.demo or getattr(args, "connect", None) or os.environ.get("LIBVIRT_DEFAULT_URI")
    if config.unusable and not explicit:
        _err(f"vmtui: not connecting to {resolve_uri(args, None)}: the connection would come from the config "
             f"file, which cannot be used (above); fix it or give -c URI")
        return None
    return config


async def _connected_service(args: argparse.Namespace, config):
    """A connected service for the headless commands, or None (reason printed)."""
    from .core.errors import ConnectError
    from .core.connection.service import LibvirtService

    service = LibvirtService(resolve_uri(args, config.autoconnect_uri), stats_interval=3600, reconnect=False)
    try:
        await service.connect()
    except ConnectError as err:
        _err(str(err))
        return None
    return service


def cmd_create(args: argparse.Namespace) -> int:
    from .core.files import userfile
    from .core.create.validation import validate_spec
    from .core.create.vmspec_yaml import SpecError, parse_spec

    if args.demo and not DEMO_HOST.exists():
        _err(f"vmtui: the demo host file is missing: {DEMO_HOST}")
        return 2
    config = _command_config(args)
    if config is None:
        return 2
    try:
        if args.spec_file == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            if stdin is None:
                raise SpecError("", "cannot read the spec: standard input is closed", source="<stdin>")
            try:
                text = userfile.read_stream_text(stdin, "<stdin>", userfile.MAX_SPEC)
            except userfile.UserFileError as err:
                raise SpecError("", f"cannot read the spec: {err.reason}", err.line, source="<stdin>") from None
            doc = parse_spec(text, source="<stdin>", is_text=True)
        else:
            doc = parse_spec(Path(args.spec_file))
    except SpecError as err:
        text = err.text()
        if err.message.startswith("cannot read the spec: a FIFO"):
            text += " (to read a pipe, use --from - and redirect it to standard input)"
        _err(text)
        return 2
    problems = validate_spec(doc.spec)
    if any(p.is_error for p in problems):
        for issue in doc.issues(problems):
            _err(issue.format(doc.source))
        return 2
    import asyncio

    return asyncio.run(_create(args, doc, config))


async def _create(args: argparse.Namespace, doc, config) -> int:
    from .core.errors import VmtuiError
    from .core.create.installer import InvalidSpec, check_spec, create_vm, preview
    from .core.create.osinfo import default_db

    service = await _connected_service(args, config)
    if service is None:
        return 1
    try:
        osdb = default_db()
        spec = doc.spec
        problems = await check_spec(service, spec, osdb=osdb)
        for issue in doc.issues(problems):
            _err(issue.format(doc.source))
        if any(p.is_error for p in problems):
            return 2
        if args.dry_run:
            final_xml, install_xml, cmdline = await preview(service, spec, osdb=osdb)
            if install_xml != final_xml:
                print("<!-- install phase: boots the installer once -->")
                print(install_xml)
                print("<!-- final definition -->")
            print(final_xml)
            print(cmdline)
            return 0
        last = [""]

        def progress(message: str, fraction: float | None) -> None:
            if args.quiet or message == last[0] or fraction == 1.0:
                return
            last[0] = message
            _err(f"{message}...")

        try:
            uuid = await create_vm(service, spec, osdb=osdb, progress=progress)
        except InvalidSpec as err:
            for issue in doc.issues(err.errors):
                _err(issue.format(doc.source))
            return 2
        except VmtuiError as err:
            _err(str(err))
            return 1
        print(f"Created VM '{spec.name}' (UUID {uuid})")
        return 0
    finally:
        await service.close()


def cmd_export(args: argparse.Namespace) -> int:
    import asyncio

    config = _command_config(args)
    if config is None:
        return 2
    return asyncio.run(_export(args, config))


async def _export(args: argparse.Namespace, config) -> int:
    from .core.errors import VmtuiError
    from .core.create.installer import export_domain
    from .core.create.osinfo import default_db
    from .core.create.vmspec_yaml import dump_spec

    service = await _connected_service(args, config)
    if service is None:
        return 1
    try:
        spec = await export_domain(service, args.name, osdb=default_db())
    except VmtuiError as err:
        _err(str(err))
        return 1
    finally:
        await service.close()
    print(f"# vmtui VM spec of '{args.name}' on {service.display_uri}; change 'name', then:\n"
          f"#   vmtui create --from FILE")
    print(dump_spec(spec), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
