#!/usr/bin/env bash
# mkdeb.sh BINARY DEBARCH VERSION OUTDIR: packages one firmware-agent
# binary as fieldkit_VERSION_DEBARCH.deb with dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1 arch=$2 version=$3 out=$4
# Reproducible (see dist.sh): modes from install -m and umask, every mtime
# set to SOURCE_DATE_EPOCH, dpkg-deb sorts the members and clamps times.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export LC_ALL=C TZ=UTC
umask 022
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

install -D -m 0755 "$bin" "$root/usr/bin/firmware-agent"
# The C parts (SQLite, libc) bring the compilers' .comment notes; drop
# them as dh_strip does.
case $arch in
arm64) objcopy=aarch64-linux-gnu-objcopy ;;
armhf) objcopy=arm-linux-gnueabihf-objcopy ;;
*) objcopy=objcopy ;;
esac
"$objcopy" --remove-section=.comment "$root/usr/bin/firmware-agent"
install -D -m 0644 systemd/firmware-agent.service "$root/lib/systemd/system/firmware-agent.service"
install -D -m 0644 systemd/99-fieldkit.rules "$root/lib/udev/rules.d/99-fieldkit.rules"
# The first configuration is written by postinst from this template, so
# that it can join a broker already on port 1883 (default-config); it is
# then the administrator's file, kept on upgrade and removed on purge.
install -D -m 0644 packaging/deb/agent.yaml "$root/usr/share/fieldkit/agent.yaml"
install -D -m 0755 packaging/deb/default-config "$root/usr/lib/fieldkit/default-config"
# The venue's time source, inactive until linked into /etc/chrony/conf.d
# on the reference box (README: Venue time source).
install -D -m 0644 packaging/deb/chrony-venue.conf "$root/usr/share/fieldkit/chrony-venue.conf"
install -D -m 0644 packaging/deb/copyright "$root/usr/share/doc/fieldkit/copyright"
install -D -m 0644 README.md "$root/usr/share/doc/fieldkit/README.md"
install -d "$root/usr/share/man/man1"
gzip -9n < packaging/deb/firmware-agent.1 > "$root/usr/share/man/man1/firmware-agent.1.gz"
chmod 0644 "$root/usr/share/man/man1/firmware-agent.1.gz"
date=$(date -R -d "@$SOURCE_DATE_EPOCH")
printf 'fieldkit (%s) stable; urgency=medium\n\n  * Build of %s.\n\n -- fieldkit team <team@fieldkit.invalid>  %s\n' \
	"$version" "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" "$date" |
	gzip -9n > "$root/usr/share/doc/fieldkit/changelog.gz"
chmod 0644 "$root/usr/share/doc/fieldkit/changelog.gz"

install -D -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/fieldkit"

install -d -m 0755 "$root/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$root/DEBIAN/$s"; done
# md5sums of every shipped file, as dh_md5sums writes them: paths
# relative to /, sorted. (No conffiles: see agent.yaml above.)
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
	> "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
# Installed-Size from apparent sizes, not from the build filesystem's blocks.
size=$(find "$root" -path "$root/DEBIAN" -prune -o -type f -printf '%s\n' | awk '{k += int(($1 + 1023) / 1024)} END {print k + 0}')
cat > "$root/DEBIAN/control" <<CONTROL
Package: fieldkit
Version: $version
Architecture: $arch
Maintainer: fieldkit team <team@fieldkit.invalid>
Installed-Size: $size
Depends: adduser, init-system-helpers (>= 1.54)
Recommends: systemd
Section: misc
Priority: optional
Homepage: https://fieldkit.invalid/
Description: venue agent for pop-up live-commerce crews
 fieldkit runs on a Raspberry Pi class box at a venue: it fires lighting,
 LED and haptic cues in timed scenes over GPIO and MQTT, warns before an
 encoder's battery dies, prints pickup labels on thermal printers, and
 keeps a signed receipt ledger that drains to the cloud when the venue's
 internet is back.
CONTROL
chmod 0644 "$root/DEBIAN/control"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$out/fieldkit_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
