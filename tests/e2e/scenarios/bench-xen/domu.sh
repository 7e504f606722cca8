# shellcheck shell=sh
. /root/domu.sh
WINDOW=60
clear_keys() {
  for top in data attr; do
    for k in $(xenstore-list "$top" 2>/dev/null); do xenstore-rm "$top/$k" 2>/dev/null; done
  done
}
field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# context switches of every thread of PID: each one is a wakeup
switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '$1 ~ /^(non)?voluntary_ctxt_switches:$/ {n += $2} END {print n + 0}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# median of the numbers on stdin
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# measure NAME BINARY [ARGS...]: RUNS starts from an empty data/ and attr/, then the last one
# is left running for the footprint and the idle window
RUNS=5
measure() {
  name=$1; shift
  [ -x "$1" ] || { say "bench: $name: $1 not here, skipped"; return 0; }
  : > "/tmp/$name.first"; : > "/tmp/$name.complete"
  i=0
  while [ $i -lt $RUNS ]; do
    i=$((i + 1))
    clear_keys
    sleep 1
    if ! out=$(/root/exec-to-key --settle 1000 --log "/tmp/$name.log" -- "$@"); then
      say "bench: $name: no key appeared: $out"; sed "s/^/domU: $name: /" "/tmp/$name.log"
      report "bench/$name" failed; return 0
    fi
    say "bench: $name start $i: $out"
    kv "$out" first_key_ms >> "/tmp/$name.first"
    kv "$out" complete_ms >> "/tmp/$name.complete"
    pid=${out##*pid=}
    [ $i -lt $RUNS ] && { kill "$pid"; sleep 1; kill -9 "$pid" 2>/dev/null; }
  done
  first=$(median < "/tmp/$name.first"); first_min=$(sort -n "/tmp/$name.first" | head -1)
  complete=$(median < "/tmp/$name.complete"); keys=$(kv "$out" keys)
  sleep 5
  if [ ! -d "/proc/$pid" ]; then   # a one-shot client (xsagent): start-up only
    line="first_key_ms=$first first_key_min_ms=$first_min complete_ms=$complete keys=$keys bytes=$(wc -c < "$1")"
    say "BENCH $name $line"; report "bench/$name" "$line"; return 0
  fi
  rss=$(field "$pid" VmRSS); hwm=$(field "$pid" VmHWM); threads=$(ls "/proc/$pid/task" | wc -l)
  s0=$(switches "$pid"); c0=$(cpu_ticks "$pid")
  sleep $WINDOW
  s1=$(switches "$pid"); c1=$(cpu_ticks "$pid")
  rss1=$(field "$pid" VmRSS)
  kill "$pid" 2>/dev/null; sleep 1; kill -9 "$pid" 2>/dev/null
  line="first_key_ms=$first first_key_min_ms=$first_min complete_ms=$complete keys=$keys bytes=$(wc -c < "$1") rss_kib=$rss rss_after_kib=$rss1 hwm_kib=$hwm threads=$threads wakeups_${WINDOW}s=$((s1 - s0)) cpu_ticks_${WINDOW}s=$((c1 - c0))"
  say "BENCH $name $line"
  sed "s/^/domU: $name log: /" "/tmp/$name.log" | head -5
  report "bench/$name" "$line"
}
report uname "$(uname -r)"
measure xenbeacon /bin/agent
measure xenbeacon-size /root/xenbeacon-size
measure xenbeacon-baseline /root/xenbeacon-baseline
measure xen-guest-agent /root/xen-guest-agent
measure xe-daemon /root/xe-daemon
# the floor: the harness's 60-line C client, static, writing one key and exiting
measure xsagent /root/xsagent data/agent/status ok
report bench-done 1
say "scenario done"
