# shellcheck shell=sh
# Leftovers of "a previous run" (ours, stale) and a key of another program (not ours).
xenstore-write "$H/data/os_minorver" 99
xenstore-write "$H/attr/PVAddons/Stale" old
xenstore-write "$H/data/agent-foreign" keep
