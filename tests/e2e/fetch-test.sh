#!/bin/bash
# Checks how the e2e harness gets its Debian packages (tests/e2e/lib/fetch.sh) when the mirror
# lists a version whose file it lacks, without a broken mirror: a local apt repository (two
# versions of one package, one of another) and a fake `apt-get` first in PATH that answers
# "404 Not Found" for one package's candidate and passes everything else to the real apt-get.
# Also checks that a cached stage lacking a file (the HVM device model) or made from other debs
# (a new kernel) is seen as such. Offline, a few seconds; tests/run-all.sh runs it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/support/errtrap.sh
. "$HERE/../support/errtrap.sh"
errtrap tests/e2e/fetch-test.sh
# shellcheck source=tests/e2e/lib/fetch.sh
. "$HERE/lib/fetch.sh"
need dpkg:dpkg-deb apt:apt-get coreutils:sha256sum

T=$(mktemp -d /tmp/xenbeacon-fetch-test.XXXXXX)
chmod 755 "$T"   # apt's _apt user reads the repository
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "  ok   $*"; }
bad() { failed=$((failed + 1)); echo "  FAIL $*"; }

# ---- a local apt repository: xb-probe 1.0 and 2.0 (the candidate), xb-other 1.0
ARCH=$(dpkg --print-architecture)
R=$T/repo; P=$R/dists/test/main/binary-$ARCH
mkdir -p "$P" "$R/pool"
mkdeb() { # name version [depends]
	local d=$T/build/$1-$2 f=$R/pool/${1}_${2}_all.deb fields
	fields="Package: $1
Version: $2
Architecture: all
Maintainer: xenbeacon tests <t@localhost>${3:+
Depends: $3}"
	mkdir -p "$d/DEBIAN" "$d/usr/share/$1"
	printf '%s\nDescription: fetch test package\n' "$fields" > "$d/DEBIAN/control"
	echo "$1 $2" > "$d/usr/share/$1/version"
	dpkg-deb --build -Zgzip "$d" "$f" >/dev/null
	printf '%s\nFilename: pool/%s\nSize: %s\nSHA256: %s\nDescription: fetch test package\n\n' "$fields" \
		"${f##*/}" "$(stat -c %s "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)" >> "$P/Packages"
}
mkdeb xb-probe 1.0
mkdeb xb-probe 2.0
mkdeb xb-other 1.0
# the harness's kernel metapackage, naming a kernel this repository lacks like every Xen package
mkdeb "linux-image-$ARCH" 1.0 "linux-image-6.1.0-99-$ARCH"
mkdeb "linux-image-6.1.0-99-$ARCH" 1.0
{
	printf 'Suite: test\nCodename: test\nComponents: main\nArchitectures: %s\nDate: %s\nSHA256:\n' "$ARCH" "$(date -Ru)"
	printf ' %s %s main/binary-%s/Packages\n' "$(sha256sum < "$P/Packages" | cut -d' ' -f1)" "$(stat -c %s "$P/Packages")" "$ARCH"
} > "$R/dists/test/Release"
chmod -R a+rX "$R"
# apt sees only that repository (and no installed packages)
mkdir -p "$T/lists/partial" "$T/cache/archives/partial" "$T/parts"
: > "$T/status"
echo "deb [trusted=yes] file:$R test main" > "$T/sources.list"
cat > "$T/apt.conf" <<EOF
Dir::Etc::SourceList "$T/sources.list";
Dir::Etc::SourceParts "$T/parts";
Dir::State::Lists "$T/lists";
Dir::State::status "$T/status";
Dir::Cache "$T/cache";
EOF
export APT_CONFIG=$T/apt.conf
apt-get update -qq >/dev/null 2>&1 || apt-get update   # (shows why, then the ERR trap names it)

# ---- the fake apt-get: 404 for $FAKE404's candidate (by name or NAME=VERSION), or for every
# version when FAKE404_ALL=1; everything else goes to the real apt-get
mkdir -p "$T/bin"
cat > "$T/bin/apt-get" <<'EOF'
#!/bin/bash
real=$(PATH=${PATH#*:} command -v apt-get)
if [ -n "${FAKE404:-}" ] && printf '%s\n' "$@" | grep -qx download; then
	cand=$(apt-cache policy "$FAKE404" | awk '$1 == "Candidate:" {print $2}')
	for a in "$@"; do
		if [ "$a" = "$FAKE404" ] || [ "$a" = "$FAKE404=$cand" ] ||
			{ [ "${FAKE404_ALL:-0}" = 1 ] && [ "${a%%=*}" = "$FAKE404" ]; }; then
			v=$cand; [ "${a#*=}" != "$a" ] && v=${a#*=}
			echo "Err:1 http://mirror.invalid/debian test/main $FAKE404 all $v" >&2
			echo "  404  Not Found [IP: 192.0.2.1 80]" >&2
			echo "E: Failed to fetch http://mirror.invalid/debian/pool/${FAKE404}_${v}_all.deb  404  Not Found [IP: 192.0.2.1 80]" >&2
			exit 100
		fi
	done
fi
exec "$real" "$@"
EOF
chmod 755 "$T/bin/apt-get"
export PATH=$T/bin:$PATH
[ "$(command -v apt-get)" = "$T/bin/apt-get" ] || { echo "fake apt-get not first in PATH" >&2; exit 1; }
cand=$(apt-cache policy xb-probe | awk '$1 == "Candidate:" {print $2}')
[ "$cand" = 2.0 ] || { echo "local repository broken: xb-probe candidate '$cand', expected 2.0" >&2; exit 1; }

# run_fetch NAME PKG...: fetch_debs into a fresh dir $T/NAME; sets rc, out (stderr), got (files)
run_fetch() {
	local d=$T/$1
	shift
	mkdir -p "$d"
	chmod 777 "$d"
	rc=0
	out=$(fetch_debs "$d" "$@" 2>&1 >/dev/null) || rc=$?
	got=$(find "$d" -name '*.deb' -printf '%f\n' | sort | paste -sd' ')
}

echo "== fetch: no fault"
run_fetch plain xb-probe xb-other
if [ "$rc" = 0 ] && [ "$got" = "xb-other_1.0_all.deb xb-probe_2.0_all.deb" ] && [ -z "$out" ]; then
	ok "both candidates fetched, nothing said"
else
	bad "no fault: rc=$rc got='$got' out='$out'"
fi

echo "== fetch: the candidate answers 404, an older version is offered"
FAKE404=xb-probe run_fetch older xb-other xb-probe
if [ "$rc" = 0 ]; then
	ok "fetch_debs succeeded"
else
	bad "fetch_debs failed: rc=$rc out='$out'"
fi
if [ "$got" = "xb-other_1.0_all.deb xb-probe_1.0_all.deb" ]; then
	ok "took xb-probe 1.0 instead of 2.0"
else
	bad "files: got '$got', expected xb-other 1.0 and xb-probe 1.0"
fi
if [ "$(printf '%s\n' "$out" | grep -c .)" = 1 ] && [[ $out == *xb-probe*"candidate 2.0"*"404"*"took 1.0"* ]]; then
	ok "one line says so: $out"
else
	bad "expected one line naming the fallback, got: '$out'"
fi

echo "== fetch: no version of xb-probe can be had"
FAKE404=xb-probe FAKE404_ALL=1 run_fetch none xb-other xb-probe
if [ "$rc" = 1 ]; then
	ok "fetch_debs failed (rc 1)"
else
	bad "fetch_debs: rc=$rc, expected 1"
fi
if [ "$(printf '%s\n' "$out" | grep -c .)" = 1 ] && [[ $out == *"cannot download Debian package xb-probe"*"2.0 1.0"*"404"* ]]; then
	ok "one line names the package and the versions tried: $out"
else
	bad "expected one line naming xb-probe, got: '$out'"
fi
if [ -z "$(find "$T/none" -name 'xb-probe*')" ]; then
	ok "no xb-probe file left behind"
else
	bad "a partial xb-probe file is left"
fi

echo "== fetch: the harness's own setup stops with one line naming the package"
# xen-qemu-test.sh -S with this repository, which has none of the Xen packages
hout=$("$HERE/xen-qemu-test.sh" -S -a /bin/true -w "$T/work" 2>&1) && hrc=0 || hrc=$?
if [ "$hrc" = 1 ] && printf '%s\n' "$hout" | grep -q '^cannot download Debian package xen-hypervisor-4.17-' &&
	[ "$(printf '%s\n' "$hout" | grep -c 'cannot download')" = 1 ]; then
	ok "harness -S: rc 1, $(printf '%s\n' "$hout" | grep 'cannot download')"
else
	bad "harness -S: rc=$hrc, output: $hout"
fi
if [ ! -e "$T/work/stage/.debs" ]; then
	ok "no stage marked whole"
else
	bad "the harness marked a stage whole"
fi

echo "== stage: whole, lacking the device model, made from other debs (the harness's x86_64 lists)"
stage_lists x86_64
S=$T/stage
mkdir -p "$S/lib/modules/6.1.0-48-amd64"
# a stage with everything the lists name: a .deb of each package, each file, each module
# shellcheck disable=SC2086 # word lists
{ printf '%s_1.0_amd64.deb\n' $PKGS; echo linux-image-6.1.0-48-amd64_6.1.170-3_amd64.deb; } > "$S/.debs"
# shellcheck disable=SC2086
for f in $(printf '%s\n' $STAGE_FILES | sed 's/\*/6.1.0-48-amd64/'); do mkdir -p "$S/${f%/*}"; touch "$S/$f"; done
for m in $STAGE_MODULES; do echo "$m kernel/x/$m.ko "; done > "$S/lib/modules/6.1.0-48-amd64/modules.idx"
[ -e "$S/usr/libexec/xen-qemu-system-i386" ] || { echo "the x86_64 list lacks the HVM device model" >&2; exit 1; }
# shellcheck disable=SC2086
m=$(stage_missing "$S" $PKGS)
if [ -z "$m" ]; then
	ok "a whole stage lacks nothing ($(wc -w <<<"$PKGS") packages, $(wc -w <<<"$STAGE_FILES") files, $(wc -w <<<"$STAGE_MODULES") modules)"
else
	bad "a whole stage lacks: $m"
fi
# shellcheck disable=SC2086
m=$(stage_missing "$S" $PKGS xb-new-package)
if [ "$m" = "package xb-new-package" ]; then
	ok "a package added to the list since is missed"
else
	bad "new package: got '$m'"
fi
# shellcheck disable=SC2086
m=$(STAGE_MODULES="$STAGE_MODULES xb_new_module" stage_missing "$S" $PKGS)
if [ "$m" = "module xb_new_module" ]; then
	ok "a module added since is missed"
else
	bad "new module: got '$m'"
fi
rm "$S/usr/libexec/xen-qemu-system-i386"
# shellcheck disable=SC2086
m=$(stage_missing "$S" $PKGS)
if [ "$m" = usr/libexec/xen-qemu-system-i386 ]; then
	ok "a stage without the HVM device model is not whole"
else
	bad "no device model: got '$m'"
fi
m=$(stage_missing "$T/nostage" xen-utils-4.17)
if [[ $m == .debs* ]]; then
	ok "an old work dir (no .debs) is not whole"
else
	bad "no .debs: got '$m'"
fi
echo vmlinux > "$T/vmlinux"
if ! derived_current "$T/vmlinux" "$S"; then
	ok "vmlinux without a record is remade"
else
	bad "vmlinux without a record counts as current"
fi
derived_made "$T/vmlinux" "$S"
if derived_current "$T/vmlinux" "$S"; then
	ok "vmlinux made from the stage is current"
else
	bad "vmlinux just made is not current"
fi
sed -i 's/6.1.0-48-amd64_6.1.170-3/6.1.0-57-amd64_6.1.180-1/' "$S/.debs"
if ! derived_current "$T/vmlinux" "$S"; then
	ok "a new kernel in the stage makes vmlinux stale"
else
	bad "vmlinux of the old kernel counts as current"
fi

echo "fetch-test: $passed passed, $failed failed"
[ "$failed" = 0 ] || exit 1
