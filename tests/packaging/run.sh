#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# tests/packaging/run.sh: the .deb and the .rpm, built by packaging/build.sh, installed the way
# users install them, in a real Debian 12 system booted with systemd-nspawn (the approach of
# tests/systemd/run.sh: systemd as PID 1, the agent talking to the project's fake xenstored,
# what it publishes read from dom0 with `xenbeacon show`).
#
#   tests/packaging/run.sh        (root, Debian 12; exit 0 iff every assertion passed)
#
# .deb: dpkg -i refuses it next to xe-guest-utilities (a fake package built here); apt-get
# install replaces that package; the service is enabled and active and publishes; the conffile
# /etc/default/xenbeacon reaches the agent's command line; dpkg -i of a newer revision restarts
# it (new PID) and keeps the edited conffile; apt-get remove leaves no process and no unit,
# purge removes the conffile and the enable state.
# .rpm: rpm -qlp, the scriptlets and Conflicts; then, with Debian's rpm inside the same
# container (no EL root is reachable here), rpm -i refuses it next to a fake
# xe-guest-utilities rpm, installs it after rpm -e of that one (enabled, started, publishes to
# a fresh store), rpm -U of a newer release restarts it, rpm -e stops and disables it.
#
# Environment: XENBEACON_SYSTEMD_CACHE (rootfs cache, default /var/cache/xenbeacon-systemd, shared
# with tests/systemd), DEBIAN_MIRROR, KEEP_WORK=1.
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${XENBEACON_SYSTEMD_CACHE:-/var/cache/xenbeacon-systemd}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# tests/systemd's package list plus rpm (Debian's rpm, to run the .rpm's scriptlets under systemd)
PACKAGES=systemd,systemd-sysv,dbus,procps,rpm
ROOTFS=$CACHE/rootfs-$SUITE-packaging
DOMID=5
T0=$SECONDS

# shellcheck source=tests/support/nspawn.sh
. "$REPO/tests/support/nspawn.sh"
# shellcheck source=tests/support/errtrap.sh
. "$REPO/tests/support/errtrap.sh"
errtrap tests/packaging/run.sh
[ "$(id -u)" -eq 0 ] || die "must run as root (systemd-nspawn)"

need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v jq >/dev/null || need+=(jq)
command -v nsenter >/dev/null || need+=(util-linux)
command -v rpmbuild >/dev/null || need+=(rpm)
command -v man >/dev/null || need+=(man-db) # man --warnings checks the man page
if [ "${#need[@]}" -gt 0 ]; then
	log "apt-get install ${need[*]}"
	apt-get update -qq -o DPkg::Lock::Timeout=600
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin:/sbin
need systemd-container:systemd-nspawn mmdebstrap:mmdebstrap jq:jq util-linux:nsenter rpm:rpmbuild rpm:rpm man-db:man \
	dpkg:dpkg-deb gzip:zcat tar:tar

WORK=$(mktemp -d /tmp/xenbeacon-packaging.XXXXXX)
PKGS=$WORK/pkgs
mkdir -p "$PKGS"

# ---------------------------------------------------------------------------------------------
# Build: the packages (two revisions each, for the upgrade), fakes of the other agents' packages
# ---------------------------------------------------------------------------------------------
log "packaging/build.sh deb|rpm (revisions 1 and 2)"
DEB1=$("$REPO/packaging/build.sh" deb --release 1 --out "$PKGS")
DEB2=$("$REPO/packaging/build.sh" deb --release 2 --out "$PKGS")
RPM1=$("$REPO/packaging/build.sh" rpm --release 1 --out "$PKGS")
RPM2=$("$REPO/packaging/build.sh" rpm --release 2 --out "$PKGS")
(cd "$REPO" && cargo build -q --release --locked --example fake-xenstored)
FAKE=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/fake-xenstored
AGENT=${CARGO_TARGET_DIR:-$REPO/target}/x86_64-unknown-linux-musl/release/xenbeacon
VERSION=$("$AGENT" --version | awk '{print $2}')

# A stand-in for XenServer's xe-guest-utilities package: only its name and a file.
mkdir -p "$WORK/fake-xe/DEBIAN" "$WORK/fake-xe/usr/sbin"
printf '#!/bin/sh\n' >"$WORK/fake-xe/usr/sbin/xe-daemon"
chmod 755 "$WORK/fake-xe/usr/sbin/xe-daemon"
cat >"$WORK/fake-xe/DEBIAN/control" <<'CONTROL'
Package: xe-guest-utilities
Version: 7.30.0-1
Architecture: all
Maintainer: test <test@example.invalid>
Description: stand-in for xe-guest-utilities (tests/packaging/run.sh)
CONTROL
dpkg-deb --root-owner-group --build "$WORK/fake-xe" "$PKGS/xe-guest-utilities_7.30.0-1_all.deb" >/dev/null
# The same for rpm, and a package that provides /bin/sh: the Debian root's rpm database is empty,
# and rpm -i --nodeps would skip the Conflicts check this test is about.
mkdir -p "$WORK/rpmtop"
cat >"$WORK/fakes.spec" <<'SPEC'
Name: xe-guest-utilities
Version: 7.30.0
Release: 1
Summary: stand-in for xe-guest-utilities (tests/packaging/run.sh)
License: MIT
BuildArch: noarch
%description
stand-in
%package -n debian-shell
Summary: the Debian root's /bin/sh, for rpm's dependency check
Provides: /bin/sh
%description -n debian-shell
stand-in
%files
%files -n debian-shell
SPEC
rpmbuild -bb --quiet --define "_topdir $WORK/rpmtop" "$WORK/fakes.spec" >"$WORK/rpmbuild-fakes.log" 2>&1 ||
	die "rpmbuild of the fake packages: $(cat "$WORK/rpmbuild-fakes.log")"
cp "$WORK"/rpmtop/RPMS/noarch/*.rpm "$PKGS/"

# ---------------------------------------------------------------------------------------------
# Cached rootfs
# ---------------------------------------------------------------------------------------------
ensure_rootfs

# ---------------------------------------------------------------------------------------------
# Scratch state, cleanup, assertions
# ---------------------------------------------------------------------------------------------
MACHINE=xenbeacon-pkg-$$
XS_PID=
NSPAWN_PID=
cleanup() {
	local rc=$?
	set +e
	stop_container_and_xenstored
	if [ "$rc" -eq 0 ] && [ "${KEEP_WORK:-0}" != 1 ]; then
		rm -rf "$WORK"
	else
		echo "logs kept in $WORK (console.log, fake-xenstored*.log, packages in pkgs/)"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ---------------------------------------------------------------------------------------------
# What the packages hold
# ---------------------------------------------------------------------------------------------
echo "[.deb contents: $(basename "$DEB1")]"
deb_files=$(dpkg-deb -c "$DEB1" | awk '{print $6}')
for f in ./usr/bin/xenbeacon ./usr/bin/xenbeacon-ansible-inventory ./lib/systemd/system/xenbeacon.service ./lib/systemd/system/xenbeacon-booted.service \
	./etc/default/xenbeacon ./usr/share/man/man8/xenbeacon.8.gz ./usr/share/doc/xenbeacon/copyright \
	./usr/share/doc/xenbeacon/LICENSE-MIT ./usr/share/doc/xenbeacon/LICENSE-APACHE ./usr/share/doc/xenbeacon/THIRD-PARTY \
	./lib/systemd/system/xenbeacon-export.service ./etc/default/xenbeacon-export \
	./usr/share/xenbeacon/prometheus/xenbeacon.rules.yml ./usr/share/xenbeacon/prometheus/xenbeacon.rules.test.yml; do
	check "holds $f" grep -qx "$f" <<<"$deb_files"
done
eq "Conflicts" "$(dpkg-deb -f "$DEB1" Conflicts)" "xe-guest-utilities, xen-guest-agent"
eq "conffiles" "$(dpkg-deb --ctrl-tarfile "$DEB1" | tar -xO ./conffiles | tr '\n' ' ')" "/etc/default/xenbeacon /etc/default/xenbeacon-export "
check "export unit in the .deb is byte-identical to packaging/xenbeacon-export.service" \
	cmp -s "$REPO/packaging/xenbeacon-export.service" \
	<(dpkg-deb --fsys-tarfile "$DEB1" | tar -xO ./lib/systemd/system/xenbeacon-export.service)
check "unit in the .deb is byte-identical to buildroot/package/xenbeacon/xenbeacon.service" \
	cmp -s "$REPO/buildroot/package/xenbeacon/xenbeacon.service" \
	<(dpkg-deb --fsys-tarfile "$DEB1" | tar -xO ./lib/systemd/system/xenbeacon.service)
check "THIRD-PARTY has neli's BSD-3-Clause notice" \
	grep -q '^==== neli .*LICENSE' <(dpkg-deb --fsys-tarfile "$DEB1" | tar -xO ./usr/share/doc/xenbeacon/THIRD-PARTY)
man_warn=$(dpkg-deb --fsys-tarfile "$DEB1" | tar -xO ./usr/share/man/man8/xenbeacon.8.gz | zcat |
	MANWIDTH=80 man --warnings -l - 2>&1 >/dev/null)
check "xenbeacon(8) renders without warnings${man_warn:+: $man_warn}" test -z "$man_warn"

echo "[.rpm contents: $(basename "$RPM1")]"
rpm_files=$(rpm -qlp "$RPM1")
for f in /usr/bin/xenbeacon /usr/bin/xenbeacon-ansible-inventory /usr/lib/systemd/system/xenbeacon.service /usr/lib/systemd/system/xenbeacon-booted.service \
	/etc/sysconfig/xenbeacon /usr/share/man/man8/xenbeacon.8.gz /usr/share/licenses/xenbeacon/LICENSE-MIT \
	/usr/share/licenses/xenbeacon/LICENSE-APACHE /usr/share/doc/xenbeacon/THIRD-PARTY \
	/usr/lib/systemd/system/xenbeacon-export.service /etc/sysconfig/xenbeacon-export \
	/usr/share/xenbeacon/prometheus/xenbeacon.rules.yml /usr/share/xenbeacon/prometheus/xenbeacon.rules.test.yml; do
	check "holds $f" grep -qx "$f" <<<"$rpm_files"
done
eq "config files" "$(rpm -qcp "$RPM1" | tr '\n' ' ')" "/etc/sysconfig/xenbeacon /etc/sysconfig/xenbeacon-export "
eq "Conflicts" "$(rpm -qp --conflicts "$RPM1" | tr '\n' ' ')" "xe-guest-utilities xe-guest-utilities-latest xen-guest-agent "
eq "Requires (static binary: the scriptlets' shell only)" \
	"$(rpm -qp --requires "$RPM1" | grep -v '^rpmlib(' | sort -u | tr '\n' ' ')" "/bin/sh "
scripts=$(rpm -qp --scripts "$RPM1")
script() { awk -v s="$1" '/scriptlet \(using/ {on = ($1 == s)} on' <<<"$scripts"; }
check "%post enables and starts both units on install" \
	grep -q 'systemctl start xenbeacon.service xenbeacon-booted.service' <(script postinstall)
check "%preun stops and disables on removal only" grep -q '"$1" -eq 0' <(script preuninstall)
check "%postun restarts on upgrade" grep -q 'systemctl try-restart xenbeacon.service' <(script postuninstall)

# ---------------------------------------------------------------------------------------------
# Boot Debian 12 with the fake xenstored's guest socket
# ---------------------------------------------------------------------------------------------
XS_DIR=$WORK/xs
start_xenstored() { # a fresh, empty store: the guest's keys must come from the agent started after
	[ -n "$XS_PID" ] && { kill "$XS_PID"; wait "$XS_PID" 2>/dev/null || true; }
	rm -f "$XS_DIR"/*.sock
	"$FAKE" "$XS_DIR" "$DOMID" >"$WORK/fake-xenstored-$1.log" 2>&1 &
	XS_PID=$!
	until_true 10 test -S "$XS_DIR/dom$DOMID.sock" || die "fake-xenstored did not start"
}
start_xenstored deb
mkdir -p "$WORK/dropin"
# Only what a container cannot provide (as in tests/systemd): not Xen, no xenbus device.
cat >"$WORK/dropin/test.conf" <<EOF2
[Unit]
ConditionVirtualization=
[Service]
Environment=XENBEACON_XENSTORE=/run/xenstored-test/dom$DOMID.sock
EOF2

log "boot $SUITE in container $MACHINE"
systemd-nspawn --quiet -D "$ROOTFS" -M "$MACHINE" --volatile=overlay --register=no --keep-unit \
	--console=read-only \
	--bind-ro="$PKGS:/mnt/pkgs" \
	--bind="$XS_DIR:/run/xenstored-test" \
	--bind-ro="$WORK/dropin:/etc/systemd/system/xenbeacon.service.d" \
	--bind-ro="$WORK/dropin:/etc/systemd/system/xenbeacon-booted.service.d" \
	--boot >"$WORK/console.log" 2>&1 </dev/null &
NSPAWN_PID=$!
wait_leader
running() { case $(c systemctl is-system-running 2>/dev/null) in running | degraded) return 0 ;; esac; return 1; }
until_true 60 running || die "container systemd not up: $(tail -20 "$WORK/console.log")"

show() { XENBEACON_XENSTORE=$XS_DIR/dom0.sock "$AGENT" show "$DOMID" --json 2>/dev/null; }
published() { [ "$(show | jq -r '.agent.kind // empty')" = xenbeacon ]; }
active() { [ "$(c systemctl is-active xenbeacon.service)" = active ]; }
mainpid() { c systemctl show -p MainPID --value xenbeacon.service; }
# a MainPID other than $1 that has exec'd the agent (systemd's forked child is "(xenbeacon)" first)
new_pid() {
	local p
	p=$(mainpid)
	[ "$p" != 0 ] && [ "$p" != "$1" ] && active && [ "$(c readlink "/proc/$p/exe")" = /usr/bin/xenbeacon ]
}
no_process() { ! c pgrep -x xenbeacon >/dev/null; }
# Debian's rpm warns on every install that Debian packages are meant to come from alien.
rpmc() {
	local out rc=0
	out=$(c rpm "$@" 2>&1) || rc=$?
	grep -v -e 'use Alien instead' -e 'assuming you know what you are doing' <<<"$out" || true
	return "$rc"
}
status() { c dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null || true; }

echo "[.deb next to xe-guest-utilities]"
check "dpkg -i xe-guest-utilities (fake)" c dpkg -i /mnt/pkgs/xe-guest-utilities_7.30.0-1_all.deb >/dev/null
if out=$(c dpkg -i "/mnt/pkgs/$(basename "$DEB1")" 2>&1); then
	bad "dpkg -i xenbeacon succeeded next to xe-guest-utilities"
else
	check "dpkg -i xenbeacon refused: conflicts with xe-guest-utilities" grep -q 'conflicts with xe-guest-utilities' <<<"$out"
fi
check "xenbeacon not installed after the refusal" test "$(status xenbeacon)" != "install ok installed $VERSION-1"
check "no agent running after the refusal" no_process
out=$(c sh -c "cd /mnt/pkgs && apt-get install -y ./$(basename "$DEB1")" 2>&1) ||
	bad "apt-get install ./$(basename "$DEB1"): $out"
check "apt-get install removed xe-guest-utilities" grep -q 'xe-guest-utilities' <<<"$(sed -n '/REMOVED/,/NEW/p' <<<"$out")"
check "xe-guest-utilities no longer installed ($(status xe-guest-utilities))" \
	test "$(status xe-guest-utilities)" != "install ok installed 7.30.0-1"

echo "[.deb installed: enabled, started, publishing]"
eq "dpkg status" "$(status xenbeacon)" "install ok installed $VERSION-1"
check "systemctl is-active xenbeacon" until_true 20 active
eq "systemctl is-enabled xenbeacon" "$(c systemctl is-enabled xenbeacon.service)" enabled
eq "systemctl is-enabled xenbeacon-booted" "$(c systemctl is-enabled xenbeacon-booted.service)" enabled
check "agent published into the fake xenstored (xenbeacon show $DOMID: agent xenbeacon)" until_true 20 published
json=$(show)
eq "data/xenbeacon/version" "$(jq -r .agent.version <<<"$json")" "$VERSION"
eq "data/os_distro" "$(jq -r .os.distro <<<"$json")" debian
booted() { [ "$(show | jq -r '.booted // empty')" = true ]; }
check "xenbeacon-booted.service ran on install: data/xenbeacon/booted (show: booted true)" until_true 20 booted
check "man 8 xenbeacon is installed" c test -s /usr/share/man/man8/xenbeacon.8.gz
check "/usr/bin/xenbeacon --version" c /usr/bin/xenbeacon --version
inventory() { c env XENBEACON_XENSTORE=/run/xenstored-test/dom0.sock /usr/bin/xenbeacon-ansible-inventory "$@"; }
eq "xenbeacon-ansible-inventory --list: the guest's distro, under _meta.hostvars" \
	"$(inventory --list | jq -r ".[\"_meta\"].hostvars[] | select(.xenbeacon_domid == $DOMID) | .xenbeacon_os_distro.__ansible_unsafe")" debian
eq "xenbeacon-ansible-inventory --host guest$DOMID: its domid" \
	"$(inventory --host "guest$DOMID" | jq -r .xenbeacon_domid)" "$DOMID"

echo "[xenbeacon-export.service: shipped, not enabled; runs when an admin enables it]"
eq "systemctl is-enabled xenbeacon-export" "$(c systemctl is-enabled xenbeacon-export.service)" disabled
check "xenbeacon-export not active after install" test "$(c systemctl is-active xenbeacon-export.service)" != active
# dom0's view of the fake store, a textfile directory of our own: the unit's sandbox as shipped
c sh -c 'mkdir -p /run/xb-textfile && printf "%s\n" XENBEACON_TEXTFILE_DIR=/run/xb-textfile \
	"XENBEACON_EXPORT_ARGS=\"--xenstore /run/xenstored-test/dom0.sock\"" >/etc/default/xenbeacon-export'
check "systemctl start xenbeacon-export" c systemctl start xenbeacon-export.service
exported() { c grep -qs "^xenbeacon_guest_info{domid=\"$DOMID\",.*agent=\"xenbeacon\"" /run/xb-textfile/xenbeacon.prom; }
check "the export wrote the guest's series (agent xenbeacon) to /run/xb-textfile/xenbeacon.prom" until_true 20 exported
eq "textfile mode (node_exporter's user reads it)" "$(c stat -c %a /run/xb-textfile/xenbeacon.prom)" 644
check "systemctl stop xenbeacon-export" c systemctl stop xenbeacon-export.service
check "the textfile is removed when the export stops" c test ! -e /run/xb-textfile/xenbeacon.prom

echo "[conffile /etc/default/xenbeacon]"
c sh -c 'sed -i "s/^XENBEACON_ARGS=.*/XENBEACON_ARGS=\"--memory-interval 30\"/" /etc/default/xenbeacon'
PID0=$(mainpid)
c systemctl restart xenbeacon.service
check "restart picks up XENBEACON_ARGS" until_true 20 new_pid "$PID0"
PID1=$(mainpid)
eq "agent command line" "$(c sh -c "tr '\0' ' ' </proc/$PID1/cmdline")" \
	"/usr/bin/xenbeacon --memory-interval 30 "

echo "[.deb upgrade: dpkg -i of revision 2]"
check "dpkg -i $(basename "$DEB2")" c dpkg -i "/mnt/pkgs/$(basename "$DEB2")" >/dev/null
eq "dpkg status" "$(status xenbeacon)" "install ok installed $VERSION-2"
check "the agent was restarted (MainPID $PID1 -> new)" until_true 20 new_pid "$PID1"
PID2=$(mainpid)
eq "edited conffile kept, still on the command line" "$(c sh -c "tr '\0' ' ' </proc/$PID2/cmdline")" \
	"/usr/bin/xenbeacon --memory-interval 30 "
eq "systemctl is-enabled after upgrade" "$(c systemctl is-enabled xenbeacon.service)" enabled

echo "[.deb removal]"
check "apt-get remove -y xenbeacon" c apt-get remove -y -qq xenbeacon >/dev/null
check "no xenbeacon process left" until_true 20 no_process
check "xenbeacon.service not active" test "$(c systemctl is-active xenbeacon.service)" != active
check "/usr/bin/xenbeacon gone" c test ! -e /usr/bin/xenbeacon
check "unit files gone" c test ! -e /lib/systemd/system/xenbeacon.service -a ! -e /lib/systemd/system/xenbeacon-booted.service
check "conffile kept after remove" c test -e /etc/default/xenbeacon
check "apt-get purge -y xenbeacon" c apt-get purge -y -qq xenbeacon >/dev/null
check "conffile gone after purge" c test ! -e /etc/default/xenbeacon
left=$(c sh -c 'ls /etc/systemd/system/*/xenbeacon* /etc/systemd/system/xenbeacon.service /etc/systemd/system/xenbeacon-export.service /var/lib/systemd/deb-systemd-helper-enabled/*xenbeacon* 2>/dev/null' || true)
check "no enable/mask state left after purge${left:+: $left}" test -z "$left"

echo "[.rpm in the same system, with a fresh store]"
start_xenstored rpm
check "rpm -i debian-shell (provides /bin/sh) and xe-guest-utilities (fake)" \
	rpmc -i /mnt/pkgs/debian-shell-7.30.0-1.noarch.rpm /mnt/pkgs/xe-guest-utilities-7.30.0-1.noarch.rpm
if out=$(rpmc -i "/mnt/pkgs/$(basename "$RPM1")"); then
	bad "rpm -i xenbeacon succeeded next to xe-guest-utilities"
else
	if grep -q 'xe-guest-utilities conflicts with xenbeacon' <<<"$out"; then
		ok "rpm -i xenbeacon refused: conflicts with xe-guest-utilities"
	else
		bad "rpm -i xenbeacon refused, but not for the conflict: $out"
	fi
fi
check "no agent running after the refusal" no_process
check "rpm -e xe-guest-utilities" rpmc -e xe-guest-utilities
check "rpm -i $(basename "$RPM1")" rpmc -i "/mnt/pkgs/$(basename "$RPM1")"
check "systemctl is-active xenbeacon" until_true 20 active
eq "systemctl is-enabled xenbeacon" "$(c systemctl is-enabled xenbeacon.service)" enabled
eq "systemctl is-enabled xenbeacon-booted" "$(c systemctl is-enabled xenbeacon-booted.service)" enabled
eq "systemctl is-enabled xenbeacon-export" "$(c systemctl is-enabled xenbeacon-export.service)" disabled
check "agent published into the fresh store" until_true 20 published
check "xenbeacon-booted.service ran on install (booted true)" until_true 20 booted
PID1=$(mainpid)
check "rpm -U $(basename "$RPM2")" rpmc -U "/mnt/pkgs/$(basename "$RPM2")"
eq "rpm -q" "$(rpmc -q xenbeacon)" "xenbeacon-$VERSION-2.x86_64"
check "the agent was restarted (MainPID $PID1 -> new)" until_true 20 new_pid "$PID1"
check "rpm -e xenbeacon" rpmc -e xenbeacon
check "no xenbeacon process left" until_true 20 no_process
eq "systemctl is-enabled after rpm -e" "$(c systemctl is-enabled xenbeacon.service 2>&1 | head -1)" \
	"Failed to get unit file state for xenbeacon.service: No such file or directory"
check "/usr/bin/xenbeacon gone" c test ! -e /usr/bin/xenbeacon

echo
log "summary: $PASSES passed, $FAILS failed; $((SECONDS - T0)) s"
[ "$FAILS" -eq 0 ]
