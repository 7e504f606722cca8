#!/bin/bash
# Host side of the dom0 scenario (run.sh runs a scenario's host.sh after dom0 said PASS, with
# E2E_LOG = the console log and ROOT = the repository). dom0 printed the inventory that
# `xenbeacon list --format ansible` made there, on real Xen, on one XB-ANSIBLE-INVENTORY line;
# dom0 has no Python, so the real ansible-inventory (Debian's ansible-core) runs here, on the
# packaged inventory script, with XENBEACON_INVENTORY naming the captured file: what is real is
# the inventory (made in dom0 from the domU's keys) and Ansible's reading of it through the
# script; the script's own --list/--host were run in dom0 by check.sh.
set -euo pipefail
need=ansible-core
if ! command -v ansible-inventory >/dev/null; then
  if [ "${NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
    echo "e2e dom0 host.sh: ansible-inventory missing (apt-get install $need)" >&2; exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "$need" >/dev/null
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
grep -a '^XB-ANSIBLE-INVENTORY: ' "$E2E_LOG" | tail -1 | sed 's/^XB-ANSIBLE-INVENTORY: //; s/\r$//' > "$tmp/inventory.json"
[ -s "$tmp/inventory.json" ] || { echo "host: FAIL: no XB-ANSIBLE-INVENTORY line in $E2E_LOG" >&2; exit 1; }
export XENBEACON_INVENTORY=$tmp/inventory.json HOME=$tmp ANSIBLE_LOCAL_TEMP=$tmp/ansible \
  ANSIBLE_INVENTORY_ENABLED=script ANSIBLE_INVENTORY_UNPARSED_FAILED=true ANSIBLE_NOCOLOR=1
script=$ROOT/packaging/ansible/xenbeacon-ansible-inventory
echo "host: \$ ansible-inventory -i xenbeacon-ansible-inventory --host agent   (inventory from dom0)"
vars=$(ansible-inventory -i "$script" --host agent) || { echo "host: FAIL: ansible-inventory --host agent" >&2; exit 1; }
sed 's/^/host: | /' <<<"$vars"
got=$(python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["ansible_host"], v["xenbeacon_agent"], v["xenbeacon_booted"])' <<<"$vars")
[ "$got" = "10.0.0.2 xenbeacon True" ] || { echo "host: FAIL: ansible_host, agent, booted = '$got'" >&2; exit 1; }
graph=$(ansible-inventory -i "$script" --graph xenbeacon_booted)
sed 's/^/host: | /' <<<"$graph"
if ! grep -qx '  |--agent' <<<"$graph"; then
  echo "host: FAIL: agent is not in group xenbeacon_booted" >&2; exit 1
fi
dbg=$(ansible -i "$script" agent -m debug -a var=ansible_host)
sed 's/^/host: | /' <<<"$dbg"
if ! grep -q '"ansible_host": "10.0.0.2"' <<<"$dbg"; then
  echo "host: FAIL: ansible agent -m debug -a var=ansible_host" >&2; exit 1
fi
version=$(ansible --version); version=${version%%$'\n'*}
echo "host: ok: ansible-inventory ($version) reads dom0's inventory: agent, ansible_host 10.0.0.2, booted"
