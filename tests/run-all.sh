#!/bin/bash
# Every test of the project: formatting and lints, unit and integration tests (fake xenstored,
# fake sysfs/procfs trees), then the end-to-end suite on real Xen in QEMU (tests/e2e/run.sh).
# then the packaging checks (.ci/packaging: cross builds for every target, Buildroot, Yocto,
# init scripts). Needs root (network namespaces, apt-get on first use).
# and a bounded fuzzing run of every cargo-fuzz target (.ci/fuzz, FUZZ_SECS each, default 20).
# E2E=0 skips the e2e suite, SYSTEMD=0 the systemd unit test (tests/systemd/run.sh),
# PACKAGING=0 the packaging checks, FUZZ=0 the fuzzing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
# the guest-image feature set (no dom0 commands) must build clean too
cargo clippy --locked --all-targets --no-default-features -- -D warnings
cargo test --locked
# the shipped systemd unit, sandbox and all, under a real systemd in a container
if [ "${SYSTEMD:-1}" != 0 ]; then
  tests/systemd/run.sh
fi
if [ "${E2E:-1}" != 0 ]; then
  tests/e2e/run.sh
  E2E_ARCH=arm64 tests/e2e/run.sh
fi
if [ "${PACKAGING:-1}" != 0 ]; then
  .ci/packaging
fi
if [ "${FUZZ:-1}" != 0 ]; then
  .ci/fuzz "${FUZZ_SECS:-20}"
fi
echo "all tests passed"
