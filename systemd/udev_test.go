// Package systemd holds no code: its tests check the unit and the udev
// rules the package installs, with the real tools.
package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// isolated is a shell script run in a private mount namespace: /dev and
// /run/udev are fresh tmpfs (so udevadm test, which creates the links it
// computes, touches nothing on the machine), and the rules directory
// /etc/udev/rules.d holds only our rules file ($RULES).
const isolated = `set -e
T=$(mktemp -d)
mkdir -p "$T/realdev"
mount --rbind /dev "$T/realdev"
mount -t tmpfs tmpfs /dev
for n in null zero urandom random tty; do touch "/dev/$n"; mount --bind "$T/realdev/$n" "/dev/$n"; done
mkdir /dev/pts /dev/shm
mount --rbind "$T/realdev/pts" /dev/pts
mount --rbind "$T/realdev/shm" /dev/shm
ln -s pts/ptmx /dev/ptmx
mkdir -p /run/udev
mount -t tmpfs tmpfs /run/udev
mount --bind "$RULES" /etc/udev/rules.d
exec umockdev-run -d "$DEVICES" -- udevadm test --action=add "$SYSPATH"
`

// udevTest runs `udevadm test` for syspath against the devices recorded
// in the umockdev file, with only our rules, and returns its environment
// printout (KEY=value lines) and full output.
func udevTest(t *testing.T, devices, syspath string) (map[string]string, string) {
	t.Helper()
	for _, bin := range []string{"udevadm", "umockdev-run", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not found: install udev and umockdev (scripts/test.sh does)", bin)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("the udev rules test needs root, for a private mount namespace (CI runs as root)")
	}
	rules := t.TempDir()
	b, err := os.ReadFile("99-fieldkit.rules")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rules, "99-fieldkit.rules"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(devices)
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", isolated)
	cmd.Env = append(os.Environ(), "RULES="+rules, "DEVICES="+abs, "SYSPATH="+syspath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("udevadm test %s: %v\n%s", syspath, err, out)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && k != "" && strings.ToUpper(k) == k && !strings.ContainsAny(k, " :") {
			env[k] = v
		}
	}
	if strings.Contains(string(out), "99-fieldkit.rules") && strings.Contains(string(out), "Invalid") {
		t.Fatalf("udev refuses part of our rules:\n%s", out)
	}
	return env, string(out)
}

// Each printer gets a link of its own: by its serial number when the
// printer's USB device has one, and by the port it is plugged into.
func TestPrinterLinks(t *testing.T) {
	cases := []struct {
		syspath string
		want    []string
		notWant []string
	}{
		{"/sys/class/usbmisc/lp0",
			[]string{"/dev/fieldkit/printer-usb-SN_0042_A", "/dev/fieldkit/printer-usb-port-pci-0000_00_14_0-usb-0_1_1_0"},
			[]string{"/dev/fieldkit/printer-usb- ", "0000:00:14.0"}},
		// No serial: no serial link at all (not an empty one, nor the root
		// hub's), only the port.
		{"/sys/class/usbmisc/lp1",
			[]string{"/dev/fieldkit/printer-usb-port-pci-0000_00_14_0-usb-0_2_1_0"},
			[]string{"/dev/fieldkit/printer-usb-SN", "/dev/fieldkit/printer-usb-0000", "/dev/fieldkit/printer-usb- "}},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.syspath), func(t *testing.T) {
			env, out := udevTest(t, "testdata/two-printers.umockdev", c.syspath)
			links := strings.Fields(env["DEVLINKS"])
			has := map[string]bool{}
			for _, l := range links {
				has[l] = true
				if strings.HasSuffix(l, "printer-usb-") {
					t.Errorf("empty-suffixed link %s", l)
				}
			}
			for _, w := range c.want {
				if !has[w] {
					t.Errorf("no link %s; links %q\n%s", w, links, out)
				}
			}
			for _, nw := range c.notWant {
				for _, l := range links {
					if strings.Contains(l+" ", nw) {
						t.Errorf("link %s should not exist", l)
					}
				}
			}
			if !strings.Contains(out, "99-fieldkit.rules") || !regexp.MustCompile(`99-fieldkit.rules:\d+ GROUP`).MatchString(out) {
				t.Errorf("our rule did not set group lp:\n%s", out)
			}
		})
	}
}

// The package's postinst re-triggers every subsystem the rules cover, so
// that groups and links apply at install, not at the next boot.
func TestPostinstTriggersEverySubsystem(t *testing.T) {
	rules, err := os.ReadFile("99-fieldkit.rules")
	if err != nil {
		t.Fatal(err)
	}
	postinst, err := os.ReadFile("../packaging/deb/postinst")
	if err != nil {
		t.Fatal(err)
	}
	subs := regexp.MustCompile(`(?m)^[^#\n]*\bSUBSYSTEM=="([^"]+)"`).FindAllStringSubmatch(string(rules), -1)
	if len(subs) < 5 {
		t.Fatalf("found only %d SUBSYSTEM matches in the rules", len(subs))
	}
	for _, m := range subs {
		if !strings.Contains(string(postinst), "--subsystem-match="+m[1]) {
			t.Errorf("postinst does not re-trigger subsystem %s, which the rules cover", m[1])
		}
	}
}
