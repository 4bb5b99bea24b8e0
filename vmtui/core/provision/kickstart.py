"""Anaconda kickstart files: validation (pykickstart), a starter template,
and delivery without a web server the guest must reach.

* :func:`validate_kickstart` -- parse with pykickstart's handler for a syntax
  version (``RHEL9``, ``F40`` ...); errors and deprecation warnings come back
  as :class:`Problem` records with 1-based line numbers (0: unknown).
  :func:`check_kickstart` adds plain-text passwords and disks the VM will
  not have: what the editor and the spec validation report.
* :func:`starter_kickstart` -- a minimal, valid kickstart from the wizard's
  answers (password *hashes* only).
* :func:`build_oemdrv_iso` -- for ISO installs: a small ISO labelled
  ``OEMDRV`` holding ``ks.cfg``; Anaconda picks it up by itself.
* :func:`inject_into_initrd` -- for network (kernel + initrd) installs:
  append a newc cpio archive with ``/ks.cfg`` to the initrd and boot with
  :data:`KICKSTART_INITRD_ARG`.
"""

from __future__ import annotations

import functools
import io
import re
import shlex
import threading
import warnings
from dataclasses import dataclass
from typing import Iterator, Sequence

OEMDRV_VOLUME_LABEL = "OEMDRV"
#: Kernel argument that makes Anaconda read the injected file.
KICKSTART_INITRD_ARG = "inst.ks=file:/ks.cfg"
DEFAULT_VERSION = "RHEL9"

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding: ``severity`` is ``"error"`` or ``"warning"``."""

    line: int
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.severity}: {self.message}"


def available_versions() -> list[str]:
    """Syntax versions pykickstart knows, newest RHEL first, then Fedora
    newest first (older than RHEL7 / F30 left out), e.g. ``RHEL10, RHEL9,
    RHEL8, RHEL7, F46 ... F30``."""
    from pykickstart.version import versionMap

    rhel = sorted(
        (k for k in versionMap if re.fullmatch(r"RHEL\d+", k) and int(k[4:]) >= 7),
        key=lambda k: -int(k[4:]),
    )
    fedora = sorted(
        (k for k in versionMap if re.fullmatch(r"F\d+", k) and int(k[1:]) >= 30),
        key=lambda k: -int(k[1:]),
    )
    return rhel + fedora


_LINE_RE = re.compile(r"\bline (\d+)")
_WARNINGS_LOCK = threading.Lock()


def _clean(msg: str) -> str:
    return " ".join(str(msg).split())


_DEPRECATED_RE = re.compile(r"Ignoring deprecated (command|option) on line \d+: The (\S+) (?:command|option) has "
                            r"been deprecated and no longer has any effect\..*", re.S)


def _short_warning(msg: str) -> str:
    """pykickstart's four-sentence deprecation text, in one line."""
    m = _DEPRECATED_RE.fullmatch(msg)
    if m:
        return f"deprecated {m.group(1)} {m.group(2)}: it has no effect and may become an error later; remove it"
    return msg


def validate_kickstart(text: str, version: str = DEFAULT_VERSION) -> list[Problem]:
    """Parse ``text`` as kickstart syntax ``version``; collect every error
    (parsing continues after one) and deprecation/parse warnings.
    ``%include`` files are not followed (they live on the guest)."""
    from pykickstart.errors import KickstartError, KickstartParseWarning
    from pykickstart.parser import KickstartParser
    from pykickstart.version import makeVersion

    try:
        handler = makeVersion(version)
    except KickstartError as err:
        return [Problem(0, f"unknown kickstart version {version!r}: {_clean(err.message)}")]

    problems: list[Problem] = []

    class _Parser(KickstartParser):
        current = 0
        command = ""

        def handleCommand(self, lineno, args):  # noqa: N802 (pykickstart API)
            self.current = lineno
            self.command = args[0] if args else ""
            return super().handleCommand(lineno, args)

        def _tryFunc(self, fn):  # noqa: N802 -- record instead of print/raise
            try:
                fn()
            except KickstartError as err:
                self.errorsCount += 1
                problems.append(Problem(err.lineno or self.current, _clean(err.message) or _clean(err)))
            except Exception as err:  # noqa: BLE001 -- pykickstart has commands it cannot parse
                self.errorsCount += 1
                problems.append(Problem(self.current, _unparsable(self.command, version, err)))

    parser = _Parser(handler, followIncludes=False, errorsAreFatal=False, unknownSectionIsFatal=True)

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text_ = _clean(message)
        m = _LINE_RE.search(text_)
        where = int(m.group(1)) if m else parser.current
        if issubclass(category, KickstartParseWarning):
            problems.append(Problem(where, _short_warning(text_), WARNING))

    # pykickstart stops at the first line shlex cannot split (an unbalanced
    # quote raises a bare ValueError): report such lines and blank them out
    # so the rest of the file is still checked.
    lines = text.splitlines(keepends=True)
    for index, message in _unsplittable_lines(lines, parser._validState):
        problems.append(Problem(index + 1, f"cannot split the line: {message}"))
        lines[index] = "\n"

    # warnings.catch_warnings swaps process-wide state: one parse at a time
    # (the editor checks in a worker thread, and a newer check may start
    # before an older one has finished)
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = showwarning
        try:
            parser.readKickstartFromString("".join(lines))
        except KickstartError as err:  # section-level errors stop the parser
            problems.append(Problem(err.lineno or parser.current, _clean(err.message) or _clean(err)))
        except Exception as err:  # noqa: BLE001 -- never let the editor crash on odd input
            problems.append(Problem(parser.current, _unparsable(parser.command, version, err)))
    problems.sort(key=lambda p: (p.line, p.severity != ERROR))
    return problems


def _unparsable(command: str, version: str, err: Exception) -> str:
    if isinstance(err, TypeError) and "not implemented" in str(err):
        return f"{command} is not supported in {version} (it was removed)"
    return f"{command or 'this line'} cannot be checked: {_clean(err)}"


def _unsplittable_lines(lines: list[str], is_section) -> Iterator[tuple[int, str]]:
    """(0-based index, error) of the lines pykickstart would shlex-split and
    fail on: commands, and section headers / ``%end`` (section bodies are
    passed to their section verbatim)."""
    in_section = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not in_section):
            continue
        if in_section:
            first = stripped.split()[0]
            if first not in ("%end", "%include") and not is_section(first):
                continue
        try:
            args = shlex.split(line, comments=not in_section)
        except ValueError as err:
            yield index, str(err)
            continue
        if not args:
            continue
        if args[0] == "%end":
            in_section = False
        elif args[0].startswith("%") and args[0] not in ("%include", "%ksappend"):
            in_section = True


def _q(value: str) -> str:
    return shlex.quote(value)


def starter_kickstart(
    lang: str,
    keyboard: str,
    timezone: str,
    root_password_hash: str | None,
    user: str | None = None,
    user_password_hash: str | None = None,
    disk: str = "vda",
    packages: tuple[str, ...] | list[str] = ("@^minimal-environment",),
    post: str | None = None,
) -> str:
    """A minimal text-mode install onto ``disk`` (whole disk, automatic
    partitioning), reboot at the end. Passwords are given as crypt hashes
    (see :func:`vmtui.core.provision.cloudinit.hash_password`); without a
    root hash the root account is locked. ``user`` joins ``wheel``."""
    lines = [
        "# Kickstart generated by vmtui",
        "text",
        f"lang {_q(lang)}",
        f"keyboard --vckeymap={_q(keyboard)} --xlayouts={_q(keyboard)}",
        f"timezone {_q(timezone)} --utc",
        "network --bootproto=dhcp --activate",
    ]
    if root_password_hash:
        lines.append(f"rootpw --iscrypted {_q(root_password_hash)}")
    else:
        lines.append("rootpw --lock")
    if user:
        cmd = f"user --name={_q(user)} --groups=wheel"
        if user_password_hash:
            cmd += f" --iscrypted --password={_q(user_password_hash)}"
        lines.append(cmd)
    lines += [
        f"ignoredisk --only-use={_q(disk)}",
        "zerombr",
        f"clearpart --all --initlabel --drives={_q(disk)}",
        "autopart",
        f"bootloader --boot-drive={_q(disk)}",
        "firstboot --disable",
        "reboot",
        "",
        "%packages",
        *packages,
        "%end",
    ]
    if post:
        lines += ["", "%post --log=/root/ks-post.log", post.rstrip("\n"), "%end"]
    return "\n".join(lines) + "\n"


def build_oemdrv_iso(ks_text: str | bytes) -> bytes:
    """An ISO labelled ``OEMDRV`` with ``ks.cfg`` at its root (Joliet + Rock
    Ridge names exact); attach it as a second CD-ROM for ISO installs."""
    from .iso import small_iso

    data = ks_text.encode("utf-8") if isinstance(ks_text, str) else ks_text
    return small_iso(OEMDRV_VOLUME_LABEL, [("KS.CFG", "ks.cfg", data)])


# --------------------------------------------------------------------------
# initrd injection

CPIO_NEWC_MAGIC = b"070701"
_S_IFREG = 0o100000


def _pad4(buf: io.BytesIO) -> None:
    buf.write(b"\0" * (-buf.tell() % 4))


def _cpio_entry(buf: io.BytesIO, name: str, data: bytes, mode: int, ino: int) -> None:
    namez = name.encode("utf-8") + b"\0"
    fields = (
        ino, mode, 0, 0,  # ino, mode, uid, gid
        1, 0, len(data),  # nlink, mtime, filesize
        0, 0, 0, 0,  # devmajor, devminor, rdevmajor, rdevminor
        len(namez), 0,  # namesize, check
    )
    buf.write(CPIO_NEWC_MAGIC + b"".join(b"%08X" % f for f in fields))
    buf.write(namez)
    _pad4(buf)
    buf.write(data)
    _pad4(buf)


def newc_archive(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """A newc ("070701") cpio archive of regular files (root-owned, mtime 0)."""
    buf = io.BytesIO()
    for i, (name, data) in enumerate(files.items()):
        # high inode numbers: no clash with the archive we are appended to
        _cpio_entry(buf, name.lstrip("/"), data, _S_IFREG | mode, 0x7FFF0000 + i)
    _cpio_entry(buf, "TRAILER!!!", b"", 0, 0)
    return buf.getvalue()


def inject_into_initrd(initrd: bytes, ks_text: str | bytes, name: str = "ks.cfg") -> bytes:
    """``initrd`` (compressed or not) followed by an uncompressed newc cpio
    holding ``/ks.cfg``. The kernel unpacks concatenated archives in order;
    the appended one starts on a 4-byte boundary (zero padding, which the
    kernel skips). Boot with :data:`KICKSTART_INITRD_ARG`."""
    return bytes(initrd) + initrd_suffix(len(initrd), ks_text, name)


def initrd_suffix(initrd_size: int, ks_text: str | bytes, name: str = "ks.cfg") -> bytes:
    """What :func:`inject_into_initrd` appends to an initrd of ``initrd_size``
    bytes: zero padding to a 4-byte boundary, then the newc cpio."""
    data = ks_text.encode("utf-8") if isinstance(ks_text, str) else ks_text
    return b"\0" * (-initrd_size % 4) + newc_archive({name: data})


# --------------------------------------------------------------------------
# which syntax version, which delivery

OEMDRV = "oemdrv"
INITRD = "initrd"
#: Install source kinds a kickstart can be delivered to, and how.
DELIVERY_FOR_KIND = {"iso": OEMDRV, "cdrom": OEMDRV, "url": INITRD}


def version_for_os(os_info=None, short_id: str | None = None) -> str:
    """The pykickstart syntax version for an OS: ``fedora39`` -> ``F39``,
    ``rhel9.4`` / ``rocky9`` / ``centos-stream9`` -> ``RHEL9``. Releases
    newer than pykickstart knows get its newest of that line; anything else
    :data:`DEFAULT_VERSION`. ``os_info`` is an osinfo OsInfo (its
    ``distro`` and ``version`` are used) or None."""
    versions = available_versions()
    distro = (getattr(os_info, "distro", None) or "") if os_info is not None else ""
    version = (getattr(os_info, "version", None) or "") if os_info is not None else ""
    sid = short_id or (getattr(os_info, "short_id", None) if os_info is not None else None) or ""
    if not distro or not version:
        m = re.match(r"([a-z][a-z-]*?)-?(\d+)", sid)
        if m:
            distro = distro or m.group(1).rstrip("-")
            version = version or m.group(2)
    m = re.match(r"(\d+)", version or "")
    if not m:
        return DEFAULT_VERSION
    major = int(m.group(1))
    if distro == "fedora":
        prefix = "F"
    elif distro in ("rhel", "centos", "centos-stream", "rocky", "almalinux", "alma", "ol", "oel",
                    "circle", "eurolinux", "navy", "miraclelinux", "scientificlinux"):
        prefix = "RHEL"
    else:
        return DEFAULT_VERSION
    line = sorted((int(v[len(prefix):]) for v in versions
                   if v.startswith(prefix) and v[len(prefix):].isdigit()), reverse=True)
    if not line:
        return DEFAULT_VERSION
    best = next((n for n in line if n <= major), None)
    return f"{prefix}{best if best is not None else line[-1]}"


def delivery_for(kind: str) -> tuple[str | None, str]:
    """(``"oemdrv"`` / ``"initrd"`` / None, why) for an install source kind."""
    method = DELIVERY_FOR_KIND.get(kind)
    if method == OEMDRV:
        return method, ("ISO/CD-ROM install: a second small CD-ROM labelled OEMDRV holds ks.cfg; "
                        "Anaconda finds and reads it by itself (no web server, no boot arguments)")
    if method == INITRD:
        return method, ("network install: ks.cfg is appended to the installer's initrd (a cpio "
                        f"archive) and the kernel boots with {KICKSTART_INITRD_ARG}")
    return None, (f"a '{kind}' source runs no Anaconda installer: a kickstart is only used by ISO, "
                  "CD-ROM and network (install tree) installs")


def oemdrv_volume_name(vm_name: str, tag: str = "") -> str:
    """Name of the OEMDRV volume uploaded for a VM's install."""
    safe = re.sub(r"[^A-Za-z0-9._+-]", "-", vm_name).strip("-.") or "vm"
    return f"vmtui-{safe}{'-' + tag if tag else ''}-ks-oemdrv.iso"


def plaintext_password_warnings(text: str) -> list[Problem]:
    """``rootpw`` / ``user --password`` given in plain text (not
    ``--iscrypted``, not ``--lock``): valid kickstart, but the password then
    sits readable in the file and on the OEMDRV volume or initrd."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            args = shlex.split(line, comments=True)
        except ValueError:
            continue
        if not args:
            continue
        cmd, opts = args[0], args[1:]
        crypted = "--iscrypted" in opts
        if cmd == "rootpw":
            plain = not crypted and "--lock" not in opts and (
                "--plaintext" in opts or any(not o.startswith("--") for o in opts))
        elif cmd == "user":
            plain = not crypted and any(o.startswith("--password") for o in opts)
        else:
            continue
        if plain:
            out.append(Problem(n, f"{cmd}: the password is in plain text here (and on the VM's install media); "
                                  "use --iscrypted with a hash (the starter template makes one)", WARNING))
    return out


_DISK_OPTS = re.compile(r"--(?:only-use|drives|boot-drive|ondisk|ondrive)[= ]\s*['\"]?([^\s'\"]+)")


def disk_name_warnings(text: str, disks: Sequence[str]) -> list[Problem]:
    """Disks a kickstart names (``ignoredisk --only-use=vda``, ``part
    --ondisk``, ...) that are not among ``disks``, the VM's target devs: the
    installer would stop there (a VM whose disk is SATA has ``sda``)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in _DISK_OPTS.finditer(line):
            for disk in m.group(1).split(","):
                disk = disk.removeprefix("/dev/")
                if not disk or "/" in disk or "*" in disk or "?" in disk or disk in disks:
                    continue
                have = ", ".join(disks) if disks else "none"
                out.append(Problem(n, f"the VM has no disk '{disk}' (its disks: {have})", WARNING))
    return out


@functools.lru_cache(maxsize=16)
def _validated(text: str, version: str) -> tuple[Problem, ...]:
    return tuple(validate_kickstart(text, version))


def check_kickstart(text: str, version: str, disks: Sequence[str] | None = None) -> list[Problem]:
    """Everything wrong with a kickstart for one syntax version: pykickstart's
    errors and deprecation warnings (the last results are cached), passwords
    in plain text, and -- given the VM's disk names -- disks it names that the
    VM will not have. The editor and the spec validation both check with this."""
    found = list(_validated(text, version)) + plaintext_password_warnings(text)
    if disks is not None:
        found += disk_name_warnings(text, disks)
    return found
