"""Kickstart: pykickstart validation, starter template, OEMDRV ISO, initrd injection."""

import gzip
import io
import lzma
import shutil
import subprocess
import zlib

import pycdlib
import pytest

from tests.guest import CpioWriter
from tests.prereq import needs
from vmtui.core.provision.cloudinit import hash_password
from vmtui.core.provision.kickstart import (
    KICKSTART_INITRD_ARG,
    Problem,
    available_versions,
    build_oemdrv_iso,
    inject_into_initrd,
    newc_archive,
    starter_kickstart,
    validate_kickstart,
)

GOOD = """# a good kickstart
text
lang en_US.UTF-8
keyboard us
timezone Etc/UTC --utc
rootpw --iscrypted $6$abcdefgh$JZLxR0cJpNqY9aZrxzq3
network --bootproto=dhcp
clearpart --all --initlabel
autopart
reboot

%packages
@^minimal-environment
vim-enhanced
%end

%post
echo done > /root/post.txt
%end
"""


# -------------------------------------------------------------- validation


def test_available_versions():
    versions = available_versions()
    for v in ("RHEL8", "RHEL9", "F38", "F39", "F40"):
        assert v in versions
    assert versions.index("RHEL9") < versions.index("RHEL8")


@pytest.mark.parametrize("version", ["RHEL8", "RHEL9", "F40"])
def test_good_kickstart_validates_clean(version):
    assert validate_kickstart(GOOD, version) == []


def test_bad_command_gives_error_on_its_line():
    text = GOOD.replace("autopart\n", "autopart\nfrobnicate --now\n")
    problems = validate_kickstart(text, "RHEL9")
    assert problems == [Problem(10, "Unknown command: frobnicate", "error")]


def test_bad_option_and_several_errors_all_reported():
    text = "lang en_US.UTF-8\npart / --fstype=xfs --bogus\nbogus1\nbogus2\n"
    problems = validate_kickstart(text, "RHEL9")
    assert [(p.line, p.severity) for p in problems] == [(2, "error"), (3, "error"), (4, "error")]
    assert "--bogus" in problems[0].message


def test_removed_command_is_an_error():
    problems = validate_kickstart("install\n", "RHEL9")
    assert len(problems) == 1 and problems[0].line == 1 and problems[0].severity == "error"


def test_deprecated_command_gives_warning_with_line():
    text = GOOD.replace("text\n", "text\nautostep\n")
    problems = validate_kickstart(text, "RHEL9")
    assert len(problems) == 1
    p = problems[0]
    assert (p.line, p.severity) == (3, "warning")
    assert "deprecated" in p.message and "autostep" in p.message


def test_unterminated_section_and_unknown_section():
    problems = validate_kickstart("lang en_US\n%packages\n@core\n", "RHEL9")
    assert problems and problems[0].severity == "error" and "%end" in problems[0].message
    problems = validate_kickstart("%frobs\n%end\n", "RHEL9")
    assert problems == [Problem(1, "Unknown kickstart section: %frobs", "error")]


def test_unbalanced_quote_reported_and_rest_still_checked():
    text = 'lang en_US.UTF-8\nrootpw --plaintext "oops\nbogus\n%post\necho "unbalanced in a script is fine\n%end\n'
    problems = validate_kickstart(text, "RHEL9")
    assert [(p.line, p.severity) for p in problems] == [(2, "error"), (3, "error")]
    assert "closing quotation" in problems[0].message
    assert problems[1].message == "Unknown command: bogus"


def test_unknown_version():
    problems = validate_kickstart(GOOD, "NOSUCH42")
    assert len(problems) == 1 and problems[0].line == 0 and "NOSUCH42" in problems[0].message


def test_validation_leaves_warning_filters_alone():
    import warnings

    before = list(warnings.filters)
    validate_kickstart(GOOD.replace("text\n", "autostep\n"), "RHEL9")
    assert warnings.filters == before


# ----------------------------------------------------------------- starter


def test_starter_validates_clean_for_rhel9():
    ks = starter_kickstart(
        "de_DE.UTF-8", "de", "Europe/Berlin", hash_password("root-pw"),
        user="alice", user_password_hash=hash_password("alice-pw"),
        disk="vda", packages=("@^minimal-environment", "vim-enhanced"),
        post="echo hello > /etc/motd\n",
    )
    assert validate_kickstart(ks, "RHEL9") == []
    assert "root-pw" not in ks and "alice-pw" not in ks
    assert "rootpw --iscrypted '$6$" in ks
    assert "%post" in ks and "echo hello > /etc/motd" in ks
    assert "vim-enhanced" in ks and "--drives=vda" in ks


@pytest.mark.parametrize("version", ["RHEL8", "RHEL9", "F40"])
def test_minimal_starter_validates(version):
    ks = starter_kickstart("en_US.UTF-8", "us", "UTC", None)
    assert "rootpw --lock" in ks
    assert validate_kickstart(ks, version) == []


def test_starter_parsed_values():
    from pykickstart.parser import KickstartParser
    from pykickstart.version import makeVersion

    root_hash = hash_password("r")
    ks = starter_kickstart("en_GB.UTF-8", "gb", "Europe/London", root_hash, user="bob", disk="sda")
    handler = makeVersion("RHEL9")
    KickstartParser(handler).readKickstartFromString(ks)
    assert handler.lang.lang == "en_GB.UTF-8"
    assert handler.timezone.timezone == "Europe/London"
    assert handler.rootpw.password == root_hash and handler.rootpw.isCrypted
    assert handler.user.userList[0].name == "bob"
    assert handler.ignoredisk.onlyuse == ["sda"]


# ------------------------------------------------------------------ OEMDRV


def test_oemdrv_iso_contents():
    ks = starter_kickstart("en_US.UTF-8", "us", "UTC", hash_password("x"))
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(build_oemdrv_iso(ks)))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "OEMDRV"
        assert iso.has_joliet() and iso.has_rock_ridge()
        names = {c.rock_ridge.name() for c in iso.list_children(rr_path="/") if c.rock_ridge and not c.is_dot() and not c.is_dotdot()}
        assert names == {b"ks.cfg"}
        for path in ({"rr_path": "/ks.cfg"}, {"joliet_path": "/ks.cfg"}, {"iso_path": "/KS.CFG;1"}):
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, **path)
            assert out.getvalue() == ks.encode()
    finally:
        iso.close()


# ------------------------------------------------------------------ initrd


def _split_initrd(data: bytes) -> list[bytes]:
    """Split an initrd the way the kernel reads it: zero padding skipped,
    compressed members decompressed, uncompressed newc archives up to their
    TRAILER!!!. Returns the cpio archives."""
    parts = []
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            pos += 1
            continue
        rest = data[pos:]
        if rest.startswith(b"\x1f\x8b"):
            dec = zlib.decompressobj(wbits=31)
            parts.append(dec.decompress(rest) + dec.flush())
            pos = len(data) - len(dec.unused_data)
        elif rest.startswith(b"\xfd7zXZ"):
            dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            parts.append(dec.decompress(rest))
            pos = len(data) - len(dec.unused_data)
        elif rest.startswith(b"070701"):
            assert pos % 4 == 0, "uncompressed cpio must start 4-byte aligned"
            end = 0
            while True:
                header = rest[end:end + 110]
                assert header[:6] == b"070701"
                filesize = int(header[54:62], 16)
                namesize = int(header[94:102], 16)
                name = rest[end + 110:end + 110 + namesize - 1]
                end += 110 + namesize
                end += -end % 4
                end += filesize
                end += -end % 4
                if name == b"TRAILER!!!":
                    break
            parts.append(rest[:end])
            pos += end
        else:
            raise AssertionError(f"junk at offset {pos}: {rest[:8]!r}")
    return parts


def _original_initrd(compress) -> bytes:
    w = CpioWriter()
    w.file("init", b"#!/bin/sh\necho hi\n", perm=0o755)
    w.file("etc/os-release", b"NAME=test\n")
    w.symlink("bin/sh", "busybox")
    return compress(w.finish())


def _extract(archive: bytes, dest) -> None:
    dest.mkdir(exist_ok=True)
    subprocess.run(
        ["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
        input=archive, cwd=dest, check=True, capture_output=True,
    )


@needs(bool(shutil.which("cpio")), "needs the cpio tool")
@pytest.mark.parametrize(
    "compress",
    [gzip.compress, lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32), lambda b: b],
    ids=["gzip", "xz", "plain"],
)
def test_inject_into_initrd(tmp_path, compress):
    original = _original_initrd(compress)
    ks = "lang en_US.UTF-8\nrootpw --lock\n"
    result = inject_into_initrd(original, ks)
    assert result.startswith(original)
    parts = _split_initrd(result)
    assert len(parts) == 2
    root = tmp_path / "root"
    for part in parts:  # later archives overlay earlier ones, as in the kernel
        _extract(part, root)
    assert (root / "init").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (root / "etc/os-release").read_bytes() == b"NAME=test\n"
    assert (root / "bin/sh").is_symlink()
    assert (root / "ks.cfg").read_bytes() == ks.encode()
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=parts[1], capture_output=True, check=True).stdout
    assert listing.split() == [b"ks.cfg"]


def test_inject_pads_to_four_bytes():
    original = gzip.compress(b"not really a cpio" * 3)
    for extra in range(4):
        blob = original + b"x" * extra
        result = inject_into_initrd(blob, "text\n")
        start = result.index(b"070701", len(blob))
        assert start % 4 == 0 and set(result[len(blob):start]) <= {0}


def test_newc_archive_format():
    archive = newc_archive({"ks.cfg": b"abc"})
    assert archive.startswith(b"070701")
    assert len(archive) % 4 == 0
    assert b"ks.cfg\0" in archive and b"TRAILER!!!\0" in archive
    header = archive[:110]
    assert int(header[14:22], 16) == 0o100644  # mode
    assert int(header[54:62], 16) == 3  # filesize
    assert int(header[94:102], 16) == len(b"ks.cfg\0")  # namesize


def test_kernel_argument():
    assert KICKSTART_INITRD_ARG == "inst.ks=file:/ks.cfg"


def test_the_spec_validation_reports_what_the_editor_checks():
    """One check in core (kickstart.check_kickstart): the spec validation
    turns its problems into the field's messages, line by line."""
    from vmtui.core.create.builder import disk_targets
    from vmtui.core.create.validation import kickstart_problems
    from vmtui.core.create.vmspec import DiskSpec, InstallSource, VmSpec
    from vmtui.core.provision.kickstart import check_kickstart
    text = GOOD + "rootpw hunter2\nignoredisk --only-use=sdb\n"
    spec = VmSpec(name="ks", disks=[DiskSpec(bus="sata")],
                  install=InstallSource(kind="iso", iso="/i.iso",
                                        kickstart={"text": text, "version": "RHEL9", "delivery": "oemdrv"}))
    found = check_kickstart(text, "RHEL9", disk_targets(spec))
    assert {p.message.split(":")[0] for p in found} >= {"rootpw", "the VM has no disk 'sdb' (its disks"}
    assert [(fe.line, fe.message, fe.severity) for fe in kickstart_problems(spec)] == \
        [(p.line, f"line {p.line}: {p.message}", p.severity) for p in found]
