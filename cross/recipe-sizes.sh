#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# cross/recipe-sizes.sh: the size of the binary that the Buildroot package and the Yocto recipe
# install, rebuilt here the way each builds it (their cargo command, environment, Rust version,
# target and strip), for aarch64 (the Raspberry Pi 4 and qemu-virt defconfigs). Prints a table
# (bytes, KiB) and writes it to target/cross/recipe-sizes.txt.
#
#   Buildroot  rust-bin $BUILDROOT_RUST (prebuilt std), aarch64-unknown-linux-musl (the
#              defconfigs' Bootlin musl toolchain), `cargo install` with XENBEACON_CARGO_ENV
#              (opt-level z, LTO, 1 codegen unit) and XENBEACON_CARGO_INSTALL_OPTS, then
#              Buildroot's `strip --remove-section=.comment --remove-section=.note`.
#   Yocto      rust $YOCTO_RUST, `cargo build --release` with CARGO_PROFILE_RELEASE_STRIP=false
#              and PACKAGECONFIG's flags, then OE's strip (the same two sections);
#              TCLIBC glibc (default: aarch64-unknown-linux-gnu, dynamic, OE's TARGET_LDFLAGS)
#              and musl (static).
# Each with and without the dom0 commands (the default feature "dom0"), next to the
# guest image of cross/build.sh --size when target/cross/ has it.
#
# Stand-ins, as no Buildroot or Yocto build runs here: rust-lld with rustup's musl (Rust's
# bundled musl 1.2.5) instead of the Bootlin gcc and its musl; Debian's aarch64-linux-gnu-gcc
# and glibc 2.36 instead of Yocto's; rustup's prebuilt std instead of Yocto's libstd-rs
# (built from the same source with the same release settings).
# Installs the two Rust versions (rustup, minimal profile) and Debian's aarch64 cross gcc.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILDROOT_RUST=${BUILDROOT_RUST:-1.98.1} # buildroot package/rust-bin/rust-bin.mk
YOCTO_RUST=${YOCTO_RUST:-1.94.1}         # openembedded-core wrynose meta/recipes-devtools/rust
OUT=target/cross
W=$OUT/recipe-sizes
mkdir -p "$W"
while IFS= read -r v; do unset "$v"; done < <(env | sed -n 's/^\(CARGO_PROFILE_[A-Z0-9_]*\)=.*/\1/p')
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET RUSTC_BOOTSTRAP

for v in "$BUILDROOT_RUST" "$YOCTO_RUST"; do
	rustup run "$v" rustc --version >/dev/null 2>&1 ||
		rustup toolchain install "$v" --profile minimal >/dev/null
	for t in aarch64-unknown-linux-musl aarch64-unknown-linux-gnu; do
		rustup target list --toolchain "$v" --installed | grep -qx "$t" ||
			rustup target add --toolchain "$v" "$t" >/dev/null
	done
done
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v aarch64-linux-gnu-strip >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
		gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi
STRIP="aarch64-linux-gnu-strip --remove-section=.comment --remove-section=.note"

rows=()
# measure NAME TOOLCHAIN TARGET FEATURES(dom0|domU) [ENV...]: build, strip like the recipe, record
measure() {
	local name=$1 tc=$2 t=$3 feat=$4 bin
	shift 4
	local flags=()
	[ "$feat" = domU ] && flags=(--no-default-features)
	env CARGO_TARGET_DIR="$W/cargo-$tc" "$@" \
		cargo "+$tc" build -q --release --locked --target "$t" "${flags[@]}"
	bin=$W/$name
	cp "$W/cargo-$tc/$t/release/xenbeacon" "$bin"
	$STRIP "$bin"
	rows+=("$(printf '%-52s %9s %7.1f  %s' "$name" "$(stat -c %s "$bin")" \
		"$(awk -v b="$(stat -c %s "$bin")" 'BEGIN {print b / 1024}')" \
		"$(file -b "$bin" | grep -o 'statically linked\|dynamically linked' | head -1)")")
	echo "${rows[-1]}" >&2
}

BR_ENV=(CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld)
OE_LDFLAGS="-Clink-arg=-Wl,-O1 -Clink-arg=-Wl,--hash-style=gnu -Clink-arg=-Wl,--as-needed -Clink-arg=-Wl,-z,relro,-z,now"
OE_GNU=(CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
	"CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS=$OE_LDFLAGS")
OE_MUSL=(CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld)

measure "buildroot-$BUILDROOT_RUST-musl-domU" "$BUILDROOT_RUST" aarch64-unknown-linux-musl domU "${BR_ENV[@]}"
measure "buildroot-$BUILDROOT_RUST-musl-dom0" "$BUILDROOT_RUST" aarch64-unknown-linux-musl dom0 "${BR_ENV[@]}"
measure "yocto-$YOCTO_RUST-glibc-domU" "$YOCTO_RUST" aarch64-unknown-linux-gnu domU "${OE_GNU[@]}"
measure "yocto-$YOCTO_RUST-glibc-dom0 (PACKAGECONFIG default)" "$YOCTO_RUST" aarch64-unknown-linux-gnu dom0 "${OE_GNU[@]}"
measure "yocto-$YOCTO_RUST-musl-domU" "$YOCTO_RUST" aarch64-unknown-linux-musl domU "${OE_MUSL[@]}"
measure "yocto-$YOCTO_RUST-musl-dom0" "$YOCTO_RUST" aarch64-unknown-linux-musl dom0 "${OE_MUSL[@]}"
# What the recipes could add on their stable toolchains (RUSTC_BOOTSTRAP=1 unlocks -Z flags of
# rustc, but not a size-built std: that needs the std sources, -Zbuild-std):
measure "buildroot-$BUILDROOT_RUST-musl-domU -Zlocation-detail=none" "$BUILDROOT_RUST" aarch64-unknown-linux-musl domU \
	"${BR_ENV[@]}" RUSTC_BOOTSTRAP=1 CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS=-Zlocation-detail=none
measure "buildroot-$BUILDROOT_RUST-musl-domU non-PIE (-Crelocation-model=static)" "$BUILDROOT_RUST" aarch64-unknown-linux-musl domU \
	"${BR_ENV[@]}" CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS=-Crelocation-model=static

{
	printf '%-52s %9s %7s  %s\n' "aarch64 build (rust version, libc, features)" bytes KiB linking
	printf '%s\n' "${rows[@]}"
	if [ -f "$OUT/aarch64-unknown-linux-musl-size/xenbeacon" ]; then
		b=$(stat -c %s "$OUT/aarch64-unknown-linux-musl-size/xenbeacon")
		printf '%-52s %9s %7.1f  %s\n' "guest image (cross/build.sh --size)" "$b" "$(awk -v b="$b" 'BEGIN {print b / 1024}')" "statically linked"
	fi
} | tee "$OUT/recipe-sizes.txt"
