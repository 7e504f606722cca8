# shellcheck shell=bash
# Part of xenbeacon's e2e suite: how xen-qemu-test.sh fetches the Debian packages it unpacks and
# decides whether a cached work dir is still whole. Sourced by the harness and by
# tests/e2e/fetch-test.sh, which checks it against a fake apt-get that answers 404.
#
# A mirror can list a version whose file it does not (yet, or any more) hold: the index moved
# on while the pool did not. So each package is fetched on its own, and a package whose
# candidate cannot be had is tried in every other version `apt-cache madison` offers.

# fetch_deb DIR PKG[:ARCH]: download one .deb of PKG into DIR: the candidate, else the first
# other version the indexes offer that downloads. On failure prints one line naming PKG (and
# every version tried) on stderr and returns 1.
fetch_deb() {
	local dir=$1 pkg=$2 name=${2%%:*} arch="" cand v err tried=()
	[[ $pkg == *:* ]] && arch=${pkg#*:}
	if err=$(cd "$dir" && apt-get download -q "$pkg" 2>&1); then return 0; fi
	cand=$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" {print $2; exit}')
	tried=("${cand:-no candidate}")
	# madison's third column names the index; only binary indexes of the wanted architecture
	for v in $(apt-cache madison "$pkg" 2>/dev/null |
		awk -F' [|] ' -v a="${arch:-$(dpkg --print-architecture)}" \
			'$3 ~ (" " a " Packages$") || $3 ~ / all Packages$/ {gsub(/ /, "", $2); print $2}' | awk '!s[$0]++'); do
		[ "$v" = "$cand" ] && continue
		if (cd "$dir" && apt-get download -q "$name${arch:+:$arch}=$v" >/dev/null 2>&1); then
			echo "fetch: $pkg: candidate ${cand:-?} could not be downloaded ($(last_line "$err")); took $v instead" >&2
			return 0
		fi
		tried+=("$v")
	done
	echo "cannot download Debian package $pkg: no version the apt indexes offer could be fetched (tried ${tried[*]}; $(last_line "$err"))" >&2
	return 1
}
last_line() { printf '%s\n' "$1" | grep -v '^\s*$' | tail -1; }

# fetch_debs DIR PKG...: fetch_deb for each; stops at the first package that cannot be had.
fetch_debs() {
	local dir=$1 p
	shift
	for p in "$@"; do fetch_deb "$dir" "$p" || return 1; done
}

# The stage (the unpacked debs) records which .debs it was made from, one file name a line, in
# $STAGE/.debs. Whatever is made from the stage (vmlinux, xen) records the same list beside
# itself (FILE.from) and is remade when the two differ: a refetch that brought a new kernel
# must not leave dom0 booting the old one.

# stage_lists ARCH (x86_64 or arm64): sets PKGS, the Debian packages the harness unpacks (the
# kernel aside: the index names it), and what a whole stage has: STAGE_FILES (paths in the
# stage; a glob matches when one file does) and STAGE_MODULES (in the module index). A cached
# work dir that lacks any of it (a package added to the list since, a module added to the
# closure, a device model that a broken mirror did not deliver) is set up again, never used
# half-made.
stage_lists() {
	local darch=amd64
	[ "$1" = arm64 ] && darch=arm64
	PKGS="xen-hypervisor-4.17-$darch xen-utils-4.17 xenstore-utils libxenmisc4.17 libxenstore4 libxencall1
	      libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxentoollog1 libxendevicemodel1 libxenhypfs1
	      libxentoolcore1 libyajl2"
	# arm64: the target's own libc & co. (ldd can't run foreign binaries; libs are resolved with readelf)
	[ "$1" != arm64 ] || PKGS="$PKGS busybox-static libc6 libgcc-s1 zlib1g liblzma5 libzstd1 libuuid1 libfdt1"
	# iproute2 for `ip -d link` in the domU
	PKGS="$PKGS iproute2 libbpf1 libelf1 libmnl0 libbsd0 libmd0 libcap2"
	STAGE_FILES="boot/vmlinuz-* usr/lib/xen-4.17/bin/xl usr/lib/xen-4.17/bin/xenstored usr/lib/xen-4.17/bin/xenconsoled
	      usr/lib/xen-4.17/bin/xen-init-dom0 usr/lib/xen-4.17/bin/libxl-save-helper usr/bin/xenstore
	      bin/ip"
	STAGE_MODULES="xen_netback xen_netfront bridge 8021q tun bonding dummy ipvlan"
	if [ "$1" = arm64 ]; then
		STAGE_FILES="$STAGE_FILES boot/xen-4.17-arm64 bin/busybox"
		STAGE_MODULES="$STAGE_MODULES virtio_mmio"
	else
		# the HVM domU device model (USB passthrough, emulated NIC); its libraries and data files
		# are those of the host's qemu-system-x86 (same Debian release, same dependencies)
		PKGS="$PKGS qemu-system-xen"
		STAGE_FILES="$STAGE_FILES boot/xen-4.17-amd64.gz usr/libexec/xen-qemu-system-i386 usr/lib/xen-4.17/boot/hvmloader"
	fi
}

# stage_missing STAGE PKG...: prints what a whole stage lacks (nothing when it is whole): a
# .deb of every PKG in .debs, and each file in $STAGE_FILES (paths relative to STAGE; a glob
# matches when one file matches it), and each module in $STAGE_MODULES in the modules index.
stage_missing() {
	local stage=$1 p f m files
	shift
	read -r -d '' -a files <<<"${STAGE_FILES:-}" || true # all lines; no glob expansion here
	if [ ! -s "$stage/.debs" ]; then
		echo ".debs (the list of packages the stage was made from)"
		return 0
	fi
	for p in "$@"; do grep -q "^${p%%:*}_" "$stage/.debs" || echo "package $p"; done
	for f in ${files[@]+"${files[@]}"}; do
		compgen -G "$stage/$f" >/dev/null || echo "$f"
	done
	for m in ${STAGE_MODULES:-}; do
		cat "$stage"/lib/modules/*/modules.idx 2>/dev/null | grep -q "^$m " || echo "module $m"
	done
}

# derived_current FILE STAGE: true iff FILE exists and was made from the stage's current debs.
derived_current() {
	[ -e "$1" ] && [ -e "$1.from" ] && cmp -s "$1.from" "$2/.debs"
}
# derived_made FILE STAGE: records that FILE was just made from the stage's current debs.
derived_made() {
	cp "$2/.debs" "$1.from"
}
