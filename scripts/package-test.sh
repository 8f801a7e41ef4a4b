#!/usr/bin/env bash
# Checks what we ship: builds the arm64 and armhf packages (scripts/dist.sh)
# twice and requires byte-identical .debs (reproducible builds), runs
# lintian at --pedantic (only the explained overrides may remain), checks
# the binaries' architectures, unpacks each .deb into a scratch root and
# checks its files and md5sums, then runs the packaged binary under
# qemu-user: `version`, `config check` of the configuration postinst
# writes, and a short demo run until /healthz answers 200.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DIST_OUT:-dist}
export DIST_OUT=$out
# Check only what this run builds, not packages an older commit left.
rm -f "$out"/fieldkit_*.deb
./scripts/dist.sh >/dev/null

fail() { echo "FAIL: $*" >&2; exit 1; }

# Reproducible: a second build of the same commit, elsewhere, is identical.
again=$(mktemp -d)
DIST_OUT=$again ./scripts/dist.sh >/dev/null
for deb in "$again"/*.deb; do
	cmp "$deb" "$out/$(basename "$deb")" || fail "$(basename "$deb") differs between two builds"
	echo "reproducible: $(basename "$deb") $(sha256sum < "$deb" | cut -c1-16)"
done
rm -rf "$again"

if command -v lintian >/dev/null; then
	for deb in "$out"/fieldkit_*.deb; do
		# Any tag left after the overrides fails, down to pedantic.
		tags=$(lintian --pedantic --display-info "$deb" 2>&1 | grep -E '^[EWIPX]: ' || true)
		[ -z "$tags" ] || { echo "$tags"; fail "lintian --pedantic on $(basename "$deb")"; }
		echo "lintian --pedantic: $(basename "$deb") clean"
	done
else
	echo "lintian not installed: skipped (scripts/test.sh installs it)"
fi

for arch in arm64 armhf; do
	deb=$(ls -t "$out"/fieldkit_*_"$arch".deb | head -1)
	case $arch in
	arm64) qemu=qemu-aarch64-static; magic="ARM aarch64"; goarch=arm64 ;;
	armhf) qemu=qemu-arm-static; magic="ARM, EABI5"; goarch=arm ;;
	esac
	echo "-- $deb"
	# Print, then match: `tee /dev/stderr` reopens a log file that stderr
	# points to with O_TRUNC and wipes what the suite printed before.
	desc=$(file "$out/firmware-agent-linux-$arch")
	echo "$desc"
	grep -q "$magic" <<<"$desc" || fail "$arch binary is not $magic"

	root=$(mktemp -d)
	trap 'rm -rf "$root"' EXIT
	dpkg-deb -x "$deb" "$root"
	dpkg-deb -e "$deb" "$root/DEBIAN"
	for f in usr/bin/firmware-agent lib/systemd/system/firmware-agent.service \
		lib/udev/rules.d/99-fieldkit.rules usr/share/fieldkit/agent.yaml usr/lib/fieldkit/default-config \
		usr/share/fieldkit/chrony-venue.conf \
		usr/share/doc/fieldkit/copyright usr/share/man/man1/firmware-agent.1.gz \
		DEBIAN/postinst DEBIAN/prerm DEBIAN/postrm DEBIAN/md5sums; do
		[ -e "$root/$f" ] || fail "$deb lacks $f"
	done
	(cd "$root" && md5sum --quiet -c DEBIAN/md5sums) || fail "md5sums do not match the files"
	shipped=$(cd "$root" && find . -type f ! -path './DEBIAN/*' | wc -l)
	[ "$(wc -l < "$root/DEBIAN/md5sums")" -eq "$shipped" ] || fail "md5sums does not list every file"
	# What postinst writes on a box with port 1883 free: the template.
	FIELDKIT_PROC_NET=/nonexistent sh "$root/usr/lib/fieldkit/default-config" "$root/usr/share/fieldkit/agent.yaml" > "$root/agent.yaml"
	cmp -s "$root/agent.yaml" "$root/usr/share/fieldkit/agent.yaml" || fail "default-config changed the template with no broker running"
	grep -q "^Architecture: $arch$" "$root/DEBIAN/control" || fail "control has the wrong architecture"
	grep -q '^Type=notify' "$root/lib/systemd/system/firmware-agent.service" || fail "unit is not Type=notify"

	bin="$root/usr/bin/firmware-agent"
	ver=$("$qemu" "$bin" version)
	echo "$ver"
	grep -q "linux/$goarch" <<<"$ver" || fail "version under $qemu"
	"$qemu" "$bin" config check "$root/agent.yaml" || fail "shipped config does not pass config check"

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
