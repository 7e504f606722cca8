#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# yocto/check.sh: offline checks of meta-xenbeacon: xenbeacon-crates.inc is in sync with
# Cargo.lock, and oelint-adv (PyPI) finds nothing in the layer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
TOOLS=${XENBEACON_TOOLS:-${HOME:-/root}/.cache/xenbeacon}
VENV=$TOOLS/venv
OELINT_VERSION=${OELINT_VERSION:-9.11.2}

if ! [ -x "$VENV/bin/oelint-adv" ]; then
	if ! /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq -o DPkg::Lock::Timeout=600
		apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 python3-venv >/dev/null
	fi
	mkdir -p "$TOOLS"
	[ -x "$VENV/bin/python3" ] || /usr/bin/python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q --disable-pip-version-check "oelint-adv==$OELINT_VERSION"
fi

echo "==> xenbeacon-crates.inc against Cargo.lock"
./update-crates.sh --check

echo "==> oelint-adv $("$VENV/bin/oelint-adv" --version 2>&1 | tail -1)"
# homepageping needs the network; the generated crates.inc uses OE's own layout, which
# the two spacing rules dislike (it is rewritten by the tool, not by hand).
OELINT_SKIP_CONFIG=1 "$VENV/bin/oelint-adv" --release wrynose --quiet \
	--suppress oelint.vars.homepageping \
	--suppress oelint.vars.inconspaces \
	--suppress oelint.vars.notneededspace \
	meta-xenbeacon/recipes-*/*/*.bb meta-xenbeacon/recipes-*/*/*.inc
echo "  oelint-adv: clean"
