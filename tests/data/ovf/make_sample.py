#!/usr/bin/env python3
"""Build tests/data/ovf/appliance.ova: a small hand-written OVF 1.0 appliance
(two empty stream-optimized VMDKs, SHA256 manifest) used by the import-dialog
tests, snapshots and screenshots. Run again only to change it."""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

from tests.test_ovf import OVF1  # noqa: E402  (the VMware-style sample envelope)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        sizes = {}
        for name, size in (("web-disk1.vmdk", "16M"), ("web-disk2.vmdk", "8M")):
            subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized",
                            str(t / name), size], check=True)
            sizes[name] = (t / name).stat().st_size
        text = OVF1.format(size1=sizes["web-disk1.vmdk"], size2=sizes["web-disk2.vmdk"], cap1=16,
                           cap2=8 * 1024 * 1024)
        (t / "web.ovf").write_text(text)
        lines = [f"SHA256({n})= {hashlib.sha256((t / n).read_bytes()).hexdigest()}"
                 for n in ("web.ovf", "web-disk1.vmdk", "web-disk2.vmdk")]
        (t / "web.mf").write_text("\n".join(lines) + "\n")
        with tarfile.open(HERE / "appliance.ova", "w", format=tarfile.USTAR_FORMAT) as tf:
            for n in ("web.ovf", "web.mf", "web-disk1.vmdk", "web-disk2.vmdk"):
                ti = tf.gettarinfo(t / n, arcname=n)
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mtime = 1_700_000_000
                with open(t / n, "rb") as fh:
                    tf.addfile(ti, fh)


if __name__ == "__main__":
    main()
