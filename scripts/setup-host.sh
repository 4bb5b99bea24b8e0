#!/usr/bin/env bash
# Prepare a Debian 12 machine (root, no systemd, containers/microVMs included)
# to run vmtui against a real libvirtd + QEMU (qemu:///system).
#
# Idempotent and quick on reruns:
#   * apt is skipped entirely when every package is already installed;
#   * users/dirs are only created when missing;
#   * daemons are only started when not running (scripts/start-libvirtd.sh).
#
# Findings on the target machine kind (Debian 12, libvirt 9.0, QEMU 7.2,
# cgroup v1 hierarchy mounted by the container runtime, no systemd, no D-Bus):
#   * No qemu.conf tweaks are needed to run TCG guests: Debian ships
#     qemu.conf in libvirt-daemon-system, which we deliberately do not
#     install (systemd units, polkit, the default NAT network ...).  With the
#     compiled-in defaults, guests run as user/group `libvirt-qemu` under the
#     DAC security driver, in a private mount namespace, and libvirt's
#     cgroup handling copes with the (v1) hierarchy here: a TCG guest
#     (<domain type='qemu'>) defines, starts, boots, shuts down via ACPI and
#     undefines fine.  The `libvirt-qemu` account must exist though
#     (normally created by libvirt-daemon-system's postinst), otherwise
#     starting any domain fails with "Failed to parse user 'libvirt-qemu'".
#   * /dev/kvm exists but KVM guests do not work on this machine kind (the
#     vCPU is shut down at once).  Two settings make that fast and clear:
#       - /dev/kvm is made accessible to libvirt-qemu (as udev would do on a
#         normal host).  Otherwise libvirt's QEMU capability cache is never
#         valid: the probe (run with CAP_DAC_OVERRIDE) reports KVM enabled,
#         while the validity check -- can libvirt-qemu open /dev/kvm? --
#         says no ("KVM was enabled when probing ..., but it is not
#         available now"), so libvirtd re-probed QEMU (~4 s) on every
#         domain start and capabilities query.  Now `virsh start` of a tiny
#         TCG guest takes ~0.6 s.
#       - /etc/libvirt/qemu.conf leaves /dev/kvm out of cgroup_device_acl,
#         so guests never see it (not in their /dev namespace, denied by
#         the devices cgroup).  A <domain type='kvm'> then fails to start
#         with "Could not access KVM kernel module: No such file or
#         directory" instead of "running" with a dead vCPU.  Capabilities
#         still list domain type 'kvm'.
#   * This machine's PID 1 reaps orphans lazily (~1 s): libvirtd runs under
#     `tini -s` so destroying a guest is fast (see start-libvirtd.sh).
#   * Files a guest reads (kernel, initrd, disk images) must be readable by
#     `libvirt-qemu`: keep them in /var/lib/libvirt/{boot,images} (mode 0644;
#     libvirt's DAC driver chowns them while the guest runs and restores
#     them afterwards).
#   * Virtual networks (even isolated ones without <forward>) need the
#     `iptables` binary: libvirtd adds filter rules for every network and
#     fails with "cannot execute binary /usr/sbin/iptables" otherwise.
#     libvirtd looks the binary up once at start, so it must be installed
#     before libvirtd starts (or libvirtd restarted).
#   * libvirtd logs errors about the missing D-Bus system bus, udev DMI data
#     and dmidecode (/dev/mem) at start; they are harmless.
#   * We do NOT define or start libvirt's "default" NAT network: tests use
#     isolated networks only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host.sh: must run as root (try: sudo $0)" >&2
    exit 1
fi

log() { echo "setup-host: $*" >&2; }

PACKAGES=(
    # libvirt-python is built from source by pip: needs headers, pkg-config
    # and a C compiler.
    libvirt-dev pkg-config gcc
    # The hypervisor stack (system daemon, QEMU driver, virsh, TCG QEMU).
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
    qemu-system-x86 qemu-utils osinfo-db ovmf
    # Virtual networks: dnsmasq for DHCP/DNS, iptables for libvirt's rules.
    dnsmasq-base iptables
    # Child subreaper for libvirtd (see start-libvirtd.sh: fast destroy).
    tini
    # Tiny test guests (tests/guest.py): busybox initramfs.
    busybox-static cpio
    isolinux syslinux-common  # bootable test ISOs (tests/real/test_real_create.py)
    # Tools the tests call (in CI a missing one fails the test, tests/prereq.py):
    # tmpfs/loop mounts and an ext2 image (test_real_storage*), pgrep
    # (libvirtd restart), openssl and blkid (cloud-init), ip (networks).
    mount e2fsprogs procps openssl util-linux iproute2
    # Dev tooling: venv for the Makefile, tmux for driving the TUI; GNU
    # screen: the wizard's keys are typed through tmux and screen
    # (tests/test_wizard_honest.py).
    python3-venv tmux screen
    # virt-install (Debian's package is virtinst): the wizard's virt-install
    # line is run with --print-xml --dry-run (tests/real/test_real_wizard.py).
    virtinst
)

missing=()
restart=
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    # If libvirtd was already running it has cached the lookup of helper
    # binaries such as iptables; restart it so it sees the new ones.
    restart=--restart
else
    log "all packages already installed"
fi

# The QEMU driver runs guests as libvirt-qemu:libvirt-qemu (compiled-in
# default on Debian; the account normally comes from libvirt-daemon-system).
if ! getent passwd libvirt-qemu >/dev/null; then
    log "creating user libvirt-qemu"
    if getent group libvirt-qemu >/dev/null; then
        useradd -r -M -g libvirt-qemu -s /usr/sbin/nologin libvirt-qemu
    else
        useradd -r -U -M -s /usr/sbin/nologin libvirt-qemu
    fi
fi
# /dev/kvm: accessible to libvirt-qemu on the host (keeps libvirt's QEMU
# capability cache valid), but hidden from the guests (qemu.conf below).
if [ -e /dev/kvm ]; then
    getent group kvm >/dev/null || groupadd -r kvm
    id -nG libvirt-qemu | grep -qw kvm || usermod -a -G kvm libvirt-qemu
    chgrp kvm /dev/kvm
    chmod 0660 /dev/kvm
fi

# qemu.conf: libvirt's default cgroup_device_acl minus /dev/kvm.  We only
# manage a qemu.conf we wrote (marker line); someone else's is left alone.
QEMU_CONF=/etc/libvirt/qemu.conf
MARKER="# Managed by vmtui scripts/setup-host.sh"
WANT_CONF="$MARKER
# KVM guests do not work on this machine kind: keep /dev/kvm out of the
# guests' /dev so that <domain type='kvm'> fails to start with a clear error.
cgroup_device_acl = [
    \"/dev/null\", \"/dev/full\", \"/dev/zero\",
    \"/dev/random\", \"/dev/urandom\",
    \"/dev/ptmx\"
]"
if [ ! -e "$QEMU_CONF" ] || head -n 1 "$QEMU_CONF" | grep -qxF "$MARKER"; then
    if [ "$(cat "$QEMU_CONF" 2>/dev/null || true)" != "$WANT_CONF" ]; then
        log "writing $QEMU_CONF"
        mkdir -p /etc/libvirt
        printf '%s\n' "$WANT_CONF" > "$QEMU_CONF"
        restart=--restart  # libvirtd reads qemu.conf at start only
    fi
else
    log "leaving $QEMU_CONF alone (not written by this script)"
fi

mkdir -p /var/log/libvirt /var/lib/libvirt/images /var/lib/libvirt/qemu \
         /var/lib/libvirt/boot
chmod 0755 /var/lib/libvirt /var/lib/libvirt/images /var/lib/libvirt/boot

bash "$HERE/start-libvirtd.sh" $restart
log "host ready"
