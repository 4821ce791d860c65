package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// peerEnv names the socket a re-executed test binary connects to as
// another user.
const peerEnv = "DKVEHICLED_CONTROL_TEST_PEER_SOCKET"

func TestMain(m *testing.M) {
	if path := os.Getenv(peerEnv); path != "" {
		os.Exit(peerClient(path))
	}
	os.Exit(m.Run())
}

// peerReport is what the re-executed client saw.
type peerReport struct {
	DialErr    string     `json:"dial_err,omitempty"`
	NotAllowed bool       `json:"not_allowed,omitempty"` // the Dial error is ErrNotAllowed
	Err        *Error     `json:"err,omitempty"`
	OtherErr   string     `json:"other_err,omitempty"`
	Echo       echoResult `json:"echo"`
}

// peerClient runs in the re-executed test binary: it calls "echo" and
// prints a peerReport.
func peerClient(path string) int {
	var rep peerReport
	c, err := Dial(path)
	if err != nil {
		rep.DialErr, rep.NotAllowed = err.Error(), errors.Is(err, ErrNotAllowed)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		err := c.Call(ctx, "echo", nil, &rep.Echo)
		cancel()
		if e, ok := errors.AsType[*Error](err); ok {
			rep.Err = e
		} else if err != nil {
			rep.OtherErr = err.Error()
		}
		c.Close()
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs clients as other users and needs root, as in CI")
	}
	bin := publicCopyOfTestBinary(t)
	notAllowed := "uid 65534 is not allowed to use dkvehicled's control socket"

	for _, tc := range []struct {
		name       string
		cfg        ServerConfig
		cred       syscall.Credential
		refusedMsg string // a permission_denied answer, or "" if allowed
	}{
		{"root only", ServerConfig{}, syscall.Credential{Uid: 65534, Gid: 65534}, notAllowed},
		{"other uid and gid listed", ServerConfig{AllowedUIDs: []uint32{1000}, AllowedGIDs: []uint32{4242}},
			syscall.Credential{Uid: 65534, Gid: 65534}, notAllowed},
		{"allowed uid", ServerConfig{AllowedUIDs: []uint32{65534}}, syscall.Credential{Uid: 65534, Gid: 65534}, ""},
		{"allowed gid", ServerConfig{AllowedGIDs: []uint32{4242}}, syscall.Credential{Uid: 65534, Gid: 4242}, ""},
		{"allowed supplementary gid", ServerConfig{AllowedGIDs: []uint32{4242}},
			syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{100, 4242}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHandler()
			tc.cfg.Path = filepath.Join(publicDir(t), "control.sock")
			tc.cfg.Mode = 0o666 // the kernel lets anyone connect; SO_PEERCRED decides
			_, logs := startServer(t, tc.cfg, h)
			rep, pid := runPeer(t, bin, tc.cfg.Path, tc.cred)
			verbs, peers := h.seen()

			if tc.refusedMsg != "" {
				if rep.Err == nil || *rep.Err != (Error{Code: CodePermissionDenied, Message: tc.refusedMsg}) {
					t.Fatalf("refused peer got %+v", rep)
				}
				if len(verbs) != 0 {
					t.Errorf("handler ran %q for a refused peer", verbs)
				}
				log := logs.String()
				if !strings.Contains(log, "peer_uid=65534") || !strings.Contains(log, "code=permission_denied") || !strings.Contains(log, fmt.Sprintf("peer_pid=%d", pid)) {
					t.Errorf("refusal not logged:\n%s", log)
				}
				return
			}
			if rep.Err != nil || rep.DialErr != "" || rep.OtherErr != "" {
				t.Fatalf("allowed peer got %+v", rep)
			}
			want := Peer{PID: uint32(pid), UID: tc.cred.Uid, GID: tc.cred.Gid}
			if rep.Echo.Peer != want || len(peers) != 1 || peers[0] != want {
				t.Errorf("handler saw peer %+v (client was told %+v), want %+v", peers, rep.Echo.Peer, want)
			}
		})
	}

	t.Run("socket file not accessible", func(t *testing.T) {
		path := filepath.Join(publicDir(t), "control.sock")
		startServer(t, ServerConfig{Path: path}, newFakeHandler()) // root:root 0660
		rep, _ := runPeer(t, bin, path, syscall.Credential{Uid: 65534, Gid: 65534})
		want := "permission denied on " + path + ": your user is not allowed to use dkvehicled (see the socket's group)"
		if rep.DialErr != want || !rep.NotAllowed {
			t.Fatalf("Dial as nobody: %+v, want error %q", rep, want)
		}
	})
}

// runPeer runs the test binary as another user, connecting to path.
func runPeer(t *testing.T, bin, path string, cred syscall.Credential) (peerReport, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctxT(t), bin)
	// GORACE: a race-enabled binary otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), peerEnv+"="+path, "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &cred}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("peer client: %v\n%s", err, stderr.Bytes())
	}
	var rep peerReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("peer client output %q: %v\n%s", stdout.Bytes(), err, stderr.Bytes())
	}
	return rep, cmd.Process.Pid
}

// publicDir is a temporary directory other users may enter.
func publicDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// publicCopyOfTestBinary copies the test binary where other users may run
// it (go test builds it in a directory only its owner may enter).
func publicCopyOfTestBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(publicDir(t), "control.test")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}
