#!/usr/bin/env bash
# Run the shipped systemd unit (buildroot/package/xenbeacon/xenbeacon.service) under a real
# systemd (PID 1 of a systemd-nspawn container) and check that its sandbox lets the agent work.
#
#   tests/systemd/run.sh          (root, Debian 12; see tests/systemd/README.md)
#
# The container boots a cached minimal Debian bookworm rootfs (volatile overlay: the cache is never
# written), with the static agent at /usr/bin/xenbeacon, the unit unchanged at
# /usr/lib/systemd/system/xenbeacon.service, and one test drop-in that only replaces what a
# container cannot provide (Xen virtualization, the xenbus device). The guest side of the
# project's fake xenstored is bind-mounted at /run/xenstored/socket; the host reads what the
# agent published through the privileged dom0 socket with `xenbeacon show`.
#
# Environment: XENBEACON_SYSTEMD_CACHE (rootfs cache, default /var/cache/xenbeacon-systemd),
# DEBIAN_MIRROR, CARGO_JOBS (default 1), MAX_EXPOSURE (systemd-analyze security, default 2.0),
# KEEP_WORK=1 (keep logs even on success), CGROUP_V2=0 (use nspawn's default cgroup setup),
# EXTRA_DROPIN=FILE (self-test of this script: an extra
# drop-in, e.g. a tightened sandbox, which must then make some assertion fail).
# Exit status: 0 iff every assertion passed.
# jq and awk programs below are single-quoted on purpose.
# shellcheck disable=SC2016
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${XENBEACON_SYSTEMD_CACHE:-/var/cache/xenbeacon-systemd}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# procps: /bin/kill, which the unit's ExecReload= runs (Debian's minbase lacks it).
PACKAGES=systemd,systemd-sysv,dbus,procps
ROOTFS=$CACHE/rootfs-$SUITE
UNIT=$REPO/buildroot/package/xenbeacon/xenbeacon.service
DOMID=5
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
T0=$(now)

# shellcheck source=tests/support/nspawn.sh
. "$REPO/tests/support/nspawn.sh"
# shellcheck source=tests/support/errtrap.sh
. "$REPO/tests/support/errtrap.sh"
errtrap tests/systemd/run.sh

[ "$(id -u)" -eq 0 ] || die "must run as root (systemd-nspawn, cgroups, strace)"

# ---------------------------------------------------------------------------------------------
# Host tools
# ---------------------------------------------------------------------------------------------
need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v jq >/dev/null || need+=(jq)
command -v strace >/dev/null || need+=(strace)
command -v nsenter >/dev/null || need+=(util-linux)
command -v bpftool >/dev/null || [ -x /usr/sbin/bpftool ] || need+=(bpftool)
if [ "${#need[@]}" -gt 0 ]; then
    log "apt-get install ${need[*]}"
    apt-get update -qq -o DPkg::Lock::Timeout=600
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin:/sbin
need systemd-container:systemd-nspawn mmdebstrap:mmdebstrap jq:jq strace:strace util-linux:nsenter bpftool:bpftool
rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl

# ---------------------------------------------------------------------------------------------
# Build (no-ops when up to date)
# ---------------------------------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
AGENT=$TARGET_DIR/x86_64-unknown-linux-musl/release/xenbeacon
FAKE=$TARGET_DIR/release/examples/fake-xenstored
log "cargo build (agent: musl static; fake-xenstored example)"
(
    cd "$REPO"
    nice cargo build -q --release --locked --jobs "${CARGO_JOBS:-1}" --target x86_64-unknown-linux-musl
    nice cargo build -q --release --locked --jobs "${CARGO_JOBS:-1}" --example fake-xenstored
)
if [ ! -x "$AGENT" ] || [ ! -x "$FAKE" ]; then die "build outputs missing: $AGENT $FAKE"; fi
T_BUILD=$(since "$T0")

# ---------------------------------------------------------------------------------------------
# Cached rootfs (rebuilt when the suite or package list changes)
# ---------------------------------------------------------------------------------------------
T1=$(now)
ensure_rootfs
T_ROOTFS=$(since "$T1")

# ---------------------------------------------------------------------------------------------
# Scratch state, cleanup
# ---------------------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/xenbeacon-systemd.XXXXXX)
MACHINE=xenbeacon-test-$$
XS_PID=
NSPAWN_PID=
STRACE_PID=
CGDIR=
CGNAME=

cleanup() {
    local rc=$?
    set +e
    [ -n "$STRACE_PID" ] && kill "$STRACE_PID" 2>/dev/null && wait "$STRACE_PID" 2>/dev/null
    stop_container_and_xenstored
    # nspawn --keep-unit created payload/ and supervisor/ below our test cgroup (and mirrored it
    # in the named v1 "systemd" hierarchy on hybrid hosts); remove them bottom-up once empty.
    local cgs=()
    if [ -n "$CGNAME" ]; then
        cgs=("$CGDIR" "/sys/fs/cgroup/systemd$CGNAME")
    elif [ -n "$NSPAWN_PID" ]; then # fallback: nspawn used the cgroups this script runs in
        local line h p
        while IFS= read -r line; do
            h=${line#*:}
            p=${line#*:*:}
            case ${h%%:*} in
            "") h=/sys/fs/cgroup/unified ;;
            name=systemd) h=/sys/fs/cgroup/systemd ;;
            *) continue ;;
            esac
            cgs+=("$h${p%/}/payload" "$h${p%/}/supervisor")
        done </proc/self/cgroup
    fi
    for d in "${cgs[@]}"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    if [ "$rc" -eq 0 ] && [ "${KEEP_WORK:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        echo "logs kept in $WORK (console.log, strace.txt, journal.txt, fake-xenstored.log)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ---------------------------------------------------------------------------------------------
# Fake xenstored on the host: dom0.sock (privileged) and dom5.sock (the guest)
# ---------------------------------------------------------------------------------------------
"$FAKE" "$WORK/xs" "$DOMID" >"$WORK/fake-xenstored.log" 2>&1 &
XS_PID=$!
for _ in $(seq 1 100); do
    [ "$(wc -l <"$WORK/fake-xenstored.log")" -ge 2 ] && break
    sleep 0.1
done
DOM0_SOCK=$WORK/xs/dom0.sock
GUEST_SOCK=$WORK/xs/dom$DOMID.sock
if [ ! -S "$DOM0_SOCK" ] || [ ! -S "$GUEST_SOCK" ]; then
    die "fake-xenstored did not start: $(cat "$WORK/fake-xenstored.log")"
fi

# The only test overrides: not Xen, no xenbus device.
mkdir -p "$WORK/dropin"
cat >"$WORK/dropin/test.conf" <<'EOF'
# Test-only drop-in (tests/systemd/run.sh): a systemd-nspawn container is not a Xen guest and
# has no /dev/xen/xenbus, so the agent talks to the fake xenstored's guest socket instead.
[Unit]
ConditionVirtualization=
[Service]
Environment=XENBEACON_XENSTORE=/run/xenstored/socket
EOF
expected_dropins=/etc/systemd/system/xenbeacon.service.d/test.conf
if [ -n "${EXTRA_DROPIN:-}" ]; then
    cp "$EXTRA_DROPIN" "$WORK/dropin/zz-extra.conf"
    expected_dropins+=" /etc/systemd/system/xenbeacon.service.d/zz-extra.conf"
    log "EXTRA_DROPIN $EXTRA_DROPIN: $(grep -v '^#' "$EXTRA_DROPIN" | tr '\n' ' ')"
fi

# ---------------------------------------------------------------------------------------------
# Boot the container
# ---------------------------------------------------------------------------------------------
# With cgroup v2 available, run the container on the unified hierarchy and let its systemd use
# bpf(): that is what makes DevicePolicy=/DeviceAllow= and IPAddressDeny= real (BPF programs on
# the service's cgroup), as on a real guest. Without it they would silently not be enforced.
CG2=
if [ "${CGROUP_V2:-1}" = 0 ]; then
    : # forced off (to exercise the fallback)
elif [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
    CG2=/sys/fs/cgroup
elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
    CG2=/sys/fs/cgroup/unified
fi
nspawn_extra=()
cgmode="nspawn default (no cgroup v2)"
if [ -n "$CG2" ]; then
    cgmode="unified, below $CG2"
    own=$(sed -n 's/^0:://p' /proc/self/cgroup)
    CGNAME=${own%/}/xenbeacon-systemd-$$
    CGDIR=$CG2$CGNAME
    mkdir "$CGDIR"
    nspawn_extra+=(--system-call-filter=bpf)
    export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
fi

T2=$(now)
log "boot systemd in container $MACHINE (rootfs $ROOTFS_STATE, cgroup: $cgmode)"
(
    [ -n "$CGDIR" ] && echo "$BASHPID" >"$CGDIR/cgroup.procs"
    exec systemd-nspawn --quiet -D "$ROOTFS" -M "$MACHINE" --volatile=overlay \
        --register=no --keep-unit --console=read-only "${nspawn_extra[@]}" \
        --bind-ro="$AGENT:/usr/bin/xenbeacon" \
        --bind-ro="$UNIT:/usr/lib/systemd/system/xenbeacon.service" \
        --bind-ro="$WORK/dropin:/etc/systemd/system/xenbeacon.service.d" \
        --bind="$GUEST_SOCK:/run/xenstored/socket" \
        --boot
) >"$WORK/console.log" 2>&1 </dev/null &
NSPAWN_PID=$!

wait_leader
state=
for _ in $(seq 1 120); do
    state=$(c systemctl is-system-running 2>/dev/null) || true
    case $state in running | degraded) break ;; esac
    sleep 0.5
done
case $state in
running | degraded) ;;
*) die "container systemd not up (state '$state'): $(tail -20 "$WORK/console.log")" ;;
esac
T_BOOT=$(since "$T2")
log "container up in ${T_BOOT}s (system state: $state)"

# ---------------------------------------------------------------------------------------------
# Assertions
# ---------------------------------------------------------------------------------------------
T3=$(now)
show() { XENBEACON_XENSTORE=$DOM0_SOCK "$AGENT" show "$DOMID" --json; }
prop() { c systemctl show -p "$1" --value xenbeacon.service; }

echo "[unit]"
check "unit in the container is byte-identical to $UNIT" \
    cmp -s "$UNIT" <(c cat /usr/lib/systemd/system/xenbeacon.service)
frag=$(prop FragmentPath)
case $frag in
/usr/lib/systemd/system/xenbeacon.service | /lib/systemd/system/xenbeacon.service) ok "FragmentPath = $frag" ;;
*) bad "FragmentPath = $frag" ;;
esac
eq "DropInPaths" "$(prop DropInPaths)" "$expected_dropins"
verify=$(c systemd-analyze verify xenbeacon.service 2>&1) || true
if [ -z "$verify" ]; then ok "systemd-analyze verify: clean"; else bad "systemd-analyze verify: $verify"; fi

echo "[start]"
# Trace the container's PID 1 and its children (the service) from the host while the agent
# starts, reloads and stops: any syscall the sandbox refuses shows up as EPERM (or EACCES).
strace -f -q -o "$WORK/strace.txt" -p "$LEADER" &
STRACE_PID=$!
traced_now() { ! grep -q '^TracerPid:[[:space:]]*0$' "/proc/$LEADER/status"; }
until_true 30 traced_now || die "strace never attached to the container's PID 1"
check "systemctl start xenbeacon" c systemctl start xenbeacon.service
# On a fresh store the agent publishes an early round (OS, memory) before the NICs: wait until
# the agent is there and every device-backed NIC of the host has been published.
macs=()
for dev in /sys/class/net/*; do
    [ -e "$dev/device" ] && macs+=("$(cat "$dev/address")")
done
all_published() {
    [ "$(jq -r '.agent.kind // empty' <<<"$json" 2>/dev/null)" = xenbeacon ] || return 1
    local m
    for m in "${macs[@]}"; do
        jq -e --arg m "$m" 'any(.nics[]; .mac == $m)' <<<"$json" >/dev/null 2>&1 || return 1
    done
}
json=
for _ in $(seq 1 50); do
    json=$(show 2>/dev/null) || true
    all_published && break
    sleep 0.2
done
sleep 2 # let it settle; a sandbox failure after the first publish would show now
eq "ActiveState" "$(prop ActiveState)" active
eq "SubState" "$(prop SubState)" running
eq "NRestarts" "$(prop NRestarts)" 0
MAINPID=$(prop MainPID)
check "MainPID $MAINPID is /usr/bin/xenbeacon" \
    test "$(c readlink "/proc/$MAINPID/exe")" = /usr/bin/xenbeacon

echo "[published keys, read from dom0 via \`xenbeacon show $DOMID --json\`]"
printf '%s\n' "$json" >"$WORK/show.json"
j() { jq -r "$1 // \"<missing>\"" <<<"$json"; }
jqq() { jq -e "$@" <<<"$json" >/dev/null; }
os_name=$(c sh -c '. /etc/os-release && printf %s "$PRETTY_NAME"')
memtotal=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
version=$("$AGENT" --version | awk '{print $2}')
eq "agent (data/xenbeacon/layout present)" "$(j .agent.kind)" xenbeacon
eq "data/xenbeacon/layout" "$(j .agent.layout)" 2
eq "data/xenbeacon/version" "$(j .agent.version)" "$version"
eq "data/xenbeacon/stage" "$(j .stage)" rootfs
eq "data/os_name" "$(j .os.name)" "$os_name"
eq "data/os_distro" "$(j .os.distro)" debian
eq "data/os_majorver" "$(j .os.major)" 12
eq "data/os_uname (host uname -r)" "$(j .os.kernel)" "$(uname -r)"
eq "data/meminfo_total (host MemTotal)" "$(j .memory.total_kb)" "$memtotal"
check "data/meminfo_free > 0 ($(j .memory.free_kb))" test "$(j .memory.free_kb)" -gt 0 2>/dev/null
check "data/updated set ($(j .updated))" test "$(j .updated)" -gt 0 2>/dev/null
# NICs: every host NIC backed by a device (the container shares the host's network namespace)
# must be published with its MAC and global IPv4 addresses: sysfs + rtnetlink under the sandbox.
nnics=0
for dev in /sys/class/net/*; do
    [ -e "$dev/device" ] || continue
    name=${dev##*/}
    mac=$(cat "$dev/address")
    nnics=$((nnics + 1))
    check "NIC $name $mac published (attr/net or attr/vif)" \
        jqq --arg m "$mac" 'any(.nics[]; .mac == $m)'
    for addr in $(ip -4 -o addr show dev "$name" scope global 2>/dev/null | awk '{print $4}'); do
        check "NIC $name ipv4 $addr published" jqq --arg m "$mac" --arg a "${addr%/*}" \
            --argjson p "${addr#*/}" 'any(.nics[] | select(.mac == $m) | .ipv4[]; .address == $a and .prefix == $p)'
    done
done
[ "$nnics" -gt 0 ] || echo "  note no device-backed NIC on this host: NIC keys not checked"

echo "[sandbox in effect on the running agent]"
status=$(c cat "/proc/$MAINPID/status")
sfield() { awk -v k="$1:" '$1 == k {print $2}' <<<"$status"; }
eq "CapEff" "$(sfield CapEff)" 0000000000000000
eq "CapBnd" "$(sfield CapBnd)" 0000000000000000
eq "NoNewPrivs" "$(sfield NoNewPrivs)" 1
eq "Seccomp (2 = filter)" "$(sfield Seccomp)" 2
rootopts=$(c awk '$5 == "/" {o = $6} END {print o}' "/proc/$MAINPID/mountinfo")
check "/ is read-only for the agent ($rootopts)" grep -qE '(^|,)ro(,|$)' <<<"$rootopts"
if [ -n "$CGDIR" ]; then
    svc_cg=$CGDIR/payload/system.slice/xenbeacon.service
    progs=$(bpftool cgroup show "$svc_cg" 2>&1) || true
    check "DevicePolicy=closed enforced (cgroup_device BPF program on the service cgroup)" \
        grep -q cgroup_device <<<"$progs"
    check "IPAddressDeny=any enforced (cgroup_inet_egress BPF program)" \
        grep -q cgroup_inet_egress <<<"$progs"
else
    echo "  note no cgroup v2: DevicePolicy=/IPAddressDeny= cannot be enforced in this container"
fi

echo "[reload = SIGHUP]"
check "systemctl reload xenbeacon" c systemctl reload xenbeacon.service
# systemctl returns once ExecReload's kill has run; the agent handles the signal after that
hup_logged() { grep -q 'SIGHUP: re-reading' <(c journalctl -q -u xenbeacon.service -o cat); }
until_true 30 hup_logged || true # (the check below says so)
eq "ActiveState after reload" "$(prop ActiveState)" active
eq "MainPID after reload (same process)" "$(prop MainPID)" "$MAINPID"
eq "NRestarts after reload" "$(prop NRestarts)" 0
check "agent logged the SIGHUP republish" \
    grep -q 'SIGHUP: re-reading' <(c journalctl -q -u xenbeacon.service -o cat)

echo "[stop]"
check "systemctl stop xenbeacon" c systemctl stop xenbeacon.service
eq "ActiveState after stop" "$(prop ActiveState)" inactive
# (Result=/ExecMainStatus= are gone once the stopped unit is garbage-collected: the journal and
# the trace below tell how it ended.)
c journalctl -q -u xenbeacon.service -o cat >"$WORK/journal-cat.txt" || true
check "agent exited on SIGTERM ('signal 15: exiting')" grep -q 'signal 15: exiting' "$WORK/journal-cat.txt"
check "systemd: 'xenbeacon.service: Deactivated successfully.'" \
    grep -q 'xenbeacon.service: Deactivated successfully' "$WORK/journal-cat.txt"
# the trace is complete once strace wrote the agent's end ("+++ exited with ..." of the pid that
# exec'd it): then stop strace
agent_end_traced() {
    local p
    p=$(awk '/execve\("\/usr\/bin\/xenbeacon"/ {print $1; exit}' "$WORK/strace.txt")
    [ -n "$p" ] && grep -qE "^$p +\+\+\+ (exited|killed)" "$WORK/strace.txt"
}
until_true 30 agent_end_traced || true # (the checks below say what is missing)
kill "$STRACE_PID" 2>/dev/null || true
wait "$STRACE_PID" 2>/dev/null || true
STRACE_PID=

echo "[no refused syscalls, no permission errors]"
c journalctl -q -u xenbeacon.service -o short-monotonic >"$WORK/journal.txt" || true
sed 's/^/  | /' "$WORK/journal.txt"
check "journal: no agent WARN/ERROR, no EPERM/EACCES/seccomp/'failed' lines" \
    test -z "$(grep -E 'xenbeacon\[[0-9]+\]: (WARN|ERROR)' "$WORK/journal.txt")$(grep -iE 'operation not permitted|permission denied|EPERM|EACCES|seccomp|failed' "$WORK/journal.txt")"
# Syscalls of the agent after its execve and of ExecReload's /bin/kill: none may fail with
# EPERM/EACCES (SystemCallFilter=, MemoryDenyWriteExecute=, RestrictAddressFamilies=,
# CapabilityBoundingSet=, ProtectSystem= all surface as one of those).
traced=$(awk '
    /execve\("\/usr\/bin\/xenbeacon"|execve\("\/bin\/kill"/ { mine[$1] = 1 }
    ($1 in mine) { print }' "$WORK/strace.txt")
check "strace saw the agent exec and run ($(wc -l <<<"$traced") syscalls traced)" \
    grep -q 'execve("/usr/bin/xenbeacon"' <<<"$traced"
check "strace saw ExecReload's /bin/kill" grep -q 'execve("/bin/kill"' <<<"$traced"
saw_io() { grep -q 'connect(.*/run/xenstored/socket' <<<"$traced" && grep -q 'socket(AF_NETLINK' <<<"$traced"; }
check "strace saw connect() to /run/xenstored/socket and socket(AF_NETLINK)" saw_io
agent_pid=$(awk '/execve\("\/usr\/bin\/xenbeacon"/ {print $1; exit}' <<<"$traced")
check "agent process exited with status 0 (strace: +++ exited with 0 +++)" \
    grep -q "^$agent_pid  *+++ exited with 0 +++" <<<"$traced"  # strace pads pids to 5 columns
denied=$(grep -E '= -1 (EPERM|EACCES)' <<<"$traced" || true)
if [ -z "$denied" ]; then ok "no syscall of the agent or /bin/kill failed with EPERM/EACCES"; else
    bad "syscalls refused by the sandbox:"
    printf '%s\n' "$denied" | head -20 | sed 's/^/    /'
fi

echo "[systemd-analyze security xenbeacon.service]"
c systemd-analyze security --no-pager xenbeacon.service >"$WORK/security.txt" 2>&1 || true
grep -E '^✗' "$WORK/security.txt" | sed -e 's/ \{2,\}/  /g' -e 's/ *$//' -e 's/^/  | /' || true
exposure=$(sed -n 's/.*Overall exposure level for xenbeacon.service: \([0-9.]*\).*/\1/p' "$WORK/security.txt")
check "overall exposure ${exposure:-?} <= $MAX_EXPOSURE" \
    awk -v e="${exposure:-99}" -v m="$MAX_EXPOSURE" 'BEGIN {exit !(e + 0 <= m + 0)}'
T_TEST=$(since "$T3")

echo
log "summary: $PASSES passed, $FAILS failed; exposure ${exposure:-?}; rootfs $ROOTFS_STATE"
log "time: build ${T_BUILD}s, rootfs ${T_ROOTFS}s, boot ${T_BOOT}s, checks ${T_TEST}s, total $(since "$T0")s"
[ "$FAILS" -eq 0 ]
