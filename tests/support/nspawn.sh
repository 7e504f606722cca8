# shellcheck shell=bash
# Shared by tests/systemd/run.sh and tests/packaging/run.sh, which both boot Debian 12 under
# systemd-nspawn: a cached rootfs, the container's PID 1 and a way to run commands in it, and
# the pass/fail bookkeeping of their assertions. The caller sets CACHE, MIRROR, SUITE,
# PACKAGES and ROOTFS (for ensure_rootfs), NSPAWN_PID and WORK (for wait_leader), and XS_PID
# (for stop_container_and_xenstored).

log() { printf '==> %s\n' "$*"; }
die() {
	printf 'FATAL: %s\n' "$*" >&2
	exit 1
}

FAILS=0
PASSES=0
ok() {
	PASSES=$((PASSES + 1))
	printf '  ok   %s\n' "$*"
}
bad() {
	FAILS=$((FAILS + 1))
	printf '  FAIL %s\n' "$*"
}
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
eq() { # eq DESCRIPTION ACTUAL EXPECTED
	if [ "$2" = "$3" ]; then ok "$1 = $2"; else bad "$1: got '$2', expected '$3'"; fi
}
# until_true SECONDS COMMAND...: true as soon as COMMAND succeeds, false after SECONDS
until_true() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}

# The minimal Debian rootfs with $PACKAGES, rebuilt when the suite, package list or mirror
# changes; ROOTFS_STATE says whether it was (cold) or not (cached).
# shellcheck disable=SC2034 # ROOTFS_STATE is the caller's to report
ensure_rootfs() {
	local stamp="$SUITE $PACKAGES $MIRROR"
	if [ ! -x "$ROOTFS/usr/lib/systemd/systemd" ] || [ "$(cat "$ROOTFS.stamp" 2>/dev/null)" != "$stamp" ]; then
		log "mmdebstrap $SUITE ($PACKAGES) -> $ROOTFS"
		mkdir -p "$CACHE"
		rm -rf "$ROOTFS.new" "$ROOTFS"
		nice mmdebstrap --quiet --mode=root --variant=minbase --include="$PACKAGES" \
			"$SUITE" "$ROOTFS.new" "$MIRROR"
		mv "$ROOTFS.new" "$ROOTFS"
		printf '%s\n' "$stamp" >"$ROOTFS.stamp"
		ROOTFS_STATE=cold
	else
		ROOTFS_STATE=cached
	fi
}

# The container's PID 1 is nspawn's child once that child runs systemd (before, it is nspawn's
# own helper, whose namespaces are not the container's yet: nsenter there saw no systemd).
LEADER=
leader() {
	kill -0 "$NSPAWN_PID" 2>/dev/null || die "systemd-nspawn exited: $(cat "$WORK/console.log")"
	LEADER=$(cat /proc/"$NSPAWN_PID"/task/*/children 2>/dev/null | awk '{print $1; exit}')
	[ -n "$LEADER" ] && [ "$(cat "/proc/$LEADER/comm" 2>/dev/null)" = systemd ]
}
wait_leader() { until_true 30 leader || die "no container PID 1"; }

# The first step of both scripts' cleanup: powers the container off (SIGTERM makes nspawn ask
# the container's systemd for a clean poweroff; SIGKILL after 30 s), then stops the fake
# xenstored.
stop_container_and_xenstored() {
	if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
		kill -TERM "$NSPAWN_PID"
		for _ in $(seq 1 60); do
			kill -0 "$NSPAWN_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -0 "$NSPAWN_PID" 2>/dev/null && kill -KILL "$NSPAWN_PID"
		wait "$NSPAWN_PID" 2>/dev/null
	fi
	if [ -n "$XS_PID" ]; then kill "$XS_PID" 2>/dev/null && wait "$XS_PID" 2>/dev/null; fi
	return 0
}

# Runs a command inside the container (all its namespaces, a clean environment).
c() {
	nsenter -t "$LEADER" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive SYSTEMD_COLORS=0 SYSTEMD_PAGER= SYSTEMD_LOG_COLOR=0 "$@"
}
