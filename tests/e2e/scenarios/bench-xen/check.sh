# shellcheck shell=sh
# Numbers, not verdicts: the scenario passes when every agent present reported a line.
await bench-done 1100
for name in $(xenstore-list "$H/e2e/bench"); do
  v=$(value "e2e/bench/$name")
  echo "dom0: BENCH $name $v"
  [ "$v" != failed ] || fail "$name never wrote a key"
done
v=$(value e2e/bench/xenbeacon) || fail "no measurement of xenbeacon"
ok "bench lines reported"
