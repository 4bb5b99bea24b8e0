"""Errors that reach the user: readable, naming the object and the cause."""

from __future__ import annotations

import libvirt


class VmtuiError(Exception):
    """An error meant for a person: `str()` is the whole message.

    ``action`` says what was being done ("start"), ``obj`` names the object
    ("domain 'web-01'"), ``cause`` is libvirt's own message, ``hint`` an
    optional next step.
    """

    def __init__(self, action: str, obj: str, cause: str, hint: str = "", code: int | None = None):
        self.action = action
        self.obj = obj
        self.cause = cause.strip()
        self.hint = hint
        self.code = code
        super().__init__(self.message)

    @property
    def message(self) -> str:
        head = f"Cannot {self.action} {self.obj}" if self.obj else f"Cannot {self.action}"
        text = f"{head}: {self.cause}" if self.cause else head
        if self.hint:
            text += f"\n{self.hint}"
        return text


class ConnectError(VmtuiError):
    """Opening a connection failed."""


class AuthFailed(ConnectError):
    """ssh could not log in without asking (a password, an unknown host
    key): vmtui never lets ssh prompt, the hint says what to set up."""


class CallTimeout(VmtuiError):
    """A libvirt call did not answer within its time limit."""


class Disconnected(VmtuiError):
    """The connection is down (a reconnect may be under way)."""


class Unsupported(VmtuiError):
    """The driver or hypervisor cannot do this at all (libvirt's
    VIR_ERR_NO_SUPPORT / VIR_ERR_ARGUMENT_UNSUPPORTED): asking again will not help."""


class InvalidState(VmtuiError):
    """The object is not in a state that allows this, e.g. a domain that is
    not running (libvirt's VIR_ERR_OPERATION_INVALID)."""

    @property
    def not_running(self) -> bool:
        return "not running" in self.cause


#: The VmtuiError subclass for a libvirt error code (others: VmtuiError).
_TYPED: dict[int, type[VmtuiError]] = {
    libvirt.VIR_ERR_NO_SUPPORT: Unsupported,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED: Unsupported,
    libvirt.VIR_ERR_OPERATION_INVALID: InvalidState,
}


def libvirt_message(err: BaseException) -> str:
    if isinstance(err, libvirt.libvirtError):
        msg = err.get_error_message() or str(err)
    else:
        msg = str(err) or type(err).__name__
    return " ".join(msg.split())


def hint_for(action: str, err: BaseException) -> str:
    """A next step for well-known failures."""
    msg = libvirt_message(err).lower()
    if "kvm" in msg and ("not available" in msg or "/dev/kvm" in msg or "failed to initialize kvm" in msg
                         or "could not access kvm" in msg or "no accelerator" in msg):
        return ("This host cannot run KVM guests right now (no usable /dev/kvm or hardware "
                "virtualization). Change the virtualization type to QEMU (TCG) in the domain XML "
                "(<domain type='qemu'>) — slower, but it runs anywhere.")
    if "permission denied" in msg or "authentication" in msg or "access denied" in msg:
        return "Check that your user may manage this host (root, or the libvirt group / polkit)."
    return ""


def from_libvirt(action: str, obj: str, err: BaseException) -> VmtuiError:
    if isinstance(err, VmtuiError):
        return err
    code = err.get_error_code() if isinstance(err, libvirt.libvirtError) else None
    cls = _TYPED.get(code, VmtuiError) if code is not None else VmtuiError
    return cls(action, obj, libvirt_message(err), hint_for(action, err), code)


def is_connection_lost(err: BaseException) -> bool:
    """True when libvirt says the connection itself is gone."""
    if not isinstance(err, libvirt.libvirtError):
        return False
    code = err.get_error_code()
    if code in (libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_NO_CONNECT):
        return True
    msg = libvirt_message(err).lower()
    return code in (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_ERR_RPC) and (
        "client socket is closed" in msg or "connection reset" in msg or "broken pipe" in msg
        or "end of file" in msg or "cannot recv data" in msg or "cannot write data" in msg)


def failure(action: str, obj: str, err: BaseException) -> BaseException:
    """What to raise for a libvirt failure: a lost connection stays a
    libvirtError (the service reconnects); anything else becomes a VmtuiError."""
    if isinstance(err, libvirt.libvirtError) and is_connection_lost(err):
        return err
    return from_libvirt(action, obj, err)


def lookup_domain(conn: libvirt.virConnect, uuid: str, action: str) -> tuple[libvirt.virDomain, str]:
    """The domain with ``uuid`` and how messages name it (``domain 'web'``);
    a libvirt failure is raised as :func:`failure` says, naming the UUID."""
    try:
        dom = conn.lookupByUUIDString(uuid)
        return dom, f"domain '{dom.name()}'"
    except libvirt.libvirtError as err:
        raise failure(action, f"domain {uuid}", err) from None


def is_no_domain(err: BaseException) -> bool:
    return isinstance(err, libvirt.libvirtError) and err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
