"""Errors read as sentences naming the object, the cause and a next step."""

import libvirt

from vmtui.core.errors import VmtuiError, from_libvirt, hint_for, is_connection_lost


class FakeError(libvirt.libvirtError):
    def __init__(self, msg, code=libvirt.VIR_ERR_INTERNAL_ERROR):
        Exception.__init__(self, msg)
        self.err = (code, 0, msg, 0, "", None, None, 0, 0)


def test_kvm_failure_gets_a_tcg_hint():
    err = FakeError("internal error: process exited while connecting to monitor: "
                    "Could not access KVM kernel module: No such file or directory\n"
                    "qemu-system-x86_64: failed to initialize kvm: No such file or directory")
    e = from_libvirt("start", "domain 'web-01'", err)
    assert e.message.startswith("Cannot start domain 'web-01': internal error: process exited")
    assert "QEMU (TCG)" in e.message and "<domain type='qemu'>" in e.message
    assert "\n" in e.message  # the hint on its own line


def test_plain_error_has_no_hint():
    e = from_libvirt("pause", "domain 'x'", FakeError("Requested operation is not valid: domain is not running",
                                                       libvirt.VIR_ERR_OPERATION_INVALID))
    assert e.message == "Cannot pause domain 'x': Requested operation is not valid: domain is not running"
    assert e.code == libvirt.VIR_ERR_OPERATION_INVALID


def test_permission_hint():
    assert "libvirt group" in hint_for("connect", FakeError("authentication failed: access denied"))


def test_connection_lost_detection():
    assert is_connection_lost(FakeError("internal error: client socket is closed"))
    assert is_connection_lost(FakeError("x", libvirt.VIR_ERR_INVALID_CONN))
    assert not is_connection_lost(FakeError("domain not found", libvirt.VIR_ERR_NO_DOMAIN))
    assert not is_connection_lost(ValueError("x"))


def test_vmtui_error_passes_through():
    e = VmtuiError("a", "b", "c")
    assert from_libvirt("x", "y", e) is e
