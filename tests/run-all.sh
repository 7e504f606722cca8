#!/bin/bash
# Every test of the project: formatting and lints, unit and integration tests (fake xenstored,
# fake sysfs/procfs trees), then the end-to-end suite on real Xen in QEMU (tests/e2e/run.sh).
# Needs root for the e2e suite (it installs QEMU and friends with apt-get on first use).
# E2E=0 skips the e2e suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
if [ "${E2E:-1}" != 0 ]; then
  tests/e2e/run.sh
fi
echo "all tests passed"
