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

# stage_missing STAGE PKG...: prints what a whole stage lacks (nothing when it is whole): a
# .deb of every PKG in .debs, and each file in $STAGE_FILES (paths relative to STAGE; a glob
# matches when one file matches it), and each module in $STAGE_MODULES in the modules index.
stage_missing() {
	local stage=$1 p f m files
	shift
	read -r -a files <<<"${STAGE_FILES:-}"   # (no glob expansion against the cwd here)
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
