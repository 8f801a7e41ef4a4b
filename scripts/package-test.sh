#!/usr/bin/env bash
# Checks what we ship: builds the arm64 and armhf packages (scripts/dist.sh),
# checks the binaries' architectures, unpacks each .deb into a scratch root
# and checks its files, then runs the packaged binary under qemu-user:
# `version`, `config check` of the shipped conffile, and a short demo run
# until /healthz answers 200.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DIST_OUT:-dist}
export DIST_OUT=$out
./scripts/dist.sh >/dev/null

fail() { echo "FAIL: $*" >&2; exit 1; }

for arch in arm64 armhf; do
	deb=$(ls -t "$out"/fieldkit_*_"$arch".deb | head -1)
	case $arch in
	arm64) qemu=qemu-aarch64-static; magic="ARM aarch64"; goarch=arm64 ;;
	armhf) qemu=qemu-arm-static; magic="ARM, EABI5"; goarch=arm ;;
	esac
	echo "-- $deb"
	file "$out/firmware-agent-linux-$arch" | tee /dev/stderr | grep -q "$magic" || fail "$arch binary is not $magic"

	root=$(mktemp -d)
	trap 'rm -rf "$root"' EXIT
	dpkg-deb -x "$deb" "$root"
	dpkg-deb -e "$deb" "$root/DEBIAN"
	for f in usr/bin/firmware-agent lib/systemd/system/firmware-agent.service \
		lib/udev/rules.d/99-fieldkit.rules etc/fieldkit/agent.yaml \
		usr/share/doc/fieldkit/copyright usr/share/man/man1/firmware-agent.1.gz \
		DEBIAN/postinst DEBIAN/prerm DEBIAN/postrm DEBIAN/conffiles; do
		[ -e "$root/$f" ] || fail "$deb lacks $f"
	done
	grep -qx /etc/fieldkit/agent.yaml "$root/DEBIAN/conffiles" || fail "agent.yaml is not a conffile"
	grep -q "^Architecture: $arch$" "$root/DEBIAN/control" || fail "control has the wrong architecture"
	grep -q '^Type=notify' "$root/lib/systemd/system/firmware-agent.service" || fail "unit is not Type=notify"

	bin="$root/usr/bin/firmware-agent"
	"$qemu" "$bin" version | tee /dev/stderr | grep -q "linux/$goarch" || fail "version under $qemu"
	"$qemu" "$bin" config check "$root/etc/fieldkit/agent.yaml" || fail "shipped config does not pass config check"

	data=$(mktemp -d)
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"$qemu" "$bin" run --data "$data" --http "127.0.0.1:$port" --mqtt-listen "127.0.0.1:$mport" > "$data/agent.log" 2>&1 &
	pid=$!
	ok=
	for _ in $(seq 1 300); do
		if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ok=1; break; fi
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -n "$ok" ] || { cat "$data/agent.log"; fail "demo under $qemu never answered /healthz"; }
	echo "demo under $qemu: /healthz 200"
	rm -rf "$data" "$root"
	trap - EXIT
done
echo "packages ok"
