#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# packaging/manpage.sh BINARY: prints xenbeacon(8) in roff, generated from `BINARY --help` and
# the --help of each subcommand, so the man page says exactly what --help says.
set -eu
bin=$1
version=$("$bin" --version | awk '{print $2}')
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)

# roff for one --help text: "Usage:" becomes SYNOPSIS, the first paragraph DESCRIPTION,
# "Word:" headings sections, everything else stays preformatted as printed.
render() {
	awk -v sub_cmd="$1" '
	function esc(s) { gsub(/\\/, "\\e", s); sub(/^[.\x27]/, "\\\\\\&&", s); return s }
	NR == 1 && /^Usage: / {
		if (sub_cmd == "") print ".SH SYNOPSIS"; else print ".SH COMMAND: " toupper(sub_cmd)
		print ".nf"; print esc(substr($0, 8)); print ".fi"; state = "desc"; next
	}
	state == "desc" && /^$/ { next }
	state == "desc" && !/:$/ {
		if (sub_cmd == "" && !desc_done) { print ".SH DESCRIPTION"; desc_done = 1 }
		print ".PP"; print esc($0); next
	}
	/^[A-Z][A-Za-z ]*:$/ {
		if (state == "body") print ".fi"
		h = toupper(substr($0, 1, length($0) - 1))
		if (sub_cmd == "") print ".SH " h; else print ".SS " h
		print ".nf"; state = "body"; next
	}
	{ print esc($0) }
	END { if (state == "body") print ".fi" }'
}

cat <<HEAD
.TH XENBEACON 8 "$date" "xenbeacon $version" "System Administration"
.SH NAME
xenbeacon \- tiny static guest agent for Xen domUs: publishes OS, memory and NICs to XenStore
HEAD
"$bin" --help | render ""
for cmd in booted list show wait export; do
	# the dom0 commands are a cargo feature: a build without them has no such --help
	"$bin" "$cmd" --help >/dev/null 2>&1 || continue
	"$bin" "$cmd" --help | render "$cmd"
done
cat <<'TAIL'
.SH FILES
.nf
/usr/lib/systemd/system/xenbeacon.service, xenbeacon-booted.service, xenbeacon-export.service
/etc/default/xenbeacon (Debian, Ubuntu), /etc/sysconfig/xenbeacon (EL, Fedora): XENBEACON_ARGS
/etc/default/xenbeacon-export, /etc/sysconfig/xenbeacon-export: XENBEACON_TEXTFILE_DIR, XENBEACON_EXPORT_ARGS
/usr/share/xenbeacon/prometheus/xenbeacon.rules.yml: Prometheus alert rules
.fi
.SH SEE ALSO
xl(1), xenstore-ls(1); https://github.com/xenbeacon/xenbeacon (docs/xenstore-layout.md)
TAIL
