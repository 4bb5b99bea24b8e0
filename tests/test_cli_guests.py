"""``vmtui list``, ``vmtui ip``, ``vmtui delete`` and ``create --wait`` on the
test driver (each process gets its own copy of the host); the real run is
tests/real/test_real_reach.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.ptyterm import PtyTerminal

from .conftest import SMALL_HOST, host_uri

URI = host_uri(SMALL_HOST)


def vmtui(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LIBVIRT_DEFAULT_URI"}
    return subprocess.run([sys.executable, "-m", "vmtui", *args, "-c", URI], capture_output=True, text=True,
                          env=env, timeout=120, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)


def test_list_shows_every_vm_with_the_running_ones_addresses():
    out = vmtui("list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "ADDRESSES"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert list(rows) == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert rows["alpha"][0] == "running" and rows["alpha"][1].startswith("192.168.122.")
    assert rows["alpha"][2] == "(lease)"
    assert rows["bravo"] == ["shut", "off", "-"]
    out = vmtui("list", "--no-addresses")
    assert out.returncode == 0 and "192.168" not in out.stdout and "ADDRESSES" not in out.stdout


def test_ip_prints_address_source_mac_interface():
    out = vmtui("ip", "alpha")
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    address, source, mac, iface = line.split()
    assert address.startswith("192.168.122.") and address.endswith("/24")
    assert source == "lease" and mac.count(":") == 5 and iface
    out = vmtui("ip", "alpha", "--source", "arp")
    assert out.returncode == 0 and out.stdout.split()[1] == "arp"
    out = vmtui("ip", "alpha", "--source", "agent")
    assert out.returncode == 1
    assert out.stderr.strip() == "vmtui: no address of 'alpha' is known: agent: no guest agent channel"


def test_ip_of_a_vm_that_is_off_or_missing():
    out = vmtui("ip", "bravo")
    assert out.returncode == 1
    assert out.stderr.strip() == "vmtui: 'bravo' is shut off: a VM has addresses only while it runs"
    out = vmtui("ip", "nosuch")
    assert out.returncode == 1 and "no domain named 'nosuch' on test://" in out.stderr
    assert "Traceback" not in out.stderr


def test_delete_with_storage_keeps_what_another_vm_uses():
    out = vmtui("delete", "alpha", "--storage", "--yes")
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        "Delete domain 'alpha' (it is running: it will be forced off first)",
        "  delete  /var/lib/libvirt/images/alpha.qcow2",
        "  keep    /var/lib/libvirt/images/shared.img (used by bravo)",
    ]
    assert out.stdout.strip() == "Deleted domain 'alpha' and /var/lib/libvirt/images/alpha.qcow2"


def test_delete_without_storage_names_the_volumes_it_keeps():
    out = vmtui("delete", "echo", "--yes")
    assert out.returncode == 0, out.stderr
    assert "  keep    /var/lib/libvirt/images/echo.qcow2 (no --storage)" in out.stderr.splitlines()
    assert out.stdout.strip() == "Deleted domain 'echo'"


def test_delete_asks_only_on_a_terminal():
    out = vmtui("delete", "alpha")
    assert out.returncode == 2
    assert "standard input is not a terminal" in out.stderr and "--yes" in out.stderr
    out = vmtui("delete", "nosuch", "--yes")
    assert out.returncode == 1 and "no domain named 'nosuch'" in out.stderr


def _in_a_terminal(*args: str) -> PtyTerminal:
    env = {k: v for k, v in os.environ.items() if k != "LIBVIRT_DEFAULT_URI"}
    return PtyTerminal([sys.executable, "-m", "vmtui", *args, "-c", URI], cols=120, rows=30, env=env)


def _exit_code(term: PtyTerminal, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while term.alive():
        assert time.monotonic() < deadline, term.text()
        time.sleep(0.02)
    term.close()
    return os.waitstatus_to_exitcode(term.exit_status)


def test_delete_confirms_on_a_terminal():
    term = _in_a_terminal("delete", "delta", "--storage")
    term.wait_for("Delete 'delta'? [y/N]", timeout=60)
    assert "delete  /var/lib/libvirt/images/delta.qcow2" in term.text()
    term.send("n\r")
    assert _exit_code(term) == 1
    assert "Nothing deleted." in term.text()
    term = _in_a_terminal("delete", "delta", "--storage")
    term.wait_for("Delete 'delta'? [y/N]", timeout=60)
    term.send("y\r")
    assert _exit_code(term) == 0
    assert "Deleted domain 'delta' and /var/lib/libvirt/images/delta.qcow2" in term.text()


def test_create_wait_gives_up_at_the_time_limit_and_says_why(tmp_path):
    spec = tmp_path / "vm.yaml"
    spec.write_text("name: waiter\nvirt_type: qemu\nmemory: 1G\n"
                    "install: {kind: iso, iso: default/install.iso}\ndisks: [{size: 2G}]\n")
    out = vmtui("create", "--from", str(spec), "--wait", "--timeout", "1", "-q")
    assert out.returncode == 3, out.stderr
    assert out.stdout.startswith("Created VM 'waiter'")
    err = out.stderr
    assert "vmtui: cannot read the serial console of 'waiter': this function is not supported" in err
    assert ("vmtui: VM 'waiter' is not ready: not ready within 1 s: its console could not be read: "
            "this function is not supported by the connection driver: virDomainOpenConsole") in err
    assert "Addresses: 192.168.122." in err
    assert "Traceback" not in err


def test_create_wait_needs_a_vm_that_starts(tmp_path):
    spec = tmp_path / "vm.yaml"
    spec.write_text("name: later\nvirt_type: qemu\nstart_install: false\n"
                    "install: {kind: iso, iso: default/install.iso}\n")
    out = vmtui("create", "--from", str(spec), "--wait")
    assert out.returncode == 2
    assert "--wait: the spec does not start the VM (start_install: false)" in out.stderr
    out = vmtui("create", "--from", str(spec), "--wait", "--timeout", "-5")
    assert out.returncode == 2 and "--timeout -5: must be a number of seconds above 0" in out.stderr
