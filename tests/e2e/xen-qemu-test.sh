#!/bin/bash
# Part of xenbeacon's e2e suite (tests/e2e/run.sh drives it; HARNESS.md is its manual).
# xen-qemu-test.sh - boot a real Xen 4.17 system (Debian 12 packages) inside QEMU with software
# emulation (TCG, no KVM needed), start a domU that runs a guest agent, and check from dom0
# (xenstore-ls / xenstore-read) what the agent wrote into XenStore through /dev/xen/xenbus.
# Fully unattended; one boot-to-poweroff cycle takes ~9-15 s (x86_64) or ~7-12 s (arm64);
# optional network scenarios (-N): PV vifs, bridge/VLAN in the guest, PCI NIC passthrough, USB NIC.
#
# Everything comes from Debian bookworm packages:
#   host:  qemu-system-x86 (or qemu-system-arm + device-tree-compiler), busybox-static, cpio,
#          xz-utils, binutils; gcc (or gcc-aarch64-linux-gnu) only to build the default agent
#   fetched with `apt-get download` and unpacked with `dpkg -x` (never installed on the host):
#          xen-hypervisor-4.17-<arch> xen-utils-4.17 xenstore-utils libxen* libyajl2 linux-image-*
#          iproute2 (+ libs), qemu-system-xen (x86_64: device model for HVM domUs / -N usb; its libs,
#          SeaBIOS and keymaps are taken from the host's qemu-system-x86 install)
#          (+ busybox-static, libc6, ... :arm64 for arm64; needs `dpkg --add-architecture arm64`,
#           which the script does)
#
# Usage: xen-qemu-test.sh [options]
#   -M ARCH   x86_64 (default: PV dom0 + PV/PVH domU) or arm64 (Xen on qemu-system-aarch64 virt)
#   -w DIR    work/cache dir (default /tmp/xen-qemu-test[-arm64]); debs + extracted files cached there
#   -a FILE   agent binary to run in the domU, built for ARCH (static is best; dynamic ones get
#             their libs copied). Default: xsagent.c next to this script, built with gcc -static
#   -A ARGS   agent arguments (default: "data/agent/status ok data/agent/hello world")
#   -k KEY    XenStore key, relative to the domU's home /local/domain/<domid>, that dom0 waits for
#             (default data/agent/status)
#   -e VAL    expected value of KEY (default: any value)
#   -u FILE   shell fragment run in the domU instead of starting the agent (sourced by /init,
#             after /proc,/sys,/dev are mounted; the agent is at /bin/agent)
#   -p FILE   shell fragment run in dom0 after `xl create -p` (domU built but paused), before unpause:
#             seed XenStore for the agent here ($DOMID is set)
#   -c FILE   shell fragment run in dom0 after KEY appeared; return non-zero to fail ($DOMID is set).
#             Lifecycle commands work there (x86_64): xl save/restore (image in /tmp, a tmpfs),
#             xl migrate agent localhost (PVH only; an ssh stand-in runs the receiver), xl mem-set
#   -f FILE   extra file to put into the domU (at /root/<name>); may be repeated
#   -T TYPE   x86_64 domU type: pv (default), pvh (needs -x 'tsc_mode="native"' under TCG) or hvm
#             (qemu-xen device model in dom0, SeaBIOS, serial console; slow: ~1-2 min)
#   -x LINE   extra line for the domU's xl config (repeatable), e.g. -x 'tsc_mode="native"'
#   -W SEC    how long dom0 waits for KEY after starting the domU (default 60)
#   -t SEC    overall timeout for the QEMU run (default 300)
#   -l FILE   console log (default WORKDIR/console.log)
#   -N LIST   network scenario, comma-separated (x86_64; vif/br/vlan also on arm64; platform arm64 only):
#               vif[=N]  N PV vifs (default 1) on dom0 bridge xenbr0 (10.0.0.1/24, netback + a
#                        busybox vif hotplug script); domU ethI = 10.0.0.(2+I)/24, MAC 00:16:3e:00:00:0I
#               br       (implies vif) domU bridge br0 with the first vif as member, IP 10.0.0.2 on br0
#               vlan     (implies vif) domU VLAN 100 on the last vif (ethN.100, 10.0.100.2/24)
#               pci[=MODEL] PCI passthrough of a QEMU-emulated NIC (default e1000; e1000e, rtl8139,
#                        virtio-net-pci) at 0000:00:05.0 (q35 + intel-iommu): dom0 xen-pciback +
#                        xl pci-assignable-add, domU pci=[...] (PV pcifront); DHCP from QEMU slirp
#               usb      USB passthrough of a QEMU usb-net (xhci) from dom0 into an HVM domU
#                        (qemu-xen device model in dom0; usbctrl type=devicemodel + usbdev);
#                        forces -T hvm, combines with vif (PV vifs, type=vif); ~1 min per run
#               emu      the device model's emulated NIC as vif 0 of an HVM domU without netfront
#                        (xl vif type=ioemu,model=e1000, MAC 00:16:3e:00:00:00; dom0 tun; domU
#                        e1000, xen_emul_unplug=never, 10.0.0.2/24); forces -T hvm; ~1 min per run
#               platform (arm64) device-tree passthrough of a QEMU virtio-net-device (virtio-mmio
#                        /virtio_mmio@a003e00, no IOMMU): xen,passthrough in the host DT, xl
#                        device_tree/iomem/irqs; DMA through a 1:1 window (xqt-iomap.c); domU NIC
#                        at /sys/devices/platform/passthrough/a003e00.virtio_mmio/virtio0; DHCP slirp
#             The domU prints its network view (sysfs, ip -d link) to its console before the agent.
#   -v        verbose toolstack: `xl -vvv create`, its messages go straight to the console
#   -S        setup only (install host packages, fetch and unpack debs), do not boot
# Exit status 0 iff dom0 printed "XENTEST: PASS".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/support/errtrap.sh
. "$HERE/../support/errtrap.sh"; errtrap xen-qemu-test.sh
ARCH=x86_64; W=""
AGENT=""; AGENT_ARGS="data/agent/status ok data/agent/hello world"
KEY=data/agent/status; EXPECT=""; DOMU_SNIPPET=""; PRE=""; CHECK=""; DTYPE=pv; WAIT=60; TMO=300; LOG=""; SETUP_ONLY=0; XLV=""
EXTRA_FILES=(); XLCFG=(); NET=""
while getopts "M:w:a:A:k:e:u:p:c:f:T:x:W:t:l:N:vSh" o; do
  case $o in
    M) ARCH=$OPTARG ;; w) W=$OPTARG ;; a) AGENT=$(realpath "$OPTARG") ;; A) AGENT_ARGS=$OPTARG ;;
    k) KEY=$OPTARG ;; e) EXPECT=$OPTARG ;; u) DOMU_SNIPPET=$(realpath "$OPTARG") ;;
    p) PRE=$(realpath "$OPTARG") ;; c) CHECK=$(realpath "$OPTARG") ;; f) EXTRA_FILES+=("$(realpath "$OPTARG")") ;;
    T) DTYPE=$OPTARG ;; x) XLCFG+=("$OPTARG") ;; W) WAIT=$OPTARG ;; t) TMO=$OPTARG ;;
    l) LOG=$(realpath -m "$OPTARG") ;; N) NET=$OPTARG ;; v) XLV=-vvv ;; S) SETUP_ONLY=1 ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
done
case $ARCH in
  x86_64|amd64) ARCH=x86_64; DARCH=amd64; TRIPLET=x86_64-linux-gnu; W=${W:-/tmp/xen-qemu-test} ;;
  arm64|aarch64) ARCH=arm64; DARCH=arm64; TRIPLET=aarch64-linux-gnu; W=${W:-/tmp/xen-qemu-test-arm64} ;;
  *) echo "unknown arch $ARCH" >&2; exit 2 ;;
esac
mkdir -p "$W"; W=$(realpath "$W"); LOG=${LOG:-$W/console.log}
log() { echo "[xen-qemu-test $(date +%T)] $*" >&2; }

# network scenario (-N)
NVIF=0; NBR=0; NVLAN=0; NPCI=""; NUSB=0; NPLAT=0; NEMU=0
for n in ${NET//,/ }; do
  case $n in
    vif) [ "$NVIF" -ge 1 ] || NVIF=1 ;; vif=*) NVIF=${n#vif=} ;;
    br) NBR=1; [ "$NVIF" -ge 1 ] || NVIF=1 ;; vlan) NVLAN=1; [ "$NVIF" -ge 1 ] || NVIF=1 ;;
    pci) NPCI=e1000 ;; pci=*) NPCI=${n#pci=} ;; usb) NUSB=1 ;; platform) NPLAT=1 ;; emu) NEMU=1 ;;
    *) echo "unknown -N item $n" >&2; exit 2 ;;
  esac
done
if [ $ARCH = arm64 ] && { [ -n "$NPCI" ] || [ $NUSB = 1 ] || [ $NEMU = 1 ]; }; then echo "-N pci/usb/emu: x86_64 only" >&2; exit 2; fi
if [ $NEMU = 1 ] && [ "$NVIF" -gt 0 ]; then echo "-N emu is vif 0 itself: no vif/br/vlan with it" >&2; exit 2; fi
if [ $ARCH = x86_64 ] && [ $NPLAT = 1 ]; then echo "-N platform: arm64 only" >&2; exit 2; fi
[ $NEMU = 1 ] && DTYPE=hvm   # an emulated NIC needs the device model
[ $NUSB = 1 ] && DTYPE=hvm   # USB passthrough needs a device model: HVM domU (Debian's kernel has no xen-hcd)

# ---------------------------------------------------------------- setup (cached)
apt_lists_ok() { [ -n "$(find /var/lib/apt/lists -name "*binary-${1}_Packages*" 2>/dev/null | head -1)" ]; }
need_pkgs=()
if [ $ARCH = x86_64 ]; then host_tools="qemu-system-x86:qemu-system-x86_64"; else
  host_tools="qemu-system-arm:qemu-system-aarch64 device-tree-compiler:fdtput"; fi
for p in $host_tools busybox-static:/bin/busybox cpio:cpio xz-utils:xz binutils:readelf; do
  command -v "${p#*:}" >/dev/null 2>&1 || need_pkgs+=("${p%%:*}")
done
if [ -z "$AGENT" ] || [ $NPLAT = 1 ]; then
  if [ $ARCH = x86_64 ]; then command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc libc6-dev)
  else command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross); fi
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing host packages: ${need_pkgs[*]}"
  apt_lists_ok amd64 || apt-get update -qq -o DPkg::Lock::Timeout=600
  # stale indexes name files the mirror no longer has: refresh them once and try again
  host_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${need_pkgs[@]}" >/dev/null; }
  if ! host_install; then
    apt-get update -qq -o DPkg::Lock::Timeout=600 || true
    host_install || { log "FATAL: apt-get install ${need_pkgs[*]} failed, also after apt-get update"; exit 1; }
  fi
fi

STAGE=$W/stage
# shellcheck source=tests/e2e/lib/fetch.sh
. "$HERE/lib/fetch.sh"
A=""; [ $ARCH = arm64 ] && A=":arm64"
stage_lists "$ARCH"   # PKGS, STAGE_FILES, STAGE_MODULES (lib/fetch.sh)
# shellcheck disable=SC2086 # PKGS is a word list
lacking=$(stage_missing "$STAGE" $PKGS)
if [ -n "$lacking" ]; then
  [ -e "$STAGE" ] && log "work dir $W lacks $(echo "$lacking" | paste -sd, | sed 's/,/, /g'): setting it up again"
  if [ $ARCH = arm64 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "dpkg --add-architecture arm64"; dpkg --add-architecture arm64
  fi
  # refresh the indexes once per setup: stale ones name superseded debs (404 on download);
  # a failing index of another arch must not stop us
  apt-get update -qq -o DPkg::Lock::Timeout=600 || true
  KPKG=$(apt-cache depends "linux-image-$DARCH$A" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {sub(/:.*/, "", $2); print $2; exit}')
  [ -n "$KPKG" ] || { log "FATAL: cannot resolve linux-image-$DARCH$A (apt-get update failed? no Debian 12 apt source?)"; exit 1; }
  log "downloading Xen + kernel debs for $DARCH ($KPKG) into $W/debs"
  rm -rf "$W/debs"; mkdir -p "$W/debs"; chmod 777 "$W/debs"   # apt's _apt user writes there
  # shellcheck disable=SC2046 # one word per package
  fetch_debs "$W/debs" $(for p in $PKGS $KPKG; do echo "$p$A"; done) ||
    { log "FATAL: setup of $W failed: a Debian package could not be downloaded (line above)"; exit 1; }
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  for d in "$W"/debs/*.deb; do dpkg -x "$d" "$STAGE"; done
  # keep only the modules that are used (the full module tree is ~400 MB): drivers/xen and the
  # dependency closure of the network/PCI/USB drivers; index: "name path dep,dep"
  MD=$(echo "$STAGE"/lib/modules/*); : > "$MD/modules.idx"
  find "$MD/kernel" -name '*.ko' | while read -r f; do
    n=$(basename "$f" .ko); d=$(LC_ALL=C grep -aoP 'depends=[\x20-\x7e]*' "$f" | head -1)
    echo "${n//-/_} ${f#"$MD"/} ${d#depends=}"
  done > "$MD/modules.idx"
  keep=$(mktemp); find "$MD/kernel/drivers/xen" -name '*.ko' | sed "s|^$MD/||" > "$keep"
  touch "$keep.n"
  closure() { local m path deps; for m in "$@"; do m=${m//-/_}
    if grep -qx "$m" "$keep.n"; then continue; fi
    echo "$m" >> "$keep.n"; read -r _ path deps <<<"$(awk -v m="$m" '$1==m' "$MD/modules.idx")"
    if [ -z "$path" ]; then continue; fi   # not built for this arch (pcifront, uhci on arm64)
    echo "$path" >> "$keep"
    # shellcheck disable=SC2086 # a word list on purpose
    if [ -n "$deps" ]; then closure ${deps//,/ }; fi; done; }
  closure xen_netback xen_netfront xen_pcifront bridge 8021q e1000 e1000e 8139cp 8139too virtio_net \
          virtio_pci virtio_mmio xhci_pci ehci_pci uhci_hcd usbnet cdc_ether rndis_host bonding dummy tun \
          ipvlan
  find "$MD/kernel" -name '*.ko' | sed "s|^$MD/||" | grep -vxF -f "$keep" | sed "s|^|$MD/|" | xargs rm -f
  grep -F -f "$keep" "$MD/modules.idx" > "$MD/modules.idx.new" || true; mv "$MD/modules.idx.new" "$MD/modules.idx"
  find "$MD/kernel" -type d -empty -delete; rm -f "$keep" "$keep.n"
  (cd "$W/debs" && ls -1 -- *.deb) > "$STAGE/.debs"
  rm -rf "$W/debs"
  # shellcheck disable=SC2086
  lacking=$(stage_missing "$STAGE" $PKGS)
  [ -z "$lacking" ] || { log "FATAL: the unpacked debs lack $(echo "$lacking" | paste -sd' ')"; exit 1; }
fi
K=$(find "$STAGE/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed -n 's/^vmlinuz-//p' | sort -V | tail -1)
# made from the stage: remade whenever the stage was made from other debs (a new kernel)
if ! derived_current "$W/xen" "$STAGE"; then
  if [ $ARCH = x86_64 ]; then zcat "$STAGE/boot/xen-4.17-amd64.gz" > "$W/xen.tmp"   # ELF32 multiboot image
  else cp "$STAGE/boot/xen-4.17-arm64" "$W/xen.tmp"; fi                               # arm64 Image
  mv "$W/xen.tmp" "$W/xen"; derived_made "$W/xen" "$STAGE"
fi
if ! derived_current "$W/vmlinux" "$STAGE"; then
  log "vmlinux from $K"
  if [ $ARCH = x86_64 ]; then
    # Debian's bzImage payload is xz; an uncompressed ELF vmlinux boots ~10 s faster under TCG
    # (Xen's dom0 builder and libxenguest would otherwise xz-decompress it in emulation).
    off=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$STAGE/boot/vmlinuz-$K" | cut -d: -f1)
    { tail -c +$((off + 1)) "$STAGE/boot/vmlinuz-$K" || true; } | xz -dc --single-stream > "$W/vmlinux.tmp"
  elif [ "$(head -c2 "$STAGE/boot/vmlinuz-$K" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
    zcat "$STAGE/boot/vmlinuz-$K" > "$W/vmlinux.tmp"
  else
    cp "$STAGE/boot/vmlinuz-$K" "$W/vmlinux.tmp"   # bookworm arm64 vmlinuz is a plain Image
  fi
  mv "$W/vmlinux.tmp" "$W/vmlinux"; derived_made "$W/vmlinux" "$STAGE"
fi
[ "$SETUP_ONLY" = 1 ] && { log "setup done in $W (kernel $K)"; exit 0; }

if [ -z "$AGENT" ]; then
  if [ $ARCH = x86_64 ]; then gcc -O2 -static -o "$W/xsagent" "$HERE/xsagent.c"
  else aarch64-linux-gnu-gcc -O2 -static -o "$W/xsagent" "$HERE/xsagent.c"; fi
  AGENT=$W/xsagent
fi

# ---------------------------------------------------------------- initramfs images
# copy the shared libraries a binary needs (recursively, by readelf NEEDED), from the unpacked
# debs first, then (x86_64 only) from the host, which runs the same Debian release
LIBDIRS="$STAGE/lib/$TRIPLET $STAGE/usr/lib/$TRIPLET $STAGE/usr/lib/xen-4.17/lib/$TRIPLET"
[ $ARCH = x86_64 ] && LIBDIRS="$LIBDIRS /lib/$TRIPLET /usr/lib/$TRIPLET"
copy_libs() { # root file...
  local root=$1 f n p d; shift
  for f in "$@"; do
    for n in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      [ -e "$root/lib/$TRIPLET/$n" ] && continue
      p=""; for d in $LIBDIRS; do [ -e "$d/$n" ] && { p=$d/$n; break; }; done
      [ -n "$p" ] || { log "WARNING: library $n needed by $f not found"; continue; }
      cp -L "$p" "$root/lib/$TRIPLET/$n"
      copy_libs "$root" "$p"
    done
  done
}
libsrc() { local d; for d in $LIBDIRS; do [ -e "$d/$1" ] && { echo "$d/$1"; return; }; done; echo "missing-$1"; }
mkbase() {
  rm -rf "$1"; mkdir -p "$1"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,var/lib,var/log,lib/$TRIPLET,lib64}
  if [ $ARCH = x86_64 ]; then
    cp /bin/busybox "$1/bin/busybox"
    cp -L /lib64/ld-linux-x86-64.so.2 "$1/lib64/"
  else
    cp "$STAGE/bin/busybox" "$1/bin/busybox"
    cp -L "$(libsrc ld-linux-aarch64.so.1)" "$1/lib/ld-linux-aarch64.so.1"
  fi
  for a in $(/bin/busybox --list); do [ -e "$1/bin/$a" ] || ln -s busybox "$1/bin/$a"; done
  ln -sfn ../run "$1/var/run"
  # glibc dlopen()s libgcc_s for pthread_cancel/unwinding (xl create -p needs it); not in NEEDED
  cp -L "$(libsrc libgcc_s.so.1)" "$1/lib/$TRIPLET/"
}
q() { printf '%q' "$1"; }   # quote for embedding into generated scripts
MD=$(echo "$STAGE"/lib/modules/*)
add_mods() { # root module... : copy modules + their deps into root/lib/modules, load order in root/etc/modules.load
  local root=$1 m path deps; shift
  for m in "$@"; do m=${m//-/_}
    grep -qx "$m" "$root/etc/modules.load" 2>/dev/null && continue
    read -r _ path deps <<<"$(awk -v m="$m" '$1==m' "$MD/modules.idx")"
    [ -n "$path" ] || { log "WARNING: module $m not found"; continue; }
    # shellcheck disable=SC2086 # a word list on purpose
    if [ -n "$deps" ]; then add_mods "$root" ${deps//,/ }; fi
    mkdir -p "$root/lib/modules"; cp "$MD/$path" "$root/lib/modules/$m.ko"; echo "$m" >> "$root/etc/modules.load"
  done
}
add_iproute2() { # root: iproute2's ip as /usr/sbin/ip, and /bin/ip points to it (not the busybox applet)
  local ipb=$STAGE/bin/ip; [ -e "$ipb" ] || ipb=$STAGE/sbin/ip
  [ -e "$ipb" ] || return 0
  cp "$ipb" "$1/usr/sbin/ip"; copy_libs "$1" "$ipb"
  ln -sf /usr/sbin/ip "$1/bin/ip"
}
PCI_SLOT=05; PCI_BDF=0000:00:$PCI_SLOT.0   # where the passed-through NIC sits in dom0 (-N pci)
# -N platform (arm64): the first -device virtio-net-device on QEMU's virt machine lands on the last
# virtio-mmio transport, node /virtio_mmio@a003e00, SPI 47 (GIC INTID 79), in MMIO page 0xa003.
# No IOMMU in front of it (QEMU's SMMUv3 covers only PCIe, Debian's Xen 4.17 has no SMMUv3 driver),
# so the NIC DMAs to host-physical addresses. The domU's DMA buffers (CMA for the vrings, a forced
# swiotlb for packet data) end up near the top of its RAM (IPA 0x40000000 + 256 MB); host RAM
# PLAT_WIN..+PLAT_WIN_SZ (the same addresses) is hidden from Xen, and once the domU has reported
# where its buffers are, dom0 maps those host pages 1:1 over them (xqt-iomap.c), before the NIC
# driver loads. XQT_PLAT_NOWIN=1 skips that (to see the raw failure).
PLAT_NODE=/virtio_mmio@a003e00; PLAT_IRQ=79; PLAT_SPI=47; PLAT_PAGE=0xa003
PLAT_WIN=0x4c000000; PLAT_WIN_SZ=0x4000000; PLAT_MEM=256   # window = last 64 MB of a 256 MB domU

# domU: busybox + agent + stock xenstore-* client (dynamic, libs copied)
U=$W/domU-root; mkbase "$U"
cp "$AGENT" "$U/bin/agent"; copy_libs "$U" "$AGENT"
cp "$STAGE/usr/bin/xenstore" "$U/usr/bin/xenstore"
for t in read write ls list rm exists chmod watch; do ln -sf xenstore "$U/usr/bin/xenstore-$t"; done
copy_libs "$U" "$STAGE/usr/bin/xenstore"
for f in "${EXTRA_FILES[@]}"; do cp "$f" "$U/root/"; copy_libs "$U" "$f"; done
[ -n "$DOMU_SNIPPET" ] && cp "$DOMU_SNIPPET" "$U/etc/domu-test.sh"
if [ -n "$NET" ]; then
  add_iproute2 "$U"
  [ "$NVIF" -gt 0 ] && add_mods "$U" xen_netfront
  # for scenarios that build bonds and dummies: copied, not loaded at boot (loading them
  # creates bond0/dummy0, which the NIC count below would take for real NICs)
  add_mods "$U" dummy bonding && sed -i '/^dummy$/d; /^bonding$/d' "$U/etc/modules.load"
  add_mods "$U" ipvlan     # creates no link of its own: loaded at boot
  [ $NBR = 1 ] && add_mods "$U" bridge
  [ $NVLAN = 1 ] && add_mods "$U" 8021q
  if [ -n "$NPCI" ]; then
    case $NPCI in e1000) m=e1000 ;; e1000e) m=e1000e ;; rtl8139) m=8139cp ;; virtio-net-pci) m="virtio_pci virtio_net" ;;
      *) echo "unsupported -N pci=$NPCI (e1000 e1000e rtl8139 virtio-net-pci)" >&2; exit 2 ;; esac
    # shellcheck disable=SC2086 # a word list on purpose
    add_mods "$U" xen_pcifront $m
  fi
  [ $NUSB = 1 ] && add_mods "$U" xhci_pci ehci_pci uhci_hcd rndis_host cdc_ether
  [ $NPLAT = 1 ] && add_mods "$U" virtio_mmio virtio_net
  [ $NEMU = 1 ] && add_mods "$U" e1000
  cat > "$U/etc/udhcpc.sh" <<'EOS'
#!/bin/sh
case $1 in bound|renew)
  ip addr add "$ip/${mask:-24}" dev "$interface"
  [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface" 2>/dev/null
  echo "domU: dhcp on $interface: $ip/$mask router $router" ;;
esac
EOS
  chmod +x "$U/etc/udhcpc.sh"
  { echo "NVIF=$NVIF NBR=$NBR NVLAN=$NVLAN NPCI=$(q "$NPCI") NUSB=$NUSB NPLAT=$NPLAT NEMU=$NEMU PLAT_NOWIN=${XQT_PLAT_NOWIN:-0}"
    cat <<'EOS'
# domU network setup (-N), sourced by /init before the agent
IP=/usr/sbin/ip; [ -x $IP ] || IP=ip; skip=""
if [ "$NPLAT" = 1 ] && [ "$PLAT_NOWIN" != 1 ]; then
  # tell dom0 where the DMA buffers are (host RAM at the same addresses gets mapped over them)
  sw=$(dmesg | sed -n 's/.*software IO TLB: mapped \[mem \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\)\].*/\1 \2/p' | head -1)
  cm=$(dmesg | sed -n 's/.*cma: Reserved \([0-9]*\) MiB at \(0x[0-9a-f]*\).*/\2 \1/p' | head -1)
  set -- $sw; r="$1 $(printf 0x%x $((($2 - $1 + 0xfff) & ~0xfff)))"; set -- $cm; r="$r $1 $(printf 0x%x $(($2 << 20)))"
  echo "domU: DMA buffers (swiotlb, CMA): $r"
  xenstore-write data/plat/dma "$r"
  i=0; while [ $i -lt 100 ] && ! xenstore-read data/plat/dma-ready >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
  ready=$(xenstore-read data/plat/dma-ready 2>&1); echo "domU: dom0 mapped the DMA window: $ready"
  # without the 1:1 window the NIC would DMA into random host memory (and 'ip link set up' hangs)
  [ "$ready" = ok ] || { skip=virtio_mmio; echo "domU: not loading virtio_mmio (no DMA window)"; }
fi
for m in $(cat /etc/modules.load 2>/dev/null); do
  [ "$m" = "$skip" ] && continue
  insmod /lib/modules/$m.ko || echo "domU: insmod $m failed"
done
echo "domU: modules loaded at uptime $(cut -d' ' -f1 /proc/uptime)"
want=$((NVIF + NEMU)); [ -n "$NPCI" ] && want=$((want + 1)); [ "$NUSB" = 1 ] && want=$((want + 1)); [ "$NPLAT" = 1 ] && want=$((want + 1))
i=0; while [ $(ls /sys/class/net | grep -vc '^lo$') -lt $want ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
echo "domU: $(ls /sys/class/net | grep -vc '^lo$') of $want NICs present at uptime $(cut -d' ' -f1 /proc/uptime)"
$IP link set lo up
for n in /sys/class/net/*; do
  i=${n##*/}; [ -e $n/device ] || continue
  path=$(readlink -f $n/device)
  if [ "$(cat $n/device/devtype 2>/dev/null)" = vif ]; then
    k=$(cat $n/device/nodename); k=${k##*/}; addr=10.0.0.$((2 + k))/24
    $IP link set $i up
    if [ "$NBR" = 1 ] && [ $k = 0 ]; then
      $IP link add br0 type bridge && $IP link set $i master br0 && $IP addr add $addr dev br0 && $IP link set br0 up
    else
      $IP addr add $addr dev $i
    fi
    if [ "$NVLAN" = 1 ] && [ $k = $((NVIF - 1)) ]; then
      $IP link add link $i name $i.100 type vlan id 100 && $IP addr add 10.0.100.2/24 dev $i.100 && $IP link set $i.100 up
    fi
  elif [ "$NEMU" = 1 ] && [ "$(cat $n/address)" = 00:16:3e:00:00:00 ]; then
    echo "domU: emulated NIC $i (vif 0's MAC, no netfront) at $path"
    $IP link set $i up && $IP addr add 10.0.0.2/24 dev $i
  else
    case $path in */platform/*) kind=platform ;; */usb*) kind=USB ;; */pci*) kind=PCI ;; *) kind=other ;; esac
    echo "domU: $kind NIC $i at $path"
    $IP link set $i up
    udhcpc -i $i -n -q -t 5 -T 1 -s /etc/udhcpc.sh >/dev/null 2>&1 || echo "domU: no DHCP lease on $i"
  fi
done
if [ $((NVIF + NEMU)) -gt 0 ]; then
  sleep 0.5
  if ping -c 1 -W 3 10.0.0.1 >/dev/null 2>&1; then echo "domU: ping dom0 10.0.0.1 OK"; else echo "domU: ping dom0 10.0.0.1 FAILED"; fi
fi
if [ -n "$NPCI" ] || [ "$NUSB" = 1 ] || [ "$NPLAT" = 1 ]; then
  if ping -c 1 -W 3 10.0.2.2 >/dev/null 2>&1; then echo "domU: ping QEMU slirp gateway 10.0.2.2 OK"; else echo "domU: ping 10.0.2.2 FAILED"; fi
fi
echo "domU: network configured at uptime $(cut -d' ' -f1 /proc/uptime)"
{
  echo "=== domU network view ==="
  echo "\$ ls -l /sys/class/net/"; ls -l /sys/class/net/
  for n in /sys/class/net/*; do
    i=${n##*/}; echo "--- $i"
    echo "\$ readlink -f $n/device"; if [ -e $n/device ]; then readlink -f $n/device; else echo "(no device link: virtual)"; fi
    for f in device/devtype device/nodename address; do [ -e $n/$f ] && echo "$i/$f: $(cat $n/$f)"; done
    [ -e $n/device/uevent ] && { echo "\$ cat $n/device/uevent"; cat $n/device/uevent; }
    if [ -e $n/device ] && [ "$(cat $n/device/devtype 2>/dev/null)" != vif ]; then
      echo "\$ ls $n/device/"; ls $n/device/ | tr '\n' ' '; echo
      for d in device device/..; do   # of_node: a device-tree (platform) device, or its virtio child
        [ -e $n/$d/of_node ] || continue
        echo "$i/$d/of_node -> $(readlink -f $n/$d/of_node)"; echo "$i/$d/of_node/compatible: $(tr '\0' ' ' < $n/$d/of_node/compatible)"
        [ $d = device/.. ] && { echo "\$ cat $n/device/../uevent"; cat $n/device/../uevent; echo "\$ ls $n/device/../"; ls $n/device/../ | tr '\n' ' '; echo; }
      done
    fi
  done
  echo "\$ ip -d link"; $IP -d link 2>&1
  echo "\$ ip addr"; $IP addr 2>&1
  echo "=== end of domU network view ==="
} | sed 's/^/net| /'
EOS
  } > "$U/etc/net.sh"
fi
cat > "$U/init" <<EOI
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
echo "domU: init at uptime \$(cut -d' ' -f1 /proc/uptime), domid \$(xenstore-read domid 2>/dev/null), \$(uname -m)"
mkdir -p /dev/pts; mount -t devpts devpts /dev/pts
[ -f /etc/net.sh ] && . /etc/net.sh
if [ -f /etc/domu-test.sh ]; then . /etc/domu-test.sh; else /bin/agent $AGENT_ARGS; echo "domU: agent exited with \$?"; fi
while true; do sleep 3600; done
EOI
chmod +x "$U/init"
(cd "$U" && find . | cpio -H newc -o --quiet | gzip -1 > "$W/domU.cpio.gz")

# dom0: busybox + xenstored/xenconsoled/xl + xen modules + domU kernel/initramfs
D=$W/dom0-root; mkbase "$D"
mkdir -p "$D"/{usr/lib/xen-4.17/bin,var/lib/xen,var/lib/xenstored,var/log/xen/console,var/lock,etc/xen,boot,lib/modules}
XB=$STAGE/usr/lib/xen-4.17/bin; : > "$D/etc/xen/xl.conf"
# libxl-save-helper: libxl execs it for xl save/restore/migrate (without it: "libxl: cannot execute
# /usr/lib/xen-4.17/bin/libxl-save-helper", then "xc: error: Dom N not suspended ... xc_domain_resume failed")
for b in xl xenstored xenconsoled xen-init-dom0 libxl-save-helper; do cp "$XB/$b" "$D/usr/lib/xen-4.17/bin/"; done
cp "$STAGE/usr/bin/xenstore" "$D/usr/bin/xenstore"
for t in read write ls list rm exists chmod watch; do ln -sf xenstore "$D/usr/bin/xenstore-$t"; done
copy_libs "$D" "$XB/xl" "$XB/xenstored" "$XB/xenconsoled" "$XB/xen-init-dom0" "$XB/libxl-save-helper" "$STAGE/usr/bin/xenstore"
add_mods "$D" xen_privcmd xenfs xen_evtchn xen_gntdev xen_gntalloc
# ssh stand-in so that "xl migrate agent localhost" works without sshd: xl runs
# "exec ssh localhost xl migrate-receive" and talks to it over stdin/stdout; run that locally
cat > "$D/usr/bin/ssh" <<'EOS'
#!/bin/sh
while [ $# -gt 0 ]; do case $1 in -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;; -*) shift ;; *) break ;; esac; done
h=$1; shift
case $h in localhost|127.0.0.1|::1|"$(hostname)") exec sh -c "$*" ;; esac
echo "ssh stand-in (xen-qemu-test): only localhost, not '$h'" >&2; exit 255
EOS
chmod +x "$D/usr/bin/ssh"
if [ "$DTYPE" = hvm ]; then
  cp "$STAGE/boot/vmlinuz-$K" "$D/boot/vmlinuz"     # HVM direct boot (device model) wants a bzImage
else
  ln "$W/vmlinux" "$D/boot/vmlinux" 2>/dev/null || cp "$W/vmlinux" "$D/boot/vmlinux"
fi
if [ "$DTYPE" = hvm ]; then   # device model (qemu-xen) + firmware for an HVM domU
  mkdir -p "$D/usr/libexec" "$D/usr/lib/xen-4.17/boot" "$D/usr/share/seabios" "$D/usr/share/qemu"
  cp "$STAGE/usr/libexec/xen-qemu-system-i386" "$D/usr/libexec/"; copy_libs "$D" "$STAGE/usr/libexec/xen-qemu-system-i386"
  cp "$STAGE/usr/lib/xen-4.17/boot/hvmloader" "$D/usr/lib/xen-4.17/boot/"
  cp -L /usr/share/seabios/bios-256k.bin "$D/usr/share/seabios/"
  cp -rL /usr/share/qemu/keymaps "$D/usr/share/qemu/"
  for f in linuxboot_dma.bin linuxboot.bin kvmvapic.bin pvh.bin; do cp -L "/usr/share/qemu/$f" "$D/usr/share/qemu/" 2>/dev/null || true; done
fi
if [ -n "$NET" ]; then
  add_iproute2 "$D"
  [ "$NVIF" -gt 0 ] && add_mods "$D" xen_netback bridge
  [ $NEMU = 1 ] && add_mods "$D" xen_netback bridge tun
  [ -n "$NPCI" ] && add_mods "$D" xen_pciback
  [ $NUSB = 1 ] && add_mods "$D" xhci_pci
  [ $NPLAT = 1 ] && aarch64-linux-gnu-gcc -O2 -static -o "$D/usr/bin/xqt-iomap" "$HERE/xqt-iomap.c"
  mkdir -p "$D/etc/xen/scripts"
  # vif hotplug script (libxl runs it: $1 = online|offline; env vif=vifD.N, XENBUS_PATH=backend/vif/D/N);
  # netback only connects after hotplug-status = connected
  cat > "$D/etc/xen/scripts/vif-bridge" <<'EOS'
#!/bin/sh
br=$(xenstore-read "$XENBUS_PATH/bridge" 2>/dev/null); br=${br:-xenbr0}
echo "vif-bridge $* vif=$vif INTERFACE=$INTERFACE bridge=$br" >> /var/log/xen/hotplug.log
exec 2>> /var/log/xen/hotplug.log
# the device model's tap of an emulated NIC (xl vif type=ioemu): "add type_if=tap", $INTERFACE
if [ "$2" = type_if=tap ]; then
  case $1 in
    add) ip link set dev "$INTERFACE" up && brctl addif "$br" "$INTERFACE" ;;
    remove) brctl delif "$br" "$INTERFACE" 2>/dev/null; true ;;
  esac
  exit
fi
case $1 in
  online|add) ip link set dev "$vif" up && brctl addif "$br" "$vif" && xenstore-write "$XENBUS_PATH/hotplug-status" connected ;;
  offline|remove) brctl delif "$br" "$vif" 2>/dev/null; ip link set dev "$vif" down 2>/dev/null; true ;;
esac
EOS
  chmod +x "$D/etc/xen/scripts/vif-bridge"
  { echo "NVIF=$NVIF NEMU=$NEMU NPCI=$(q "$NPCI") NUSB=$NUSB PCI_BDF=$PCI_BDF NPLAT=$NPLAT PLAT_NODE=$PLAT_NODE"
    cat <<'EOS'
# dom0 network setup (-N), sourced by /init before xl create
if [ $((NVIF + NEMU)) -gt 0 ]; then
  brctl addbr xenbr0 && ip addr add 10.0.0.1/24 dev xenbr0 && ip link set xenbr0 up || echo "dom0: xenbr0 setup failed"
fi
if [ -n "$NPCI" ]; then
  echo "dom0: PCI NIC: $(cat /sys/bus/pci/devices/$PCI_BDF/vendor /sys/bus/pci/devices/$PCI_BDF/device 2>&1 | tr '
' ' ')"
  xl pci-assignable-add $PCI_BDF || echo "dom0: xl pci-assignable-add failed"
  echo "dom0: xl pci-assignable-list: $(xl pci-assignable-list 2>&1 | tr '
' ' ')"
fi
if [ "$NPLAT" = 1 ]; then
  # background: once the domU has published where its DMA buffers are, map host RAM 1:1 over them
  ( i=0; r=""; while [ $i -lt 900 ]; do
      d=$(xl domid agent 2>/dev/null) && r=$(xenstore-read /local/domain/$d/data/plat/dma 2>/dev/null) && break
      sleep 0.2; i=$((i + 1)); done
    [ -n "$r" ] || exit 0
    ok=ok; set -- $r
    while [ $# -ge 2 ]; do o=$(xqt-iomap $d $1 $2 2>&1) || ok=failed; echo "dom0: $o"; shift 2; done
    xenstore-write /local/domain/$d/data/plat/dma-ready $ok ) &
  echo "dom0: platform NIC node $PLAT_NODE in dom0's DT: status=$(cat /proc/device-tree$PLAT_NODE/status 2>&1 | tr -d '\0'), bound: $(ls /sys/bus/platform/devices/ | grep -c a003e00)"
fi
if [ "$NUSB" = 1 ]; then
  sleep 0.5; ub=""
  for u in /sys/bus/usb/devices/*; do
    [ "$(cat $u/idVendor 2>/dev/null):$(cat $u/idProduct 2>/dev/null)" = 0525:a4a2 ] && ub=$u
  done
  if [ -n "$ub" ]; then
    echo "dom0: USB NIC $(cat $ub/product 2>/dev/null) at bus $(cat $ub/busnum) addr $(cat $ub/devnum)"
    echo "usbdev = ['hostbus=$(cat $ub/busnum),hostaddr=$(cat $ub/devnum),controller=0,port=1']" >> /etc/xen/agent.cfg
  else
    echo "dom0: no usb-net device found"; ls /sys/bus/usb/devices
  fi
fi
EOS
  } > "$D/etc/net-dom0.sh"
fi
cp "$W/domU.cpio.gz" "$D/boot/domU.cpio.gz"
[ -n "$PRE" ] && cp "$PRE" "$D/etc/pre.sh"
[ -n "$CHECK" ] && cp "$CHECK" "$D/etc/check.sh"
KARGS="rodata=off cryptomgr.notests"; [ $ARCH = x86_64 ] && KARGS="$KARGS mitigations=off"
# arm64 domU: cma=0. Debian's arm64 kernel reserves a 64 MB CMA area, half of the 128 MB domU; the
# balloon driver cannot take CMA pages, so "xl mem-set agent 96" ate the rest and the OOM killer shot init
UKARGS=$KARGS; [ $ARCH = arm64 ] && UKARGS="$KARGS cma=0"
UMEM=128
if [ $NPLAT = 1 ]; then
  UMEM=$PLAT_MEM
  # the NIC's DMA must only touch memory that dom0 can map 1:1: coherent buffers (vrings) come from
  # CMA, all streaming buffers (packets) are bounced through swiotlb (=force); both are allocated
  # top-down, i.e. at the end of the domU's RAM, inside PLAT_WIN (the domU reports where, see net.sh)
  [ "${XQT_PLAT_NOWIN:-0}" = 1 ] || UKARGS="$KARGS cma=16M swiotlb=4096,force"
  dtc -q -I dts -O dtb -o "$D/boot/passthrough.dtb" - <<EOD
/dts-v1/;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	passthrough {
		compatible = "simple-bus";
		ranges;
		#address-cells = <2>;
		#size-cells = <2>;
		virtio_mmio@a003e00 {
			compatible = "virtio,mmio";
			reg = <0x0 0x0a003e00 0x0 0x200>;
			interrupt-parent = <65000>; /* GUEST_PHANDLE_GIC */
			interrupts = <0 $PLAT_SPI 1>;
			dma-coherent;
		};
	};
};
EOD
fi
{
  echo 'name = "agent"'
  [ $ARCH = x86_64 ] && echo "type = \"$DTYPE\""
  if [ "$DTYPE" = hvm ]; then
    cat <<EOC
memory = 256
vcpus = 1
kernel = "/boot/vmlinuz"
ramdisk = "/boot/domU.cpio.gz"
extra = "console=ttyS0 rdinit=/init loglevel=4 $KARGS$([ $NEMU = 1 ] && echo ' xen_emul_unplug=never')"
serial = "file:/var/log/xen/console/guest-agent.log"
vga = "none"
nographic = 1
vnc = 0
tsc_mode = "native"
EOC
  else
    cat <<EOC
memory = $UMEM
vcpus = 1
kernel = "/boot/vmlinux"
ramdisk = "/boot/domU.cpio.gz"
extra = "console=hvc0 rdinit=/init loglevel=4 $UKARGS"
EOC
  fi
  echo 'on_poweroff = "destroy"'
  echo 'on_crash = "destroy"'
  # arm64: explicit acpi (default is off anyway), else "xl mem-set" aborts: libxl__arch_extra_memory
  # reads the stored config's unset acpi defbool ("libxl_defbool_val: Assertion ... failed")
  [ $ARCH = arm64 ] && echo 'acpi = 0'
  if [ "$NVIF" -gt 0 ]; then
    vt=""; [ "$DTYPE" = hvm ] && vt="type=vif,"   # HVM: PV vif only, no emulated twin NIC (would need tun in dom0)
    printf 'vif = ['; for ((i = 0; i < NVIF; i++)); do printf "%s'${vt}bridge=xenbr0,mac=00:16:3e:00:00:%02x'" "$([ $i = 0 ] || echo ,)" $i; done; echo ']'
  fi
  # no option ROM for the emulated NIC: the host has no iPXE ROMs, and direct kernel boot needs none
  [ $NEMU = 1 ] && echo "vif = ['type=ioemu,model=e1000,bridge=xenbr0,mac=00:16:3e:00:00:00']" &&
    echo 'device_model_args_hvm = [ "-global", "e1000.romfile=" ]'
  [ -n "$NPCI" ] && echo "pci = ['$PCI_BDF']"
  [ $NUSB = 1 ] && echo "usbctrl = ['type=devicemodel,version=3,ports=4']"
  if [ $NPLAT = 1 ]; then
    echo 'device_tree = "/boot/passthrough.dtb"'
    echo "iomem = [ \"${PLAT_PAGE#0x},1@${PLAT_PAGE#0x}\" ]"    # the virtio-mmio register page, 1:1
    echo "irqs = [ $PLAT_IRQ ]"
    [ "${XQT_PLAT_DTDEV:-0}" = 1 ] && echo "dtdev = [ \"$PLAT_NODE\" ]"
  fi
  for l in "${XLCFG[@]}"; do echo "$l"; done
} > "$D/etc/xen/agent.cfg"
cat > "$D/init" <<EOI
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin
KEY=$(q "$KEY"); EXPECT=$(q "$EXPECT"); WAIT_S=$WAIT
up() { cut -d' ' -f1 /proc/uptime; }
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; mount -t tmpfs tmpfs /run
mkdir -p /run/xen /run/xenstored /dev/pts; mount -t devpts devpts /dev/pts
# own tmpfs for /tmp: the initramfs rootfs is capped at 50% of dom0's RAM and already holds ~75 MB,
# so "xl save agent /tmp/agent.save" (128 MB domU -> ~130 MB image) hit ENOSPC there
mount -t tmpfs -o size=80% tmpfs /tmp
echo "dom0: init at uptime \$(up), \$(uname -m)"
for m in \$(cat /etc/modules.load); do insmod /lib/modules/\$m.ko || echo "dom0: insmod \$m failed"; done
mount -t xenfs xenfs /proc/xen
xenstored --pid-file=/run/xenstored.pid || echo "dom0: xenstored failed"
xen-init-dom0 >/dev/null || echo "dom0: xen-init-dom0 failed"
xenconsoled --pid-file=/run/xen/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console || echo "dom0: xenconsoled failed"
[ -f /etc/net-dom0.sh ] && . /etc/net-dom0.sh
echo "dom0: toolstack up at uptime \$(up); xl create"
verdict=FAIL
XLV=$XLV
if [ -n "\$XLV" ]; then xl \$XLV create -p /etc/xen/agent.cfg; else xl create -p /etc/xen/agent.cfg 2>/tmp/xl.err; fi; xlrc=\$?
if [ \$xlrc = 0 ]; then
  DOMID=\$(xl domid agent)
  [ -f /etc/pre.sh ] && { echo "dom0: running pre script"; . /etc/pre.sh; }
  xl unpause agent
  echo "dom0: domU \$DOMID running at uptime \$(up); waiting for \$KEY"
  t0=\$(up); t0=\${t0%.*}; found=0
  while :; do
    v=\$(xenstore-read "/local/domain/\$DOMID/\$KEY" 2>/dev/null) && { found=1; break; }
    xl domid agent >/dev/null 2>&1 || { echo "dom0: domU died"; break; }
    t=\$(up); [ \$((\${t%.*} - t0)) -gt \$WAIT_S ] && { echo "dom0: timeout waiting for \$KEY"; break; }
    sleep 0.2
  done
  echo "dom0: key wait finished at uptime \$(up)"
  echo "=== dom0: xenstore-ls -f /local/domain/\$DOMID ==="
  xenstore-ls -f /local/domain/\$DOMID
  if [ \$found = 1 ] && { [ -z "\$EXPECT" ] || [ "\$v" = "\$EXPECT" ]; }; then verdict=PASS; else echo "dom0: \$KEY='\$v' expected='\$EXPECT'"; fi
  if [ \$verdict = PASS ] && [ -f /etc/check.sh ]; then
    echo "=== dom0: check script ==="
    ( . /etc/check.sh ) || { echo "dom0: check script failed"; verdict=FAIL; }
  fi
else
  echo "dom0: xl create failed:"; cat /tmp/xl.err 2>/dev/null
fi
[ -s /var/log/xen/qemu-dm-agent.log ] && { echo "=== dom0: /var/log/xen/qemu-dm-agent.log ==="; cat /var/log/xen/qemu-dm-agent.log; }
[ -s /var/log/xen/hotplug.log ] && { echo "=== dom0: /var/log/xen/hotplug.log ==="; cat /var/log/xen/hotplug.log; }
echo "=== domU console (/var/log/xen/console/guest-agent.log) ==="
cat /var/log/xen/console/guest-agent.log 2>/dev/null
echo "=== end of domU console ==="
echo "XENTEST: \$verdict (dom0 uptime \$(up))"
poweroff -f
EOI
chmod +x "$D/init"
(cd "$D" && find . | cpio -H newc -o --quiet > "$W/dom0.cpio")

# ---------------------------------------------------------------- boot
DOM0CMD="console=hvc0 rdinit=/init quiet $KARGS"   # x86: no commas allowed (QEMU module separator)
if [ $ARCH = x86_64 ]; then
  # smap=0: REQUIRED. With SMAP exposed by TCG (-cpu max) the PV dom0 dies at its first exception:
  #   "d0v0 Unhandled: vec 14, #PF[0001] ... create_bounce_frame". (-cpu qemu64 also avoids it.)
  # No "noreboot": a crashed dom0 makes Xen reboot, and -no-reboot turns that into a QEMU exit.
  XENCMD="console=com1 com1=115200,8n1 smap=0 dom0_mem=512M,max:512M dom0_max_vcpus=1 console_timestamps=boot"
  QEMU=(qemu-system-x86_64 -accel tcg -cpu max -m 1G -smp 2)
  if [ -n "$NPCI" ]; then
    # PCI passthrough needs an IOMMU (libxl: "passthrough not supported on this platform" otherwise)
    # (XQT_NO_IOMMU=1 leaves the IOMMU out, to see that failure)
    QEMU+=(-machine q35)
    # shellcheck disable=SC2054 # QEMU options are comma-separated on purpose
    [ "${XQT_NO_IOMMU:-0}" = 1 ] || QEMU+=(-device intel-iommu,intremap=on)
    # shellcheck disable=SC2054 # QEMU options are comma-separated on purpose
    QEMU+=(-netdev user,id=pt0 -device "$NPCI,netdev=pt0,mac=52:54:00:12:34:05,addr=0x$PCI_SLOT")
  fi
  # shellcheck disable=SC2054 # QEMU options are comma-separated on purpose
  [ $NUSB = 1 ] && QEMU+=(-device qemu-xhci,id=xhci -netdev user,id=usb0 -device usb-net,netdev=usb0,bus=xhci.0,mac=52:54:00:12:34:0b)
  QEMU+=(-kernel "$W/xen" -append "$XENCMD" -initrd "$W/vmlinux $DOM0CMD,$W/dom0.cpio")
else
  # No bootloader: QEMU loads Xen as an arm64 Image, the dom0 ramdisk via -initrd (linux,initrd-start)
  # and the dom0 kernel at KADDR with a generic loader; /chosen gets a multiboot,kernel node for it.
  # shellcheck disable=SC2054 # QEMU options are comma-separated on purpose
  MACH=(-machine virt,virtualization=on,gic-version=3 -cpu cortex-a57 -m 2G -smp 2)
  if [ $NPLAT = 1 ]; then
    [ "${XQT_PLAT_SMMU:-0}" = 1 ] && MACH+=(-machine iommu=smmuv3)
    # shellcheck disable=SC2054 # QEMU options are comma-separated on purpose
    MACH+=(-netdev user,id=plat0 -device virtio-net-device,netdev=plat0,mac=52:54:00:12:34:07)
  fi
  KADDR=0x60000000
  qemu-system-aarch64 "${MACH[@]}" -display none -machine dumpdtb="$W/virt.dtb" >/dev/null 2>&1
  DTB=$W/virt.dtb
  fdtput -t s "$DTB" /pl061@9030000 status disabled 2>/dev/null || true   # as in Xen's CI: the PL061 GPIO upsets dom0
  fdtput -t i "$DTB" /chosen '#address-cells' 2
  fdtput -t i "$DTB" /chosen '#size-cells' 2
  fdtput -t s "$DTB" /chosen xen,xen-bootargs \
    "console=dtuart dtuart=/pl011@9000000 dom0_mem=512M dom0_max_vcpus=1 console_timestamps=boot"
  fdtput -t s "$DTB" /chosen xen,dom0-bootargs "$DOM0CMD"
  fdtput -c "$DTB" /chosen/module@${KADDR#0x}
  fdtput -t s "$DTB" /chosen/module@${KADDR#0x} compatible multiboot,kernel multiboot,module
  fdtput -t x "$DTB" /chosen/module@${KADDR#0x} reg 0 ${KADDR#0x} 0 "$(printf %x "$(stat -c %s "$W/vmlinux")")"
  if [ $NPLAT = 1 ]; then
    fdtput "$DTB" $PLAT_NODE xen,passthrough        # Xen: do not give it to dom0 (dom0 sees status=disabled)
    if [ "${XQT_PLAT_NOWIN:-0}" != 1 ]; then
      # DMA window: cut it out of Xen's RAM (QEMU -m 2G = 0x40000000-0xc0000000) and describe it as a
      # passthrough "device", so that dom0 has iomem permission to hand it to the domU
      we=$((PLAT_WIN + PLAT_WIN_SZ))
      fdtput -t x "$DTB" /memory@40000000 reg 0 40000000 0 "$(printf %x $((PLAT_WIN - 0x40000000)))" 0 "$(printf %x "$we")" 0 "$(printf %x $((0xc0000000 - we)))"
      fdtput -c "$DTB" /dma-window@${PLAT_WIN#0x}
      fdtput -t s "$DTB" /dma-window@${PLAT_WIN#0x} compatible xen-qemu-test,dma-window
      fdtput -t x "$DTB" /dma-window@${PLAT_WIN#0x} reg 0 ${PLAT_WIN#0x} 0 ${PLAT_WIN_SZ#0x}
      fdtput "$DTB" /dma-window@${PLAT_WIN#0x} xen,passthrough
      # QEMU puts the dom0 initramfs at 0x48000000 (+ the DTB after it): it must end below the window
      [ $((0x48000000 + $(stat -c %s "$W/dom0.cpio") + 0x200000)) -lt $((PLAT_WIN)) ] ||
        { log "dom0.cpio too big for the -N platform memory layout"; exit 1; }
    fi
  fi
  # shellcheck disable=SC2054 # QEMU options are comma-separated on purpose
  QEMU=(qemu-system-aarch64 "${MACH[@]}" -kernel "$W/xen" -dtb "$DTB" -initrd "$W/dom0.cpio"
        -device "loader,file=$W/vmlinux,addr=$KADDR,force-raw=on")
fi
log "booting Xen ($ARCH) in QEMU (TCG), log: $LOG"
start=$(date +%s.%N)
set +e
timeout --foreground -k 5 "$TMO" "${QEMU[@]}" -nographic -no-reboot -monitor none -serial stdio -nic none \
  < /dev/null 2>&1 | tee "$LOG" |
  grep --line-buffered -E '^(dom0|domU|XENTEST|net\|)|xenstore-ls|^/local/domain/[0-9]+/(data|control)|\(XEN\).*(crash|Panic)|Kernel panic' >&2
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
if grep -q 'XENTEST: PASS' "$LOG"; then verdict=PASS; status=0; else verdict=FAIL; status=1; fi
[ "$rc" = 124 ] && log "QEMU timed out after ${TMO}s"
log "verdict=$verdict qemu_rc=$rc wall=$(awk "BEGIN{printf \"%.1f\", $end - $start}")s"
exit $status
