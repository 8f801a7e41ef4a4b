#!/usr/bin/env bash
# Installs the arm64 .deb into a real Debian arm64 root made with
# debootstrap, runs it there under qemu-user, then removes and purges it.
# Not part of the test command: it downloads a Debian base system
# (~100 MB) and needs root and binfmt_misc. Run it by hand after
# scripts/dist.sh:  sudo ./scripts/deb-root-test.sh [ROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-/var/tmp/fieldkit-arm64root}
deb=$(ls -t dist/fieldkit_*_arm64.deb | head -1)

export DEBIAN_FRONTEND=noninteractive
for p in debootstrap qemu-user-static curl; do
	dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -q; apt-get install -y -q --no-install-recommends "$p"; }
done

# Let the kernel start arm64 binaries through qemu, for the chroot.
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
registered=
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
	registered=1
fi
cleanup() {
	umount "$R/proc" 2>/dev/null || true
	[ -z "$registered" ] || echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64
}
trap cleanup EXIT

if [ ! -x "$R/usr/bin/dpkg" ]; then
	debootstrap --arch=arm64 --foreign --variant=minbase --include=adduser,init-system-helpers \
		bookworm "$R" http://deb.debian.org/debian
	cp /usr/bin/qemu-aarch64-static "$R/usr/bin/"
	chroot "$R" /debootstrap/debootstrap --second-stage
fi
mountpoint -q "$R/proc" || mount --bind /proc "$R/proc"
install -m 0644 "$deb" "$R/tmp/fieldkit.deb"

chroot "$R" dpkg -i /tmp/fieldkit.deb
chroot "$R" sh -ec '
	id fieldkit | grep -q "(gpio)"
	id fieldkit | grep -q "(dialout)"
	test "$(stat -c %U:%a /var/lib/fieldkit)" = fieldkit:750
	test -L /etc/systemd/system/multi-user.target.wants/firmware-agent.service
	test -f /lib/systemd/system/firmware-agent.service
	test -f /lib/udev/rules.d/99-fieldkit.rules
	test "$(stat -c %G:%a /etc/fieldkit/agent.yaml)" = fieldkit:640
	firmware-agent version
	firmware-agent config check /etc/fieldkit/agent.yaml'

port=18091
timeout 30 chroot --userspec=fieldkit:fieldkit "$R" /usr/bin/firmware-agent run \
	--config /etc/fieldkit/agent.yaml --http 127.0.0.1:$port --mqtt-listen 127.0.0.1:18892 &
pid=$!
ok=
for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && { ok=1; break; }; sleep 0.2; done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
[ -n "$ok" ] || { echo "FAIL: the installed agent never answered /healthz"; exit 1; }
echo "installed agent: /healthz 200 as the fieldkit user"

chroot "$R" dpkg -r fieldkit
chroot "$R" test -d /var/lib/fieldkit || { echo "FAIL: remove deleted the state dir"; exit 1; }
chroot "$R" test -f /etc/fieldkit/agent.yaml || { echo "FAIL: remove deleted the configuration"; exit 1; }
chroot "$R" dpkg -P fieldkit
chroot "$R" test ! -e /var/lib/fieldkit || { echo "FAIL: purge kept the state dir"; exit 1; }
chroot "$R" test ! -e /etc/fieldkit/agent.yaml || { echo "FAIL: purge kept the configuration"; exit 1; }
echo "deb install, run, remove and purge in a Debian arm64 root: ok"
