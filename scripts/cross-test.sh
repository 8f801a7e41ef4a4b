#!/usr/bin/env bash
# Builds the unit tests of the hardware-facing packages for the Pi's two
# architectures (linux/arm64 and linux/arm GOARM=7, cgo with Debian's cross
# compilers, linked statically) and runs them under qemu-user.
#
# Which packages: boards, drivers, printer, scenes and sync: everything
# that runs on the box and has tests. firmware-agent's process tests are
# left to the native run because they call `go build` themselves, and
# bench is not tests. sync/ingest (and internal/pgtest, which starts its
# PostgreSQL) is the cloud side: it never runs on a box.
# Set CROSS_ARCHES="arm64" to run one architecture.
set -euo pipefail
cd "$(dirname "$0")/.."

arches=${CROSS_ARCHES:-"arm64 arm"}
out=${CROSS_OUT:-dist/crosstest}
mkdir -p "$out"

pkgs=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' \
	./boards/... ./drivers/... ./printer/... ./scenes/... ./sync/... ./internal/... |
	sed -e '/^$/d' -e '/\/sync\/ingest$/d' -e '/\/internal\/pgtest$/d')

fail=0
for arch in $arches; do
	case $arch in
	arm64) cc=aarch64-linux-gnu-gcc; qemu=qemu-aarch64-static; goarm= ;;
	arm) cc=arm-linux-gnueabihf-gcc; qemu=qemu-arm-static; goarm=7 ;;
	*) echo "unknown arch $arch" >&2; exit 2 ;;
	esac
	echo "-- linux/$arch${goarm:+ GOARM=$goarm}"
	for pkg in $pkgs; do
		name=$(echo "$pkg" | tr / _)
		bin="$out/$arch/$name.test"
		mkdir -p "$out/$arch"
		CGO_ENABLED=1 GOOS=linux GOARCH=$arch GOARM=$goarm CC=$cc \
			go test -c -o "$bin" -tags netgo,osusergo,sqlite_omit_load_extension \
			-ldflags '-extldflags -static' "$pkg" 2> "$bin.build.log" || {
			echo "BUILD FAIL $pkg ($arch)"; cat "$bin.build.log"; fail=1; continue; }
		[ -f "$bin" ] || continue
		dir=$(go list -f '{{.Dir}}' "$pkg")
		start=$(date +%s)
		# Tests read testdata relative to their package directory.
		if (cd "$dir" && "$qemu" "$OLDPWD/$bin" -test.count=1 -test.timeout=5m > "$OLDPWD/$bin.log" 2>&1); then
			echo "ok   $pkg ($arch, $(( $(date +%s) - start ))s)"
		else
			echo "FAIL $pkg ($arch)"; tail -40 "$bin.log"; fail=1
		fi
	done
done
exit $fail
