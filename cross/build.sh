#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# cross/build.sh: build fully static musl release binaries of xenbeacon for every supported
# target, check that each one is static and runs (natively or under qemu-user), and print a
# size table. Installs what it needs (apt packages, rustup targets/components, a Python venv
# with ziglang + cargo-zigbuild), so it runs on a fresh Debian 12 with rustup.
#
# Usage: cross/build.sh [--size] [--no-install] [--targets "T1 T2 ..."] [--help]
#
#   --size        also build the guest-image binaries for x86_64 and aarch64: std rebuilt
#                 for size (nightly -Zbuild-std, -Cpanic=immediate-abort, std feature
#                 optimize_for_size), no dom0 commands (--no-default-features); reported
#                 beside the plain builds (the product target, aarch64, is < 400 KiB).
#   --no-install  do not apt-get/pip/rustup anything; fail if something is missing.
#   --targets     build only these triples (default: all five below).
#
# Targets and how they are built:
#   x86_64-unknown-linux-musl        prebuilt rust-std (rustup), linked by rust-lld
#   aarch64-unknown-linux-musl       prebuilt rust-std (rustup), linked by rust-lld  (Pi 4/5 64-bit)
#   armv7-unknown-linux-musleabihf   nightly -Zbuild-std + cargo-zigbuild (zig as linker/libc) (Pi 2/3/4 32-bit)
#   riscv64gc-unknown-linux-musl     nightly -Zbuild-std + cargo-zigbuild
#   arm-unknown-linux-musleabihf     nightly -Zbuild-std + cargo-zigbuild (ARMv6 Pi Zero/1:
#                                    compile/run check only, ARMv6 cannot be a Xen guest)
# rustup has no prebuilt musl std for the last three (HTTP 404), hence build-std.
#
# Profile: every build uses `cargo build --release` with the [profile.release] of Cargo.toml
# unchanged (opt-level "z", lto, codegen-units 1, panic abort, strip). Any CARGO_PROFILE_*,
# RUSTFLAGS or CARGO_BUILD_* in the caller's environment is removed first. The Buildroot
# package (buildroot/package/xenbeacon/xenbeacon.mk) re-asserts the same values because
# Buildroot's cargo infrastructure overrides them; the Yocto recipe uses them as they are
# except strip (OE strips and splits debug info itself). See docs/raspberry-pi-4.md.
#
# Output: target/cross/<triple>/xenbeacon (and target/cross/<triple>-size/ for x86_64 and
# aarch64 with --size), target/cross/sizes.txt. Cargo's own build tree is target/cross/cargo.
#
# Environment knobs: XENBEACON_TOOLS (venv location, default ~/.cache/xenbeacon),
# XENBEACON_NIGHTLY (toolchain for build-std, default "nightly"), ZIGLANG_VERSION and
# CARGO_ZIGBUILD_VERSION (pip pins).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

ALL_TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf riscv64gc-unknown-linux-musl arm-unknown-linux-musleabihf"
TARGETS=$ALL_TARGETS
SIZE=0
INSTALL=1
TOOLS=${XENBEACON_TOOLS:-${HOME:-/root}/.cache/xenbeacon}
VENV=$TOOLS/venv
NIGHTLY=${XENBEACON_NIGHTLY:-nightly}
ZIGLANG_VERSION=${ZIGLANG_VERSION:-0.17.1}
CARGO_ZIGBUILD_VERSION=${CARGO_ZIGBUILD_VERSION:-0.24.0}
OUT=$ROOT/target/cross
export CARGO_TARGET_DIR=$OUT/cargo

usage() { sed -n '4,18s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--size) SIZE=1 ;;
	--no-install) INSTALL=0 ;;
	--targets) shift; TARGETS=${1:?--targets needs a list} ;;
	--targets=*) TARGETS=${1#--targets=} ;;
	-h | --help) usage; exit 0 ;;
	*) echo "cross/build.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'cross/build.sh: error: %s\n' "$*" >&2; exit 1; }

# The builds must see Cargo.toml's release profile and nothing else.
while IFS= read -r v; do unset "$v"; done < <(env | sed -n 's/^\(CARGO_PROFILE_[A-Z0-9_]*\)=.*/\1/p')
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET RUSTC_BOOTSTRAP

needs_build_std() {
	case "$1" in
	x86_64-unknown-linux-musl | aarch64-unknown-linux-musl) return 1 ;;
	*) return 0 ;;
	esac
}

runner_for() {
	case "$1" in
	x86_64-*) echo "" ;;
	aarch64-*) echo "qemu-aarch64-static" ;;
	armv7-*) echo "qemu-arm-static" ;;
	arm-*) echo "qemu-arm-static -cpu arm1176" ;;
	riscv64gc-*) echo "qemu-riscv64-static" ;;
	*) die "no runner known for $1" ;;
	esac
}

# ---------------------------------------------------------------- tools
install_tools() {
	local need=() p any_build_std=0 t
	for t in $TARGETS; do needs_build_std "$t" && any_build_std=1; done
	[ "$SIZE" = 1 ] && any_build_std=1

	for p in binutils:readelf file:file gcc:cc qemu-user-static:qemu-aarch64-static; do
		command -v "${p#*:}" >/dev/null 2>&1 || need+=("${p%%:*}")
	done
	if [ "$any_build_std" = 1 ] && ! /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
		need+=(python3-venv)
	fi
	if [ ${#need[@]} -gt 0 ]; then
		[ "$INSTALL" = 1 ] || die "missing Debian packages: ${need[*]}"
		log "apt-get install ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq -o DPkg::Lock::Timeout=600
		apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
	fi

	command -v rustup >/dev/null 2>&1 || die "rustup is required (https://rustup.rs)"
	local stable_targets=$TARGETS
	# the size builds link against the stable toolchain's self-contained musl
	[ "$SIZE" = 1 ] && stable_targets="$stable_targets x86_64-unknown-linux-musl aarch64-unknown-linux-musl"
	for t in $stable_targets; do
		needs_build_std "$t" && continue
		if ! rustup target list --installed | grep -qx "$t"; then
			[ "$INSTALL" = 1 ] || die "rustup target $t missing"
			log "rustup target add $t"
			rustup target add "$t"
		fi
	done
	if [ "$any_build_std" = 1 ]; then
		if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1; then
			[ "$INSTALL" = 1 ] || die "toolchain $NIGHTLY missing"
			log "rustup toolchain install $NIGHTLY"
			rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
		fi
		if ! rustup component list --toolchain "$NIGHTLY" --installed | grep -q '^rust-src'; then
			[ "$INSTALL" = 1 ] || die "rust-src missing for $NIGHTLY"
			log "rustup component add rust-src --toolchain $NIGHTLY"
			rustup component add rust-src --toolchain "$NIGHTLY"
		fi
		if ! "$VENV/bin/python3" -m ziglang version >/dev/null 2>&1 ||
			! [ -x "$VENV/bin/cargo-zigbuild" ]; then
			[ "$INSTALL" = 1 ] || die "no ziglang/cargo-zigbuild venv at $VENV"
			log "pip install ziglang==$ZIGLANG_VERSION cargo-zigbuild==$CARGO_ZIGBUILD_VERSION into $VENV"
			mkdir -p "$TOOLS"
			/usr/bin/python3 -m venv "$VENV"
			"$VENV/bin/pip" install -q --disable-pip-version-check \
				"ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
		fi
		# cargo-zigbuild runs zig as `python3 -m ziglang`: the venv must come first.
		export PATH="$VENV/bin:$PATH"
	fi
	# x86_64 and aarch64 link with rust-lld (shipped with the toolchain); the host
	# linker `cc` is still needed for build scripts and proc-macros.
}

# ---------------------------------------------------------------- build
# build <triple> <out-dir-name> <mode: plain|size>
build() {
	local t=$1 name=$2 mode=$3 bin
	mkdir -p "$OUT/$name"
	if [ "$mode" = size ]; then
		# The guest-image build: std rebuilt with the crate's profile (opt-level z + LTO across
		# std), panics become a trap with no formatting machinery, size-optimised algorithms
		# inside core/alloc, and no dom0 commands (--no-default-features).
		# Linked by rust-lld against the musl that rustup ships for the stable toolchain (crt
		# objects and libc.a from its self-contained directory): zig's libc, which links the
		# other build-std targets, has a malloc that kept 156 KiB anonymous memory resident
		# where musl's keeps 84 KiB (x86_64, measured with /proc/PID/status).
		# The start file is the one rustc itself would pick: x86_64 links static-pie (rcrt1.o
		# relocates itself), aarch64 a plain static executable (crt1.o).
		local sc crt1=crt1.o
		sc=$(rustc --print sysroot)/lib/rustlib/$t/lib/self-contained
		case "$t" in x86_64-*) crt1=rcrt1.o ;; esac
		[ -f "$sc/$crt1" ] || die "$sc/$crt1 missing (rustup target add $t)"
		log "build $t (size: build-std, immediate-abort, optimize_for_size, no dom0 commands)"
		RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Clink-self-contained=no -Lnative=$sc \
-Zpre-link-arg=$sc/$crt1 -Zpre-link-arg=$sc/crti.o -Zpre-link-arg=$sc/crtbegin.o \
-Clink-arg=$sc/crtend.o -Clink-arg=$sc/crtn.o" \
			CARGO_TARGET_DIR="$OUT/cargo-size" \
			cargo "+$NIGHTLY" --config cross/config.toml build --release --locked --target "$t" \
			--no-default-features -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
		bin=$OUT/cargo-size/$t/release/xenbeacon
	elif needs_build_std "$t"; then
		log "build $t (cargo-zigbuild, -Zbuild-std on $NIGHTLY)"
		# link-self-contained=no: rustc would otherwise ask for the self-contained crt1.o
		# that a build-std sysroot does not have; zig supplies crt, libc and libunwind.
		RUSTFLAGS="-Clink-self-contained=no -Alinker-messages" \
			cargo "+$NIGHTLY" zigbuild --release --locked --target "$t" \
			-Zbuild-std=std,panic_abort
		bin=$CARGO_TARGET_DIR/$t/release/xenbeacon
	else
		log "build $t (prebuilt std, rust-lld)"
		cargo --config cross/config.toml build --release --locked --target "$t"
		bin=$CARGO_TARGET_DIR/$t/release/xenbeacon
	fi
	install -m 0755 "$bin" "$OUT/$name/xenbeacon"
}

# ---------------------------------------------------------------- verify
FAILED=0
fail() { printf 'FAIL %s: %s\n' "$1" "$2" >&2; FAILED=1; }

# verify <triple> <out-dir-name>
verify() {
	local t=$1 name=$2 bin runner out desc arch
	bin=$OUT/$name/xenbeacon
	runner=$(runner_for "$t")
	desc=$(file -b "$bin")
	case "$desc" in
	*"statically linked"* | *"static-pie linked"*) ;;
	*) fail "$name" "file(1) does not say static: $desc" ;;
	esac
	if readelf -lW "$bin" | grep -q 'INTERP'; then fail "$name" "has a PT_INTERP program header"; fi
	if readelf -dW "$bin" | grep -q '(NEEDED)'; then fail "$name" "has DT_NEEDED entries"; fi
	case "$t" in
	arm-*) arch=v6 ;;
	armv7-*) arch=v7 ;;
	*) arch= ;;
	esac
	if [ -n "$arch" ] && ! readelf -A "$bin" | grep -q "Tag_CPU_arch: $arch\$"; then
		fail "$name" "Tag_CPU_arch is not $arch: $(readelf -A "$bin" | grep Tag_CPU_arch)"
	fi
	# shellcheck disable=SC2086 # $runner is a command plus its options
	if ! out=$($runner "$bin" --version 2>&1) || ! printf '%s' "$out" | grep -q '^xenbeacon '; then
		fail "$name" "--version under '${runner:-native}': $out"
	fi
	# shellcheck disable=SC2086
	if ! out=$($runner "$bin" --dry-run 2>&1) ||
		! printf '%s\n' "$out" | grep -q '^attr/PVAddons/Installed = 1$'; then
		fail "$name" "--dry-run under '${runner:-native}': $out"
	fi
	printf 'ok   %-40s %s | runs under %s\n' "$name" "$(printf '%s' "$desc" | cut -d, -f1-2)" "${runner:-native}" >&2
}

# ---------------------------------------------------------------- main
install_tools
mkdir -p "$OUT"
rows=()
for t in $TARGETS; do
	build "$t" "$t" plain
	verify "$t" "$t"
	rows+=("$t")
done
if [ "$SIZE" = 1 ]; then
	for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
		build "$t" "$t-size" size
		verify "$t" "$t-size"
		rows+=("$t-size")
	done
fi

{
	printf '%-36s %10s %9s\n' "target" "bytes" "KiB"
	for r in "${rows[@]}"; do
		b=$(stat -c %s "$OUT/$r/xenbeacon")
		awk -v r="$r" -v b="$b" 'BEGIN { printf "%-36s %10d %9.1f\n", r, b, b / 1024 }'
	done
} | tee "$OUT/sizes.txt"

[ "$FAILED" = 0 ] || die "some checks failed (see FAIL lines above)"
log "all binaries static and running; outputs in target/cross/<triple>/xenbeacon"
