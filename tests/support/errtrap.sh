# shellcheck shell=bash
# Sourced by every test stage that runs under `set -e`: such a script must not die without a
# word. errtrap NAME makes a command that fails and so ends the script print one line naming
# the script, the line and the command (exit status 127: a command that is not installed);
# need PKG:COMMAND... checks up front that each COMMAND is there and names the Debian package
# to install for one that is not.

# errtrap NAME: the ERR trap, also in functions and subshells (set -E).
errtrap() {
	ERRTRAP_NAME=$1
	set -E
	trap 'errtrap_report $? "$LINENO" "$BASH_COMMAND"' ERR
}
errtrap_report() { # status line command
	# Only the script's own shell speaks: in a subshell or command substitution a failure may be
	# harmless (a word list of a for loop), and a fatal one reaches the script's shell as the
	# failure of the subshell or of the assignment, which is reported there, once.
	[ "$BASH_SUBSHELL" = 0 ] || return 0
	# under `set +e` (a cleanup that expects failures) a failure ends nothing: not a finding
	[[ $- == *e* ]] || return 0
	if [ "$1" = 127 ]; then
		printf '%s: FATAL: line %s: command not found: %s\n' "$ERRTRAP_NAME" "$2" "$3" >&2
	else
		printf '%s: FATAL: line %s: "%s" failed (exit status %s)\n' "$ERRTRAP_NAME" "$2" "$3" "$1" >&2
	fi
}

# need PKG:COMMAND...: exits 1 with one line naming every missing COMMAND and its package.
need() {
	local p missing=() pkgs=()
	for p in "$@"; do
		command -v "${p#*:}" >/dev/null 2>&1 && continue
		missing+=("${p#*:}")
		pkgs+=("${p%%:*}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	printf '%s: FATAL: missing %s (apt-get install %s)\n' "${ERRTRAP_NAME:-${0##*/}}" "${missing[*]}" "${pkgs[*]}" >&2
	exit 1
}
