#!/bin/bash
# Every test of the project: formatting and lints, unit and integration tests (fake xenstored,
# fake sysfs/procfs trees), the systemd unit under a real systemd (tests/systemd/run.sh), the
# end-to-end suite on real Xen in QEMU (tests/e2e/run.sh), the packaging checks (.ci/packaging:
# cross builds for every target, Buildroot, Yocto, init scripts, the .deb and .rpm installed
# and run), and a bounded fuzzing run of every cargo-fuzz target (.ci/fuzz, FUZZ_SECS each,
# default 20).
# Needs root (network namespaces, containers) and installs what it needs on a fresh Debian 12
# with rustup (apt packages, rustup components and targets; each later stage installs its own).
# E2E=0 skips the e2e suite, SYSTEMD=0 the systemd unit test, PACKAGING=0 the packaging checks,
# FUZZ=0 the fuzzing. NO_INSTALL=1 installs nothing and names what is missing instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tests/support/errtrap.sh
. tests/support/errtrap.sh
errtrap tests/run-all.sh

# Debian package:command pairs the stages run directly (a fresh Debian 12 has no `ip`, no g++).
tools=(iproute2:ip gcc:cc strace:strace)  # strace: the rtnetlink failure test injects with it
# tests/prometheus.rs: promtool, a real Prometheus and node_exporter
tools+=(prometheus:promtool prometheus-node-exporter:prometheus-node-exporter)
tools+=(ansible-core:ansible-inventory)  # tests/ansible.rs runs the real Ansible on the inventory script
[ "${E2E:-1}" != 0 ] && tools+=(qemu-system-x86:qemu-system-x86_64 busybox-static:/bin/busybox cpio:cpio
  xz-utils:xz binutils:readelf)
[ "${PACKAGING:-1}" != 0 ] && tools+=(binutils:readelf file:file)
[ "${FUZZ:-1}" != 0 ] && tools+=(g++:g++)  # libfuzzer-sys compiles libFuzzer (C++)
need=()
for p in "${tools[@]}"; do
  command -v "${p#*:}" >/dev/null 2>&1 || [[ " ${need[*]} " == *" ${p%%:*} "* ]] || need+=("${p%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "${NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
    echo "tests/run-all.sh: missing Debian packages: ${need[*]} (apt-get install ${need[*]}; run as root to have them installed)" >&2
    exit 1
  fi
  echo "==> apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=600
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
fi
command -v rustup >/dev/null || { echo "tests/run-all.sh: rustup missing (https://rustup.rs)" >&2; exit 1; }
missing=()
for c in rustfmt clippy; do
  rustup component list --installed | grep -q "^$c" || missing+=("component add $c")
done
if [ "${E2E:-1}" != 0 ]; then
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$t" || missing+=("target add $t")
  done
fi
for m in "${missing[@]}"; do
  if [ "${NO_INSTALL:-0}" = 1 ]; then
    echo "tests/run-all.sh: missing: rustup $m" >&2
  else
    # shellcheck disable=SC2086 # "component add rustfmt" is three words on purpose
    rustup $m
  fi
done
[ "${NO_INSTALL:-0}" = 1 ] && [ ${#missing[@]} -gt 0 ] && exit 1

# timed COMMAND...: runs a stage and says how long it took (README's timings come from these)
timings=()
timed() {
  local s=$SECONDS
  "$@"
  timings+=("$*: $((SECONDS - s)) s")
  echo "==> $*: $((SECONDS - s)) s" >&2
}
timed cargo fmt --check
(cd tests/fuzz && cargo fmt --check)  # the fuzz crate is outside the workspace
timed cargo clippy --locked --all-targets -- -D warnings
# the guest-image feature set (no dom0 commands) must build clean too
timed cargo clippy --locked --all-targets --no-default-features -- -D warnings
timed cargo test --locked
# the shipped systemd unit, sandbox and all, under a real systemd in a container
if [ "${SYSTEMD:-1}" != 0 ]; then
  timed tests/systemd/run.sh
fi
if [ "${E2E:-1}" != 0 ]; then
  timed tests/e2e/fetch-test.sh   # the harness's package fetching against a fake apt-get (offline, seconds)
  timed tests/e2e/run.sh
  E2E_ARCH=arm64 timed tests/e2e/run.sh
fi
if [ "${PACKAGING:-1}" != 0 ]; then
  timed .ci/packaging
fi
if [ "${FUZZ:-1}" != 0 ]; then
  timed .ci/fuzz "${FUZZ_SECS:-20}"
fi
printf '==> %s\n' "${timings[@]}" >&2
echo "all tests passed in $SECONDS s"
