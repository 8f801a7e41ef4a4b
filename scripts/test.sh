#!/usr/bin/env bash
# The whole fieldkit test suite, on a fresh Debian/Ubuntu machine.
# It installs what the tests drive for real (Mosquitto, Chromium, the ARM
# cross compilers and qemu-user) with apt-get when they are missing, then
# runs vet, gofmt, the unit and process tests under the race detector, the
# cross-built unit tests under emulation, and checks the .deb packages.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian package → a file that shows it is installed.
declare -A want=(
	[mosquitto]=/usr/sbin/mosquitto
	[mosquitto-clients]=/usr/bin/mosquitto_sub
	[chromium]=/usr/bin/chromium
	[gcc]=/usr/bin/gcc
	[gcc-aarch64-linux-gnu]=/usr/bin/aarch64-linux-gnu-gcc
	[gcc-arm-linux-gnueabihf]=/usr/bin/arm-linux-gnueabihf-gcc
	[libc6-dev-arm64-cross]=/usr/aarch64-linux-gnu/include/stdio.h
	[libc6-dev-armhf-cross]=/usr/arm-linux-gnueabihf/include/stdio.h
	[qemu-user-static]=/usr/bin/qemu-aarch64-static
	[lintian]=/usr/bin/lintian
	[file]=/usr/bin/file
	[dpkg-dev]=/usr/bin/dpkg-architecture
	[curl]=/usr/bin/curl
	[python3]=/usr/bin/python3
	[nut-server]=/lib/nut/dummy-ups
	[prometheus]=/usr/bin/promtool
	[udev]=/bin/udevadm
	[umockdev]=/usr/bin/umockdev-run
	[python3-jinja2]=/usr/lib/python3/dist-packages/jinja2/__init__.py
	# The ingest tests start throwaway clusters from its server binaries
	# (/usr/lib/postgresql/<version>/bin), run as the postgres user.
	[postgresql]=/usr/share/doc/postgresql/copyright
	[python3-cryptography]=/usr/lib/python3/dist-packages/cryptography/__init__.py
)
missing=()
for pkg in "${!want[@]}"; do
	[ -e "${want[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -q
	as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The package starts a system-wide broker on :1883; the tests start their
# own on free ports, and the demo embeds one on 1883, so stop it.
if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
	as_root systemctl stop mosquitto || true
fi
# The prometheus package (for promtool) and nut-server may start their
# daemons; the tests run their own upsd on free ports and need no server.
for svc in prometheus prometheus-node-exporter nut-server nut-driver; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
		as_root systemctl stop "$svc" || true
	fi
done

if ! command -v go >/dev/null; then
	echo "Go is not installed: install Go 1.21 or newer (it fetches the 1.26 toolchain that go.mod asks for)." >&2
	exit 1
fi
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
export CGO_ENABLED=1
export FIELDKIT_MOSQUITTO=/usr/sbin/mosquitto
export FIELDKIT_PYTHON=/usr/bin/python3
export FIELDKIT_CHROMIUM=/usr/bin/chromium

log "go version"
go version

log "gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then
	echo "gofmt would change:"; echo "$bad"; exit 1
fi

log "go vet"
go vet ./...

log "go test -race (unit, fuzz seed corpora, process and browser tests)"
go test -race -count=1 -timeout 12m ./...

log "cross-built unit tests under qemu-user"
./scripts/cross-test.sh

log "packages: arm64 and armhf .deb, contents, and the packaged binary under qemu-user"
./scripts/package-test.sh

log "all green"
