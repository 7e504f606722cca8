#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# packaging/build.sh deb|rpm [--target TRIPLE] [--release N] [--out DIR]
#
# Builds the Debian/Ubuntu .deb (dpkg-deb) or the EL9/Fedora .rpm (rpmbuild) from this checkout:
# the static musl binary (default features, so dom0 hosts get list/show/wait too), the Ansible
# inventory script of packaging/ansible/ (dom0 only, never run by the agent), the systemd
# units of buildroot/package/xenbeacon/, a conffile for XENBEACON_ARGS (/etc/default/xenbeacon or
# /etc/sysconfig/xenbeacon), xenbeacon(8) generated from --help, the licenses and the licenses
# of the statically linked crates. Maintainer scripts: packaging/debian/, packaging/xenbeacon.spec.
#
#   --target   x86_64-unknown-linux-musl (default) or aarch64-unknown-linux-musl
#   --release  Debian revision / RPM release (default 1)
#   --out      output directory (default target/packages)
#
# Runs on Debian/Ubuntu (installs `rpm` for rpmbuild) or EL/Fedora (rpm-build; dpkg for a .deb),
# with rustup (adds the target). Prints the path of the package.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
die() { printf 'packaging/build.sh: %s\n' "$*" >&2; exit 1; }

fmt=${1:-}
case $fmt in deb | rpm) shift ;; *) die "usage: packaging/build.sh deb|rpm [--target TRIPLE] [--release N] [--out DIR]" ;; esac
target=x86_64-unknown-linux-musl
release=1
out=$REPO/target/packages
while [ $# -gt 0 ]; do
	case $1 in
	--target) target=$2; shift 2 ;;
	--release) release=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) die "unknown argument $1" ;;
	esac
done
case $target in
x86_64-unknown-linux-musl) deb_arch=amd64 rpm_arch=x86_64 ;;
aarch64-unknown-linux-musl) deb_arch=arm64 rpm_arch=aarch64
	export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER:-rust-lld} ;;
*) die "unsupported target $target (x86_64- or aarch64-unknown-linux-musl)" ;;
esac
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || die "no version in Cargo.toml"

apt_install() {
	[ "$(id -u)" = 0 ] || die "missing $* (apt-get install $*)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "$@" >/dev/null 2>&1 ||
		{ apt-get update -qq -o DPkg::Lock::Timeout=600 &&
			apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "$@" >/dev/null; }
}
if [ "$fmt" = deb ]; then
	command -v dpkg-deb >/dev/null || die "dpkg-deb missing (apt-get install dpkg-dev, or dnf install dpkg)"
elif ! command -v rpmbuild >/dev/null; then
	command -v apt-get >/dev/null || die "rpmbuild missing (dnf install rpm-build)"
	apt_install rpm
fi
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >/dev/null

# ---- the binary
cargo build -q --release --locked --target "$target"
bin=${CARGO_TARGET_DIR:-$REPO/target}/$target/release/xenbeacon
[ -x "$bin" ] || die "build output missing: $bin"
# the man page runs --help: the target binary where it runs here, else a host build
helpbin=$bin
if ! "$helpbin" --version >/dev/null 2>&1; then
	cargo build -q --release --locked
	helpbin=${CARGO_TARGET_DIR:-$REPO/target}/release/xenbeacon
fi

# ---- the staged tree
work=${CARGO_TARGET_DIR:-$REPO/target}/packaging/$fmt-$deb_arch
rm -rf "$work"
root=$work/root
if [ "$fmt" = deb ]; then
	unitdir=$root/lib/systemd/system # Debian 12's systemdsystemunitdir
	conf=/etc/default/xenbeacon
	docdir=$root/usr/share/doc/xenbeacon
	licdir=$docdir
else
	unitdir=$root/usr/lib/systemd/system
	conf=/etc/sysconfig/xenbeacon
	docdir=$root/usr/share/doc/xenbeacon
	licdir=$root/usr/share/licenses/xenbeacon
fi
install -D -m 0755 "$bin" "$root/usr/bin/xenbeacon"
# dom0: the guests as an Ansible dynamic inventory (`ansible -i /usr/bin/xenbeacon-ansible-inventory`)
install -D -m 0755 packaging/ansible/xenbeacon-ansible-inventory "$root/usr/bin/xenbeacon-ansible-inventory"
install -D -m 0644 buildroot/package/xenbeacon/xenbeacon.service "$unitdir/xenbeacon.service"
install -D -m 0644 buildroot/package/xenbeacon/xenbeacon-booted.service "$unitdir/xenbeacon-booted.service"
install -D -m 0644 packaging/xenbeacon.default "$root$conf"
# dom0: the Prometheus export's unit (installed, not enabled), its conffile, the alert rules
install -D -m 0644 packaging/xenbeacon-export.service "$unitdir/xenbeacon-export.service"
install -D -m 0644 packaging/xenbeacon-export.default "$root$conf-export"
install -D -m 0644 packaging/prometheus/xenbeacon.rules.yml packaging/prometheus/xenbeacon.rules.test.yml \
	-t "$root/usr/share/xenbeacon/prometheus"
install -d "$root/usr/share/man/man8" "$docdir" "$licdir"
packaging/manpage.sh "$helpbin" | gzip -9n >"$root/usr/share/man/man8/xenbeacon.8.gz"
install -m 0644 LICENSE-MIT LICENSE-APACHE "$licdir/"
install -m 0644 README.md "$docdir/"
{
	echo "xenbeacon $version is statically linked with musl libc (MIT), the Rust standard library"
	echo "(MIT OR Apache-2.0) and these crates (name, version, license); their license files follow."
	echo
	cargo tree -q --locked -e normal,no-proc-macro --target "$target" --prefix none -f '{p} {l}' |
		sed 's/ (\*)$//' | grep -v '^xenbeacon ' | sort -u >"$work/crates"
	cat "$work/crates"
	# BSD-3-Clause (argh, neli) asks for its notice in binary distributions: ship every
	# crate's own license files, from the sources cargo built.
	cargo metadata -q --locked --format-version 1 --filter-platform "$target" |
		python3 -c '
import json, os, sys
want = {tuple(l.split()[:2]) for l in open(sys.argv[1])}
for p in sorted(json.load(sys.stdin)["packages"], key=lambda p: p["name"]):
    if (p["name"], "v" + p["version"]) not in want:
        continue
    d = os.path.dirname(p["manifest_path"])
    for f in sorted(os.listdir(d)):
        if f.upper().startswith(("LICENSE", "LICENCE", "COPYING", "UNLICENSE")):
            print("\n==== %s %s: %s ====\n" % (p["name"], p["version"], f))
            print(open(os.path.join(d, f), errors="replace").read().rstrip())
' "$work/crates"
} >"$docdir/THIRD-PARTY"

mkdir -p "$out"
if [ "$fmt" = deb ]; then
	install -d "$root/DEBIAN"
	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
	printf '%s\n' "$conf" "$conf-export" >"$root/DEBIAN/conffiles"
	{
		echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
		echo "Upstream-Name: xenbeacon"
		echo "Source: https://github.com/xenbeacon/xenbeacon"
		echo
		echo "Files: *"
		echo "Copyright: 2026 The xenbeacon developers"
		echo "License: MIT or Apache-2.0"
		echo " The texts: /usr/share/doc/xenbeacon/LICENSE-MIT and LICENSE-APACHE."
		echo " Statically linked third-party code: /usr/share/doc/xenbeacon/THIRD-PARTY."
	} >"$docdir/copyright"
	printf 'xenbeacon (%s-%s) unstable; urgency=medium\n\n  * Built from the xenbeacon repository by packaging/build.sh.\n\n -- xenbeacon developers <xenbeacon@users.noreply.github.com>  %s\n' \
		"$version" "$release" "$(date -u -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
		gzip -9n >"$docdir/changelog.Debian.gz"
	# x86_64's static-pie binary is an ET_DYN ELF without NEEDED, which lintian takes for a library
	install -d "$root/usr/share/lintian/overrides"
	echo "xenbeacon: shared-library-lacks-prerequisites [usr/bin/xenbeacon]" >"$root/usr/share/lintian/overrides/xenbeacon"
	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	cat >"$root/DEBIAN/control" <<CONTROL
Package: xenbeacon
Version: $version-$release
Architecture: $deb_arch
Maintainer: xenbeacon developers <xenbeacon@users.noreply.github.com>
Installed-Size: $size
Section: admin
Priority: optional
Conflicts: xe-guest-utilities, xen-guest-agent
Homepage: https://github.com/xenbeacon/xenbeacon
Description: tiny static guest agent for Xen domUs
 xenbeacon runs inside a Xen guest and tells the toolstack (XAPI,
 XCP-ng/XenServer, Xen Orchestra or plain xl) the guest's OS and kernel,
 memory and balloon state, every NIC and its addresses (including PCI, USB
 and device-tree passthrough, bridges, bonds, VLANs), its boot stage, and
 that it has booted. One static binary: no libxenstore, no exec of other
 programs, no threads. In dom0 the same binary lists what guests publish
 (xenbeacon list, show, wait), also as an Ansible dynamic inventory
 (xenbeacon-ansible-inventory), and keeps it current for Prometheus'
 node_exporter (xenbeacon-export.service, not enabled; alert rules in
 /usr/share/xenbeacon/prometheus).
 .
 It replaces xe-guest-utilities and xen-guest-agent: two agents would
 overwrite each other's keys.
CONTROL
	pkg=$out/xenbeacon_${version}-${release}_$deb_arch.deb
	dpkg-deb --root-owner-group -Zxz --build "$root" "$pkg" >/dev/null
else
	top=$work/rpmbuild
	mkdir -p "$top"
	rpmbuild -bb --quiet packaging/xenbeacon.spec --target "$rpm_arch" \
		--define "_topdir $top" --define "stage $root" \
		--define "pkg_version $version" --define "pkg_release $release" \
		--define "_build_id_links none" >"$work/rpmbuild.log" 2>&1 || { cat "$work/rpmbuild.log" >&2; exit 1; }
	pkg=$out/xenbeacon-$version-$release.$rpm_arch.rpm
	mv "$top/RPMS/$rpm_arch/xenbeacon-$version-$release.$rpm_arch.rpm" "$pkg"
fi
echo "$pkg"
