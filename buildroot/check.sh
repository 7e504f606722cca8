#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# buildroot/check.sh: offline checks of the BR2_EXTERNAL tree (CI-safe, no Buildroot needed).
#  1. kconfiglib parses Config.in against a stub of the Buildroot symbols it uses, reports
#     undefined symbols, and checks the select/depends semantics.
#  2. shellcheck on the init scripts.
#  3. A small re-implementation of the offline rules of Buildroot's check-package that apply
#     to this tree (.mk header and variable prefixes, .hash format and license hashes,
#     Config.in indentation and help text, S-script naming/variables/mode, defconfigs).
# With BUILDROOT_DIR=<a Buildroot checkout> it also runs that checkout's utils/check-package
# and `make <defconfig>` + `printvars` for each defconfig (nothing of it is copied here).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
BR_EXT=$PWD
TOOLS=${XENBEACON_TOOLS:-${HOME:-/root}/.cache/xenbeacon}
VENV=$TOOLS/venv
INSTALL=${INSTALL:-1}
fail=0

log() { printf '==> %s\n' "$*"; }

# ---------------------------------------------------------------- tools
if ! command -v shellcheck >/dev/null 2>&1 ||
	! /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
	[ "$INSTALL" = 1 ] || { echo "shellcheck/python3-venv missing" >&2; exit 1; }
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq -o DPkg::Lock::Timeout=600
	apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 shellcheck python3-venv >/dev/null
fi
if ! "$VENV/bin/python3" -c 'import kconfiglib' >/dev/null 2>&1; then
	[ "$INSTALL" = 1 ] || { echo "kconfiglib missing in $VENV" >&2; exit 1; }
	mkdir -p "$TOOLS"
	[ -x "$VENV/bin/python3" ] || /usr/bin/python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q --disable-pip-version-check kconfiglib==14.1.0
fi

# ---------------------------------------------------------------- 1. kconfiglib
log "kconfiglib: Config.in against stubbed Buildroot symbols"
stub=$(mktemp)
trap 'rm -f "$stub"' EXIT
cat >"$stub" <<'EOF'
mainmenu "xenbeacon BR2_EXTERNAL test harness"
# Stubs of the Buildroot symbols the external tree refers to (package/rustc/Config.in.host).
config BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS
	bool "stub: rust target arch supported"
	default y
config BR2_PACKAGE_HOST_RUSTC
	bool
# package/xen/Config.in
config BR2_PACKAGE_XEN_TOOLS
	bool "stub: xen tools"
source "$(BR2_EXTERNAL_XENBEACON_PATH)/Config.in"
EOF
if ! BR2_EXTERNAL_XENBEACON_PATH=$BR_EXT KCONFIG_WARN_UNDEF=y STUB=$stub \
	"$VENV/bin/python3" - <<'EOF'; then
import os, sys, kconfiglib
k = kconfiglib.Kconfig(os.environ["STUB"], warn_to_stderr=False)
bad = list(k.warnings)
pkg, rustc, arch = (k.syms[n] for n in ("BR2_PACKAGE_XENBEACON", "BR2_PACKAGE_HOST_RUSTC",
                                         "BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS"))
if not pkg.nodes:
    bad.append("BR2_PACKAGE_XENBEACON is not defined by the external tree")
pkg.set_value(2)
if pkg.tri_value != 2 or rustc.tri_value != 2:
    bad.append("enabling BR2_PACKAGE_XENBEACON does not select BR2_PACKAGE_HOST_RUSTC")
arch.set_value(0)
if pkg.visibility != 0 or pkg.tri_value != 0:
    bad.append("BR2_PACKAGE_XENBEACON is still available without Rust target support")
for node in pkg.nodes:
    if not node.help:
        bad.append("BR2_PACKAGE_XENBEACON has no help text")
# The dom0 commands default to on exactly when the image has the Xen tools (a dom0).
arch.set_value(2)
pkg.set_value(2)
dom0, xen = k.syms["BR2_PACKAGE_XENBEACON_DOM0_COMMANDS"], k.syms["BR2_PACKAGE_XEN_TOOLS"]
for tools, want in ((0, 0), (2, 2)):
    xen.set_value(tools)
    if dom0.tri_value != want:
        bad.append("BR2_PACKAGE_XENBEACON_DOM0_COMMANDS is %d with BR2_PACKAGE_XEN_TOOLS=%d"
                   % (dom0.tri_value, tools))
for w in bad:
    print("  kconfig:", w)
print("  %d symbols parsed, %d problems" % (len(k.unique_defined_syms), len(bad)))
sys.exit(1 if bad else 0)
EOF
	fail=1
fi

# ---------------------------------------------------------------- 2. shellcheck
log "shellcheck: init scripts"
if shellcheck -s sh package/xenbeacon/S99xenbeacon package/xenbeacon/xenbeacon.initd; then
	echo "  clean"
else
	fail=1
fi

# ---------------------------------------------------------------- 3. check-package rules
log "check-package style rules (own implementation)"
if ! "$VENV/bin/python3" - <<'EOF'; then
import glob, hashlib, os, re, stat, sys

errors = []
def err(path, line, msg):
    errors.append("%s:%s: %s" % (path, line, msg))

def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")

# Generic text rules for every file of the tree.
for path in sorted(p for p in glob.glob("**/*", recursive=True) if os.path.isfile(p)):
    text = open(path, encoding="utf-8").read()
    if not text.endswith("\n"):
        err(path, "EOF", "missing newline at end of file")
    ls = text.split("\n")
    for i, l in enumerate(ls, 1):
        if l != l.rstrip():
            err(path, i, "trailing whitespace")
        if i > 1 and l == "" and ls[i - 2] == "" and i < len(ls):
            err(path, i, "consecutive empty lines")

# external.desc / BR2_EXTERNAL_<NAME>_PATH
desc = dict(l.split(":", 1) for l in lines("external.desc") if ":" in l)
name = desc.get("name", "").strip()
if not re.fullmatch(r"[A-Za-z0-9_]+", name):
    err("external.desc", 1, "name must match [A-Za-z0-9_]+")
for path in ["Config.in", "external.mk"] + glob.glob("configs/*_defconfig"):
    for i, l in enumerate(lines(path), 1):
        for m in re.findall(r"BR2_EXTERNAL_(\w+?)_PATH", l):
            if m != name:
                err(path, i, "BR2_EXTERNAL_%s_PATH does not match external.desc name %s" % (m, name))

for pkgdir in sorted(glob.glob("package/*/")):
    pkg = os.path.basename(pkgdir.rstrip("/"))
    PKG = pkg.upper().replace("-", "_")

    # .mk: header, variable prefix, infrastructure
    mk = os.path.join(pkgdir, pkg + ".mk")
    ml = lines(mk)
    header = ["#" * 80, "#", "# " + pkg, "#", "#" * 80, ""]
    if ml[:6] != header:
        err(mk, 1, "header must be the 80-column '#' block naming the package, then an empty line")
    for i, l in enumerate(ml, 1):
        m = re.match(r"^(?:define\s+)?([A-Za-z0-9_]+)\s*(?:[+:?]?=|$)", l)
        if m and not l.startswith(("\t", "#", "$", "endef", "ifeq", "ifneq", "else", "endif", "include")):
            if not m.group(1).startswith(PKG + "_"):
                err(mk, i, "variable %s does not start with %s_" % (m.group(1), PKG))
        if re.match(r"^ +\S", l):
            err(mk, i, "indent with tabs, not spaces")
    for v in ("VERSION", "SITE", "LICENSE", "LICENSE_FILES"):
        if not any(re.match(r"^%s_%s\s*=" % (PKG, v), l) for l in ml):
            err(mk, "-", "%s_%s is not set" % (PKG, v))
    if not any(l in ("$(eval $(cargo-package))",) for l in ml):
        err(mk, "-", "does not use $(eval $(cargo-package))")

    # .hash: format, and the license hashes match the files at the project root
    hp = os.path.join(pkgdir, pkg + ".hash")
    sizes = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
    hashed = {}
    for i, l in enumerate(lines(hp), 1):
        if not l or l.startswith("#"):
            continue
        m = re.fullmatch(r"(\w+)  ([0-9a-f]+)  (\S+)", l)
        if not m or m.group(1) not in sizes or len(m.group(2)) != sizes[m.group(1)]:
            err(hp, i, "expected '<type>  <hex>  <file>' (two spaces) with a valid length")
            continue
        hashed[m.group(3)] = (m.group(1), m.group(2), i)
    lic = next((l.split("=", 1)[1].split() for l in ml if re.match(PKG + r"_LICENSE_FILES\s*=", l)), [])
    for f in lic:
        if f not in hashed:
            err(hp, "-", "no hash for license file %s" % f)
            continue
        kind, digest, i = hashed[f]
        src = os.path.join("..", f)
        if os.path.exists(src) and hashlib.new(kind, open(src, "rb").read()).hexdigest() != digest:
            err(hp, i, "hash of %s does not match the project's %s" % (f, f))

    # Config.in: indentation and help text
    cp = os.path.join(pkgdir, "Config.in")
    in_help = False
    for i, l in enumerate(lines(cp), 1):
        if not l:
            continue
        if re.match(r"^(config|menuconfig|menu|endmenu|if|endif|choice|endchoice|comment|source)\b", l):
            in_help = False
            continue
        if in_help:
            if not l.startswith("\t  "):
                err(cp, i, "help text must be indented with a tab and two spaces")
            elif len(l.expandtabs(8)) > 72:
                err(cp, i, "help text longer than 72 columns")
            continue
        if not re.match(r"^\t\S", l):
            err(cp, i, "attributes must be indented with one tab")
        if l.strip() == "help":
            in_help = True
    ctext = "\n".join(lines(cp))
    if "depends on BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS" not in ctext:
        err(cp, "-", "missing 'depends on BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS'")
    if "select BR2_PACKAGE_HOST_RUSTC" not in ctext:
        err(cp, "-", "missing 'select BR2_PACKAGE_HOST_RUSTC'")

    # SysV start scripts
    for sp in glob.glob(os.path.join(pkgdir, "S[0-9]*")):
        sl = lines(sp)
        daemon = next((re.fullmatch(r'DAEMON="([^"]*)"', l) for l in sl if l.startswith("DAEMON=")), None)
        if not daemon or "/" in daemon.group(1):
            err(sp, "-", 'DAEMON="<name>" without a path is required')
        elif not re.fullmatch(r"S\d\d" + re.escape(daemon.group(1)), os.path.basename(sp)):
            err(sp, "-", "file name must be S<NN>%s" % daemon.group(1))
        if 'PIDFILE="/var/run/$DAEMON.pid"' not in sl:
            err(sp, "-", 'PIDFILE="/var/run/$DAEMON.pid" is required')
        if os.stat(sp).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            err(sp, "-", "start scripts are kept non-executable (the .mk installs them 0755)")
        for i, l in enumerate(sl, 1):
            if re.match(r"^ +\S", l):
                err(sp, i, "indent with tabs, not spaces")

for dc in sorted(glob.glob("configs/*_defconfig")):
    dl = lines(dc)
    if "BR2_DOWNLOAD_FORCE_CHECK_HASHES=y" not in dl:
        err(dc, "-", "BR2_DOWNLOAD_FORCE_CHECK_HASHES=y is required")
    if "BR2_PACKAGE_XENBEACON=y" not in dl:
        err(dc, "-", "does not enable BR2_PACKAGE_XENBEACON")
    if not any(re.match(r"BR2_TOOLCHAIN_(EXTERNAL_BOOTLIN_\w+_MUSL_\w+|BUILDROOT_MUSL)=y", l) for l in dl):
        err(dc, "-", "does not use a musl toolchain (the agent is meant to be a static musl binary)")
    if "BR2_TOOLCHAIN_BUILDROOT_MUSL=y" in dl and "BR2_TOOLCHAIN_BUILDROOT_CXX=y" not in dl:
        err(dc, "-", "a Buildroot musl toolchain needs BR2_TOOLCHAIN_BUILDROOT_CXX=y for Rust")

for e in errors:
    print("  " + e)
print("  %d problems" % len(errors))
sys.exit(1 if errors else 0)
EOF
	fail=1
fi

# ---------------------------------------------------------------- optional: real Buildroot
if [ -n "${BUILDROOT_DIR:-}" ]; then
	log "Buildroot checkout $BUILDROOT_DIR: check-package, defconfig, printvars"
	"$VENV/bin/pip" install -q --disable-pip-version-check flake8 python-magic
	# shellcheck disable=SC2046 # one argument per file
	PATH=$VENV/bin:$PATH "$VENV/bin/python3" "$BUILDROOT_DIR/utils/check-package" -b \
		$(find . -type f -not -name check.sh) || fail=1
	for dc in configs/*_defconfig; do
		name=$(basename "$dc")
		out=$(mktemp -d)
		make -s -C "$BUILDROOT_DIR" BR2_EXTERNAL="$BR_EXT" O="$out" "$name" >/dev/null
		if grep -qx 'BR2_PACKAGE_XENBEACON=y' "$out/.config"; then
			echo "  $name: BR2_PACKAGE_XENBEACON=y kept"
		else
			echo "  $name: BR2_PACKAGE_XENBEACON was dropped by kconfig"
			fail=1
		fi
		make -s -C "$out" printvars \
			VARS='RUSTC_TARGET_NAME XENBEACON_SOURCE XENBEACON_DEPENDENCIES XENBEACON_CARGO_ENV XENBEACON_CARGO_BUILD_OPTS' |
			sed 's/^/    /'
		rm -rf "$out"
	done
fi

if [ "$fail" = 0 ]; then
	log "buildroot/check.sh: all checks passed"
else
	log "buildroot/check.sh: FAILED"
	exit 1
fi
