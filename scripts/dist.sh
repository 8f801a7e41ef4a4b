#!/usr/bin/env bash
# Builds firmware-agent for the Raspberry Pi's two architectures and
# packages a .deb for each:
#   linux/arm64          Pi 3/4/5, Zero 2 W, CM4 on a 64-bit OS  → dist/fieldkit_<v>_arm64.deb
#   linux/arm GOARM=7    32-bit Raspberry Pi OS                  → dist/fieldkit_<v>_armhf.deb
# cgo (for SQLite) through Debian's cross compilers, installed when missing;
# the binaries are linked statically so they run on any Pi OS release.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

declare -A want=(
	[gcc-aarch64-linux-gnu]=/usr/bin/aarch64-linux-gnu-gcc
	[gcc-arm-linux-gnueabihf]=/usr/bin/arm-linux-gnueabihf-gcc
	[libc6-dev-arm64-cross]=/usr/aarch64-linux-gnu/include/stdio.h
	[libc6-dev-armhf-cross]=/usr/arm-linux-gnueabihf/include/stdio.h
	[dpkg-dev]=/usr/bin/dpkg-architecture
	[file]=/usr/bin/file
)
missing=()
for pkg in "${!want[@]}"; do [ -e "${want[$pkg]}" ] || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -q
	as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Reproducible: the same commit gives byte-identical packages. Every time
# stamp is the commit's (or SOURCE_DATE_EPOCH's), the Go build records no
# paths or build ids, and mkdeb.sh fixes file modes, times and order.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export TZ=UTC LC_ALL=C
umask 022

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# A release tag (v1.2.3) gives the version; untagged builds are
# 0.1.0+git<commit>, since Debian versions must start with a digit.
if describe=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null); then
	version=${describe#v}
else
	version="0.1.0+git$(git describe --always --dirty 2>/dev/null || echo "$commit")"
fi
version=${version//-/+}
out=${DIST_OUT:-dist}
mkdir -p "$out"

build() { # goarch goarm cc debarch
	local goarch=$1 goarm=$2 cc=$3 debarch=$4
	local bin="$out/firmware-agent-linux-$debarch"
	echo "-- building $bin"
	CGO_ENABLED=1 GOOS=linux GOARCH=$goarch GOARM=$goarm CC=$cc \
		go build -trimpath -buildvcs=false -tags netgo,osusergo,sqlite_omit_load_extension \
		-ldflags "-s -w -buildid= -X main.version=$version -X main.commit=$commit -extldflags -static" \
		-o "$bin" ./firmware-agent
	file "$bin"
	./scripts/mkdeb.sh "$bin" "$debarch" "$version" "$out"
}

archs=${DIST_ARCHES:-"arm64 armhf"}
for a in $archs; do
	case $a in
	arm64) build arm64 "" aarch64-linux-gnu-gcc arm64 ;;
	armhf) build arm 7 arm-linux-gnueabihf-gcc armhf ;;
	*) echo "unknown arch $a" >&2; exit 2 ;;
	esac
done
ls -l "$out"/*.deb
