#!/usr/bin/env bash
# Start virtlogd + libvirtd (system instance, qemu:///system) without systemd.
#
# Idempotent: daemons that already run are left alone.  Returns once
# `virsh -c qemu:///system uri` answers, or fails after
# $VMTUI_LIBVIRTD_TIMEOUT seconds (default 30).
#
# Used by scripts/setup-host.sh and by tests that kill/restart libvirtd.
# Must run as root (the system daemons need it).
#
#   start-libvirtd.sh            start whatever is not running, wait for it
#   start-libvirtd.sh --restart  stop a running libvirtd first (SIGTERM via
#                                its pid file), then start it again; guests
#                                keep running (libvirtd reconnects to them)
set -euo pipefail

TIMEOUT="${VMTUI_LIBVIRTD_TIMEOUT:-30}"
URI="qemu:///system"

if [ "$(id -u)" -ne 0 ]; then
    echo "start-libvirtd.sh: must run as root (try: sudo $0)" >&2
    exit 1
fi

# Directories the daemons (and the QEMU driver) expect.  The Debian packages
# normally create some of these from maintainer scripts / systemd-tmpfiles,
# which do not run on a systemd-less container image.
mkdir -p /var/log/libvirt /var/log/libvirt/qemu /run/libvirt \
         /var/lib/libvirt/images /var/lib/libvirt/qemu /var/lib/libvirt/boot \
         /var/cache/libvirt

log() { echo "start-libvirtd: $*" >&2; }

# running NAME: true if a live (non-zombie) process named NAME exists.
# A daemon that was just killed can linger as a zombie for a moment (PID 1
# here is not a real init and reaps lazily), and `pgrep` still matches those.
running() {
    local pid state
    for pid in $(pgrep -x "$1" 2>/dev/null); do
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
        if [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]; then
            return 0
        fi
    done
    return 1
}

# Start libvirtd in the background.
#
# PID 1 on this machine kind is not a real init and reaps orphaned processes
# only about once a second.  libvirtd daemonizes the QEMU processes
# (re-parented to PID 1), and when a guest is destroyed libvirtd polls
# kill(pid, 0) until the process is gone -- a zombie still counts, so every
# `virsh destroy` took ~1.4 s.  Running libvirtd in the foreground under
# `tini -s` (child subreaper) makes tini the parent of those QEMU processes
# and reaps them at once.  tini exits when libvirtd does (QEMU processes
# then go back to PID 1).  Without tini we fall back to `libvirtd -d`.
#
# Errors about the missing D-Bus system bus, udev DMI data and dmidecode are
# logged to /var/log/libvirt/libvirtd.log; they are harmless here.
start_libvirtd() {
    if command -v tini >/dev/null 2>&1; then
        setsid tini -s -- libvirtd </dev/null >>/var/log/libvirt/libvirtd-stdio.log 2>&1 &
    else
        libvirtd -d
    fi
}

if [ "${1:-}" = "--restart" ] && running libvirtd; then
    pid="$(cat /run/libvirtd.pid 2>/dev/null || true)"
    if [ -n "$pid" ]; then
        log "stopping libvirtd (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            running libvirtd || break
            sleep 0.1
        done
    fi
fi

# virtlogd: libvirtd's QEMU driver hands the guests' stdout/stderr (and
# <log> files of chardevs) to virtlogd by default; without it, starting a
# domain fails with "Failed to connect socket to '/run/libvirt/virtlogd-sock'".
if ! running virtlogd; then
    log "starting virtlogd"
    virtlogd -d
fi

if ! running libvirtd; then
    log "starting libvirtd"
    start_libvirtd
fi

deadline=$(( $(date +%s) + TIMEOUT ))
until virsh -q -c "$URI" uri >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "libvirtd did not answer on $URI within ${TIMEOUT}s"
        tail -n 20 /var/log/libvirt/libvirtd.log >&2 2>/dev/null || true
        exit 1
    fi
    # A libvirtd that died right after start (e.g. the old instance still
    # held the pid file) gets another chance.
    if ! running libvirtd; then
        log "libvirtd is not running; starting it again"
        start_libvirtd || true
    fi
    sleep 0.5
done
log "libvirtd answers on $URI"
