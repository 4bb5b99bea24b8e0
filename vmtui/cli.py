"""Command line: ``vmtui [-c URI ...] [--demo] [-r] [--version]`` starts the UI;
``vmtui create --from FILE [--wait] [--console]``, ``vmtui export NAME``,
``vmtui list``, ``vmtui ip NAME``, ``vmtui delete NAME [--storage]`` and
``vmtui migrate NAME --to URI`` work without it.

The URI is chosen like virsh does: ``-c/--connect``, else ``LIBVIRT_DEFAULT_URI``,
else the saved connections marked ``autoconnect`` in the config file, else
``qemu:///system``. Several ``-c`` (or several autoconnect entries) open
several hosts in one list; a subcommand works on one.

Exit codes of the subcommands: 0 done, 1 the host said no (cannot connect,
a creation step failed, no such domain, no address known, a delete not
confirmed, a migration refused by its checks or failed), 2 the spec is wrong (YAML, schema, or it does not fit the host)
or a usage error (a ``--log`` file that cannot be written, a broken config
file the connection would come from, ``delete`` without ``--yes`` when
standard input is no terminal), 3 ``create --wait``: the VM was created but
did not become ready (cloud-init reported an error, it stopped, or the time
limit passed; the console's last lines are printed), 130 interrupted (a
migration stopped with Ctrl+C: the VM stays on the source).
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
        usage="%(prog)s [-h] [-c URI ...] [--demo] [-r] [--config FILE] [--log FILE] [-V] [COMMAND ...]",
        description="A keyboard-first terminal UI for libvirt: manage the VMs of a host over SSH.",
        epilog="Examples: vmtui | vmtui -c qemu:///system | vmtui -c qemu+ssh://root@host/system | vmtui --demo",
    )
    p.add_argument("-c", "--connect", metavar="URI", action="append",
                   help="libvirt connection URI; give it several times for several hosts in one list "
                        "(default: $LIBVIRT_DEFAULT_URI, the config's autoconnect entries, or qemu:///system)")
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
    common.add_argument("-c", "--connect", metavar="URI", default=argparse.SUPPRESS, action="append",
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
    c.add_argument("--wait", action="store_true",
                   help="wait until the VM is ready -- cloud-init finished and an address known, or a login "
                        "prompt for a guest without cloud-init -- then print its addresses and the ssh line; "
                        "the seed goes then if it was to go after the first boot")
    c.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="how long --wait waits (default 600)")
    c.add_argument("--console", action="store_true",
                   help="show the VM's serial console in this terminal while it boots (Ctrl+] leaves it)")
    ls = sub.add_parser("list", parents=[common], help="list the VMs, their state and IP addresses",
                        description="List the VMs of the host: name, state, and the IP addresses of the running "
                                    "ones with the source that told each (DHCP lease, guest agent, ARP table).")
    ls.add_argument("--no-addresses", action="store_true", help="leave the addresses out (faster)")
    ip = sub.add_parser("ip", parents=[common], help="print the IP addresses of a running VM",
                        description="Print the IP addresses of VM NAME, one a line: address/prefix, source "
                                    "(lease: a libvirt network's DHCP lease; agent: the QEMU guest agent; arp: "
                                    "the host's ARP table), MAC, interface. Exit 1 when none is known.")
    ip.add_argument("name", metavar="NAME", help="the domain")
    ip.add_argument("--source", action="append", choices=["lease", "agent", "arp"],
                    help="ask only this source (repeat for several); default: all three, in that order")
    d = sub.add_parser("delete", parents=[common], help="delete a VM, optionally with its storage",
                       description="Delete VM NAME (forced off first if it runs): its definition, NVRAM and "
                                   "snapshot metadata. With --storage also the volumes of its disks, never one "
                                   "another VM uses, a CD-ROM, a read-only or shareable disk or a path that is "
                                   "no storage volume (its cloud-init seed does go): what is kept is named, "
                                   "with why. Asks first when standard input is a terminal.")
    d.add_argument("name", metavar="NAME", help="the domain")
    d.add_argument("--storage", action="store_true", help="also delete its disks' volumes (as above)")
    d.add_argument("-y", "--yes", action="store_true", help="do not ask (needed when standard input is no terminal)")
    e = sub.add_parser("export", parents=[common], help="print the YAML spec of an existing VM",
                       description="Print a YAML spec that recreates VM NAME (under another name: "
                                   "edit 'name' and run 'vmtui create --from').")
    e.add_argument("name", metavar="NAME", help="the domain to export")
    m = sub.add_parser("migrate", parents=[common], help="move a VM to another host (live or offline)",
                       description="Move VM NAME from the host of -c to the host of --to, like virsh migrate "
                                   "with virt-manager's defaults: persistent on the destination, undefined on "
                                   "the source. Checks first (CPU, same host, disks, name on the "
                                   "destination) and starts nothing if one fails; a failed or cancelled "
                                   "migration (Ctrl+C) leaves the VM running on the source.")
    m.add_argument("name", metavar="NAME", help="the domain to move (name or UUID)")
    m.add_argument("--to", dest="dest", metavar="URI", required=True, help="the destination host's URI")
    how = m.add_mutually_exclusive_group()
    how.add_argument("--live", dest="live", action="store_true", default=None,
                     help="move a running VM without stopping it (the default for a running VM)")
    how.add_argument("--offline", dest="live", action="store_false",
                     help="move the definition of a shut-off VM (the default for a shut-off VM)")
    m.add_argument("--copy-storage", action="store_true",
                   help="copy the disks that are not on shared storage (--copy-storage-all)")
    m.add_argument("--dest-pool", metavar="POOL",
                   help="the destination pool for copied disks (default: the pool of the same name)")
    m.add_argument("--transient", action="store_true",
                   help="do not define the VM on the destination (live only)")
    m.add_argument("--keep-source", action="store_true", help="keep the definition on the source")
    m.add_argument("--tunnelled", action="store_true",
                   help="send the data through libvirtd's connection (peer to peer: the source host "
                        "connects to --to itself)")
    m.add_argument("--bandwidth", metavar="MiB/s", type=int, help="limit the migration's bandwidth")
    m.add_argument("--max-downtime", metavar="MS", type=int, help="the longest pause of the guest at the end")
    m.add_argument("--migrateuri", metavar="URI",
                   help="where the destination's QEMU listens, e.g. tcp://10.0.0.2:49152")
    m.add_argument("--check", action="store_true", help="only run the checks; move nothing")
    m.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    return p


def _connects(args: argparse.Namespace) -> list[str]:
    value = getattr(args, "connect", None)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def resolve_uri(args: argparse.Namespace, config_uri: str | None) -> str:
    """The one URI a subcommand works on (the first -c)."""
    if args.demo:
        return demo_uri()
    given = _connects(args)
    return (given[0] if given else None) or os.environ.get("LIBVIRT_DEFAULT_URI") or config_uri or "qemu:///system"


def resolve_uris(args: argparse.Namespace, config) -> list[tuple[str, str]]:
    """The hosts the UI opens, as (name, URI): every -c, else
    $LIBVIRT_DEFAULT_URI, else every saved connection marked autoconnect,
    else qemu:///system. A URI saved in the config gets its saved name."""
    if args.demo:
        return [("", demo_uri())]
    saved = {c.uri: c.name for c in getattr(config, "connections", [])}
    given = _connects(args)
    if given:
        uris = list(dict.fromkeys(given))
    elif os.environ.get("LIBVIRT_DEFAULT_URI"):
        uris = [os.environ["LIBVIRT_DEFAULT_URI"]]
    else:
        auto = [c for c in getattr(config, "connections", []) if c.autoconnect]
        if auto:
            return [(c.name, c.uri) for c in auto]
        uris = ["qemu:///system"]
    return [(saved.get(u, ""), u) for u in uris]


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
        if len(_connects(args)) > 1:
            _err(f"vmtui {args.command}: works on one host: give one -c URI")
            return 2
        commands = {"create": cmd_create, "export": cmd_export, "list": cmd_list, "ip": cmd_ip,
                    "delete": cmd_delete, "migrate": cmd_migrate}
        try:
            return commands[args.command](args)
        except KeyboardInterrupt:
            return 130

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
    return run_ui(resolve_uris(args, config), config, readonly=args.readonly)


def run_ui(hosts, config, *, readonly: bool = False, instrument=None) -> int:
    """The terminal UI on ``hosts``: (name, URI) pairs (or one URI). Each
    connection starts opening before the UI is imported (Textual and the app
    take a good part of a second to import; opening a big host takes as
    long): the two overlap. ``instrument(service, app)``, when given, is
    called before the app runs with the first host's service
    (bench/bench_list.py times the launch through it)."""
    from .core.connection.eventloop import silence_default_error_handler
    from .core.connection.service import LibvirtService

    silence_default_error_handler()
    if isinstance(hosts, str):
        hosts = [("", hosts)]

    def service(name: str, uri: str) -> LibvirtService:
        svc = LibvirtService(uri, stats_interval=config.stats_interval, readonly=readonly,
                             reconnect=not uri.startswith("test:"), name=name)
        svc.open_early()
        return svc

    if len(hosts) == 1:
        services: LibvirtService | list[LibvirtService] = service("", hosts[0][1])
    else:
        from .core.connection.hosts import default_name, unique_name

        services = []
        for name, uri in hosts:
            services.append(service(unique_name(name or default_name(uri), {s.name for s in services}), uri))

    from .ui.app import VmtuiApp
    from .core import heap

    heap.settle()  # what the imports made lives as long as the process: out of the collector's way
    app = VmtuiApp(services, config)
    if instrument is not None:
        instrument(services[0] if isinstance(services, list) else services, app)
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
    if args.timeout <= 0 or args.timeout != args.timeout:
        _err(f"vmtui: create: --timeout {args.timeout:g}: must be a number of seconds above 0")
        return 2
    if (args.wait or args.console) and not args.dry_run and not doc.spec.start_install:
        _err(f"vmtui: create: --{'wait' if args.wait else 'console'}: the spec does not start the VM "
             "(start_install: false); there is nothing to wait for")
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

        follow = args.wait or args.console
        try:
            uuid = await create_vm(service, spec, osdb=osdb, progress=progress, paused=follow)
        except InvalidSpec as err:
            for issue in doc.issues(err.errors):
                _err(issue.format(doc.source))
            return 2
        except VmtuiError as err:
            _err(str(err))
            return 1
        print(f"Created VM '{spec.name}' (UUID {uuid})", flush=True)
        if not follow:
            return 0
        from .follow import follow_new_vm
        return await follow_new_vm(service, uuid, spec, wait=args.wait, console=args.console,
                                   timeout=args.timeout, quiet=args.quiet)
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


def _run_connected(args: argparse.Namespace, job) -> int:
    """Connect as the subcommands do, run ``await job(service)``, close."""
    import asyncio

    config = _command_config(args)
    if config is None:
        return 2

    async def run() -> int:
        service = await _connected_service(args, config)
        if service is None:
            return 1
        try:
            return await job(service)
        finally:
            await service.close()
    return asyncio.run(run())


def _domain_named(service, name: str):
    """The DomainInfo of domain ``name``, or None (said so)."""
    for d in service.domains.values():
        if d.name == name:
            return d
    _err(f"vmtui: no domain named '{name}' on {service.display_uri}")
    return None


def cmd_list(args: argparse.Namespace) -> int:
    return _run_connected(args, lambda service: _list(args, service))


async def _list(args: argparse.Namespace, service) -> int:
    from .core.errors import VmtuiError
    from .core.host import addresses

    reports = {}
    if not args.no_addresses and any(d.is_active for d in service.domains.values()):
        try:
            reports = await service.call(addresses.running_addresses, action="read the guests' addresses on",
                                         obj=service.display_uri)
        except VmtuiError as err:
            _err(f"vmtui: {err}")
    rows = [("NAME", "STATE", "" if args.no_addresses else "ADDRESSES")]
    for d in sorted(service.domains.values(), key=lambda d: d.name.lower()):
        report = reports.get(d.uuid)
        ips = ", ".join(f"{a.ip} ({a.source})" for a in report.addresses) if report and report.addresses else "-"
        rows.append((d.name, d.state, "" if args.no_addresses else ips if d.is_active else "-"))
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, state, ips in rows:
        print(f"{name:<{width[0]}}  {state:<{width[1]}}  {ips}".rstrip())
    return 0


def cmd_ip(args: argparse.Namespace) -> int:
    return _run_connected(args, lambda service: _ip(args, service))


async def _ip(args: argparse.Namespace, service) -> int:
    from .core.errors import VmtuiError
    from .core.host import addresses

    d = _domain_named(service, args.name)
    if d is None:
        return 1
    sources = tuple(args.source) if args.source else addresses.SOURCES
    try:
        report = await service.call(lambda c: addresses.guest_addresses(c, d.uuid, sources=sources),
                                    action="read the addresses of", obj=f"domain '{d.name}'")
    except VmtuiError as err:
        _err(str(err))
        return 1
    if not report.running:
        _err(f"vmtui: '{d.name}' is {d.state}: a VM has addresses only while it runs")
        return 1
    if not report.addresses:
        _err(f"vmtui: no address of '{d.name}' is known: {report.explain()}")
        return 1
    for a in report.addresses:
        print(f"{a.address}  {a.source}  {a.mac or '-'}  {a.interface or '-'}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    ask = not args.yes
    if ask and not (sys.stdin is not None and sys.stdin.isatty()):
        _err(f"vmtui: delete: standard input is not a terminal, so vmtui cannot ask: "
             f"add --yes to delete '{args.name}'")
        return 2
    return _run_connected(args, lambda service: _delete(args, service, ask))


async def _delete(args: argparse.Namespace, service, ask: bool) -> int:
    import asyncio

    from .core.errors import VmtuiError

    d = _domain_named(service, args.name)
    if d is None:
        return 1
    try:
        _overview, disks = await service.details(d.uuid)
    except VmtuiError as err:
        _err(str(err))
        return 1
    plan = [f"Delete domain '{d.name}'" + (f" (it is {d.state}: it will be forced off first)" if d.is_active
                                            else "")]
    keys = []
    for u in disks:
        what = u.disk.source or f"{u.disk.device} {u.disk.target} (empty)"
        if not args.storage:
            if u.volume_key:
                plan.append(f"  keep    {what} (no --storage)")
            continue
        if u.deletable:
            keys.append(u.volume_key)
            plan.append(f"  delete  {what}")
        elif u.disk.source:
            plan.append(f"  keep    {what} ({u.why_not_deletable})")
    for line in plan:
        _err(line)
    if ask:
        try:
            answer = await asyncio.to_thread(input, f"Delete '{d.name}'? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            _err("Nothing deleted.")
            return 1
    try:
        result = await service.delete(d.uuid, keys)
    except VmtuiError as err:
        _err(str(err))
        return 1
    print(f"Deleted domain '{result.name}'" + (" and " + ", ".join(result.deleted) if result.deleted else ""))
    if result.errors:
        _err("Not deleted: " + "; ".join(result.errors))
        return 1
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncio

    config = _command_config(args)
    if config is None:
        return 2
    for flag, value in (("--bandwidth", args.bandwidth), ("--max-downtime", args.max_downtime)):
        if value is not None and value <= 0:
            _err(f"vmtui migrate: {flag} must be a positive number")
            return 2
    return asyncio.run(_migrate(args, config))


class _ProgressLine:
    """One line on stderr, rewritten in place on a terminal; elsewhere a
    line at most every few seconds."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.shown = False
        self.last = 0.0

    def show(self, text: str) -> None:
        import time

        if self.quiet:
            return
        if self.tty:
            sys.stderr.write("\r\x1b[K" + text)
            sys.stderr.flush()
            self.shown = True
        elif time.monotonic() - self.last >= 5:
            self.last = time.monotonic()
            _err(text)

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = False


async def _migrate(args: argparse.Namespace, config) -> int:
    import asyncio
    import signal

    from .core.connection.hosts import default_name
    from .core.connection.service import LibvirtService
    from .core.errors import ConnectError, VmtuiError
    from .core.migrate import MigrationOptions
    from .core.migrate.job import MigrationCancelled, MigrationRefused, migrate, plan_migration

    saved = {c.uri: c.name for c in config.connections}
    src_uri = resolve_uri(args, config.autoconnect_uri)
    names = [saved.get(src_uri) or default_name(src_uri), saved.get(args.dest) or default_name(args.dest)]
    if names[0] == names[1]:
        names = [src_uri, args.dest]
    src = LibvirtService(src_uri, stats_interval=3600, reconnect=False, name=names[0])
    dst = LibvirtService(args.dest, stats_interval=3600, reconnect=False, name=names[1])
    try:
        for svc in (src, dst):
            try:
                await svc.connect()
            except ConnectError as err:
                _err(str(err))
                return 1
        d = next((d for d in src.domains.values() if d.name == args.name), None) or src.domains.get(args.name)
        if d is None:
            _err(f"vmtui migrate: no domain named '{args.name}' on {src_uri}")
            return 1
        live = d.is_active if args.live is None else args.live
        opts = MigrationOptions(live=live, copy_storage=args.copy_storage, persistent=not args.transient,
                                undefine_source=not args.keep_source, tunnelled=args.tunnelled,
                                bandwidth_mib=args.bandwidth, max_downtime_ms=args.max_downtime,
                                migrate_uri=args.migrateuri, dest_pool=args.dest_pool)
        try:
            plan = await plan_migration(src, dst, d.uuid, opts)
        except VmtuiError as err:
            _err(str(err))
            return 1
        for message in plan.warnings:
            _err(f"warning: {message}")
        if not plan.ok:
            _err(str(MigrationRefused(plan)))
            return 1
        if args.check:
            how = "live" if live else "offline"
            copied = "; copies " + ", ".join(f"{c.target} to {c.dest}" for c in plan.copied) if plan.copied else ""
            print(f"'{d.name}' can migrate ({how}) from {plan.source} to {plan.dest}{copied}")
            return 0
        line = _ProgressLine(args.quiet)
        cancel = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, cancel.set)
        except (NotImplementedError, RuntimeError):
            pass
        if not args.quiet:
            _err(f"Migrating '{d.name}' ({'live' if live else 'offline'}) from {plan.source} to {plan.dest}...")
        try:
            result = await migrate(src, dst, d.uuid, opts, plan=plan, cancel=cancel,
                                   progress=lambda p: line.show(f"  {p.text()}"))
        except MigrationCancelled as err:
            line.end()
            _err(str(err))
            return 130
        except VmtuiError as err:
            line.end()
            _err(str(err))
            return 1
        finally:
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError):
                pass
        line.end()
        print(result.summary())
        return 0
    finally:
        await asyncio.gather(src.close(), dst.close(), return_exceptions=True)


if __name__ == "__main__":
    raise SystemExit(main())
