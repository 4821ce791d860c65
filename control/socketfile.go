package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// removeStaleSocket clears path for a new listener: nothing there is fine, a
// socket nobody listens on is removed, a live socket or any other kind of
// file is an error.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control: %s exists and is not a socket; remove it or choose another path", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control: another dkvehicled is listening on %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control: checking existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control: removing stale socket: %w", err)
	}
	return nil
}

// setPermissions gives the new socket file its mode, owner and group.
func setPermissions(cfg ServerConfig) error {
	if err := os.Chmod(cfg.Path, cfg.Mode); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if cfg.UID == -1 && cfg.GID == -1 {
		return nil
	}
	if err := os.Chown(cfg.Path, cfg.UID, cfg.GID); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}
