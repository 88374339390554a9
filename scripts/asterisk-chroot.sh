#!/usr/bin/env bash
# Build (or reuse) the cached Debian sid chroot that runs the sandbox Asterisk 22.
#
#   scripts/asterisk-chroot.sh            print the chroot's path, building it when missing or broken
#   scripts/asterisk-chroot.sh --rebuild  build it anew
#
# The cache lives outside the repository, in $CALLFLOW_CACHE (default /var/cache/callflow):
#   rootfs/   the chroot, marked complete by rootfs/.callflow-ok
#   debs/     debootstrap's download cache, so a rebuild reuses what it fetched before
set -euo pipefail

cache=${CALLFLOW_CACHE:-/var/cache/callflow}
mirror=${CALLFLOW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=asterisk,asterisk-modules
rootfs=$cache/rootfs
stamp=$rootfs/.callflow-ok

die() { printf 'asterisk-chroot: %s\n' "$*" >&2; exit 1; }

healthy() {
  [ -f "$stamp" ] &&
    [ -x "$rootfs/usr/sbin/asterisk" ] &&
    [ -f "$rootfs/usr/lib/x86_64-linux-gnu/asterisk/modules/chan_pjsip.so" ] &&
    [ -f "$rootfs/usr/lib/x86_64-linux-gnu/asterisk/modules/res_agi.so" ] &&
    chroot "$rootfs" /usr/sbin/asterisk -V >/dev/null 2>&1
}

if [ "${1:-}" != "--rebuild" ] && [ "$(id -u)" -eq 0 ] && healthy; then
  printf '%s\n' "$rootfs"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it): try 'sudo make sandbox-up'"
command -v debootstrap >/dev/null 2>&1 ||
  die "debootstrap is not installed: run 'make deps' (or 'apt-get install debootstrap')"

# Never leave proc mounted inside a tree we are about to delete.
for m in "$rootfs/proc" "$rootfs.new/proc"; do
  if mountpoint -q "$m" 2>/dev/null; then umount -l "$m"; fi
done

if [ -e "$rootfs" ]; then
  printf 'asterisk-chroot: cached chroot %s is missing or broken; rebuilding\n' "$rootfs" >&2
fi
mkdir -p "$cache/debs"
rm -rf "$rootfs.new"
printf 'asterisk-chroot: building Debian sid + Asterisk in %s (about a minute)\n' "$rootfs" >&2
if ! debootstrap --variant=minbase --include="$packages" --cache-dir="$cache/debs" \
  sid "$rootfs.new" "$mirror" >"$cache/debootstrap.log" 2>&1; then
  tail -20 "$cache/debootstrap.log" >&2
  die "debootstrap failed (log: $cache/debootstrap.log); check that $mirror is reachable"
fi
rm -rf "$rootfs"
mv "$rootfs.new" "$rootfs"
chroot "$rootfs" /usr/sbin/asterisk -V >"$stamp" || die "the new chroot's asterisk does not run"
printf 'asterisk-chroot: ready: %s\n' "$(cat "$stamp")" >&2
printf '%s\n' "$rootfs"
