package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the README's first command as a user would: the real daemon
// and dkctl binaries, the shipped simulator configuration.
func TestDemo(t *testing.T) {
	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", bin+"/", "../dkvehicled", "../dkctl", "../dkpki").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"-dkvehicled", filepath.Join(bin, "dkvehicled"), "-dkctl", filepath.Join(bin, "dkctl"), "-dkpki", filepath.Join(bin, "dkpki"),
		"-config", "../../configs/simulator.toml",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "all 19 steps behaved as expected") || strings.Contains(stdout.String(), "✗") {
		t.Fatalf("demo output:\n%s", stdout.String())
	}
}
