# shellcheck shell=bash
# Sourced by tests/system/run: a Debian 12 root that boots with systemd (systemd-nspawn -b), with
# the distribution's PostgreSQL, nginx and njs and the package's runtime libraries already
# installed (the booted container has no network: --private-network leaves it only `lo`). Built
# once with debootstrap and cached as a tarball keyed by its package list.

SYSTEM_CACHE=${MUSIC_API_SYSTEM_CACHE:-/var/tmp/music-api-system}
SYSTEM_MIRROR=${MUSIC_API_SYSTEM_MIRROR:-http://deb.debian.org/debian}
# What a sysadmin's server already has, plus what the README's steps call (sudo, curl, openssl).
SYSTEM_PACKAGES="postgresql nginx libnginx-mod-http-js ssl-cert sudo curl openssl procps iproute2 init-system-helpers
  pgbackrest jq"

mounts_under() { awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r; }
unmount_under() { local m; for m in $(mounts_under "$1"); do umount "$m" 2>/dev/null || umount -l "$m"; done; }

# system_root_tarball DEB: prints the cached tarball's path, building it first when missing.
system_root_tarball() {
  local deb=$1 depends packages key tarball build
  # The package's own Depends (names only): apt inside the container must find them installed.
  depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/[|(].*//; s/ //g' | grep -v '^$' | sort -u | tr '\n' ' ')
  packages=$(printf '%s\n' $SYSTEM_PACKAGES $depends | sort -u | tr '\n' ' ')
  key=$(printf '%s\n' bookworm-systemd-v1 $packages | sha256sum | cut -c1-12)
  tarball=$SYSTEM_CACHE/bookworm-systemd-$key.tar
  if [ -s "$tarball" ]; then echo "$tarball"; return; fi
  mkdir -p "$SYSTEM_CACHE"
  build=$SYSTEM_CACHE/build-$$
  rm -rf --one-file-system "$build"
  echo "building the Debian 12 root once (debootstrap, then: $packages); cached as $tarball" >&2
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates bookworm "$build" \
    "$SYSTEM_MIRROR" >"$SYSTEM_CACHE/debootstrap.log" 2>&1 ||
    { tail -n 20 "$SYSTEM_CACHE/debootstrap.log" >&2; return 1; }
  cat >"$build/etc/apt/sources.list" <<SOURCES
deb $SYSTEM_MIRROR bookworm main
deb $SYSTEM_MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
  cp -L /etc/resolv.conf "$build/etc/resolv.conf"
  # Package scripts must not start services inside the chroot (they would run on the host's network).
  printf '#!/bin/sh\nexit 101\n' >"$build/usr/sbin/policy-rc.d" && chmod 755 "$build/usr/sbin/policy-rc.d"
  mount -t proc proc "$build/proc" && mount -t sysfs sys "$build/sys" && mount --bind /dev "$build/dev" &&
    mount --bind /dev/pts "$build/dev/pts" && mount -t tmpfs -o mode=1777 shm "$build/dev/shm"
  local rc=0
  chroot "$build" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    /bin/sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages && apt-get clean" \
    >"$SYSTEM_CACHE/apt.log" 2>&1 || rc=$?
  unmount_under "$build"
  [ "$rc" -eq 0 ] || { tail -n 20 "$SYSTEM_CACHE/apt.log" >&2; return 1; }
  rm -f "$build/usr/sbin/policy-rc.d" "$build/etc/resolv.conf"
  # A machine id per boot (systemd makes one when the file is empty), a hostname, root's console.
  : >"$build/etc/machine-id"
  echo music-api-system >"$build/etc/hostname"
  tar --numeric-owner --one-file-system -C "$build" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$build"
  echo "$tarball"
}
