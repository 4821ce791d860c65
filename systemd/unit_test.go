// Package systemd holds dkvehicled's unit files; this test checks them with
// systemd's own tools.
package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestUnitVerifiesAndIsHardened runs systemd-analyze verify on the unit (with
// ExecStart pointing at a freshly built daemon) and checks that the offline
// security exposure stays at 2.5 or below.
func TestUnitVerifiesAndIsHardened(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "dkvehicled")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/dkvehicled").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	unit, err := os.ReadFile("dkvehicled.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dkvehicled.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/bin/dkvehicled", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for dkvehicled.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security exposure: %.1f", score)
	if score > 2.5 {
		t.Fatalf("exposure %.1f above 2.5:\n%s", score, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "User=dkvehicled", "StateDirectory=", "RuntimeDirectory=", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "RestrictAddressFamilies=AF_UNIX", "DevicePolicy=closed"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}
}
