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
#   * No /etc/libvirt/qemu.conf tweaks are needed.  Debian ships qemu.conf in
#     libvirt-daemon-system, which we deliberately do not install (it pulls in
#     systemd units, polkit, the default NAT network ...).  Without a
#     qemu.conf the compiled-in defaults apply: guests run as user/group
#     `libvirt-qemu` with the DAC security driver, and libvirt's cgroup
#     handling copes with the (v1) hierarchy here.  A TCG guest
#     (<domain type='qemu'>) defines, starts, boots, shuts down via ACPI and
#     undefines fine with those defaults.  The `libvirt-qemu` account must
#     exist though (normally created by libvirt-daemon-system's postinst),
#     otherwise starting any domain fails with "Failed to parse user
#     'libvirt-qemu'".
#   * Files a guest reads (kernel, initrd, disk images) must be readable by
#     `libvirt-qemu`: keep them in /var/lib/libvirt/{boot,images} (mode 0644;
#     libvirt's DAC driver chowns them while the guest runs and restores
#     them afterwards).
#   * /dev/kvm exists but KVM guests fail here: use <domain type='qemu'>.
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
    # Tiny test guests (tests/guest.py): busybox initramfs.
    busybox-static cpio
    # Dev tooling: venv for the Makefile, tmux for driving the TUI.
    python3-venv tmux
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
# Let the QEMU processes use /dev/kvm etc. if a group kvm exists (harmless
# otherwise; we use TCG anyway).
if getent group kvm >/dev/null && ! id -nG libvirt-qemu | grep -qw kvm; then
    usermod -a -G kvm libvirt-qemu || true
fi

mkdir -p /var/log/libvirt /var/lib/libvirt/images /var/lib/libvirt/qemu \
         /var/lib/libvirt/boot
chmod 0755 /var/lib/libvirt /var/lib/libvirt/images /var/lib/libvirt/boot

bash "$HERE/start-libvirtd.sh" $restart
log "host ready"
