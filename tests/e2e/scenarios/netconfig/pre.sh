# shellcheck shell=sh
# As xenopsd plugs the vif (xenops_server_xen.ml xenstore_of_static_ip_setting, device.ml
# rwperm_for_guest): control/ and the vif's directory belong to the guest.
xenstore-chmod "$H/control" "n$DOMID"
xenstore-write "$H/xenserver/device/vif/0" "" && xenstore-chmod "$H/xenserver/device/vif/0" "n$DOMID"
S=$H/xenserver/device/vif/0/static-ip-setting
xenstore-write "$S/mac" 00:16:3e:00:00:00 "$S/error-code" 0 "$S/error-msg" "" "$S/enabled" 0 "$S/enabled6" 0
# As Ansible's xenserver_guest writes the VM's xenstore-data without a native agent.
N=$H/vm-data/networks/0
xenstore-write "$N/name" "Pool-wide network associated with eth0" "$N/mac" 00:16:3e:00:00:00 \
  "$N/type" static "$N/ip" 10.0.0.42 "$N/prefix" 24 "$N/netmask" 255.255.255.0 "$N/gateway" 10.0.0.1 \
  "$N/type6" none
