package pcsc

import (
	"testing"
	"time"
)

func TestHealthCountsFailuresAndRecoveries(t *testing.T) {
	clock := time.Unix(1000, 0)
	s := newHealth(func() time.Time { return clock })
	if h := s.get(); h.OK || h.Errors != 0 || h.Detail != "starting" {
		t.Fatalf("start: %+v", h)
	}

	clock = clock.Add(time.Second)
	if s.ok("ready: R", "ACR122U207", true) {
		t.Fatal("first start counted as a recovery")
	}
	if h := s.get(); !h.OK || h.Since != clock || h.Firmware != "ACR122U207" || !h.ECP || h.Recoveries != 0 {
		t.Fatalf("ready: %+v", h)
	}

	clock = clock.Add(time.Second)
	failedAt := clock
	if !s.fail("pcscd stopped") {
		t.Fatal("first failure not counted")
	}
	clock = clock.Add(time.Second)
	if s.fail("pcscd is not running") {
		t.Fatal("a retry while still failing counted as a new error")
	}
	if h := s.get(); h.OK || h.Errors != 1 || h.Detail != "pcscd is not running" || h.ECP || h.Since != failedAt {
		t.Fatalf("failed: %+v", h)
	}

	clock = clock.Add(time.Second)
	if !s.ok("ready: R", "", false) {
		t.Fatal("recovery not reported")
	}
	s.fail("reader went away")
	s.ok("ready: R", "", false)
	if h := s.get(); !h.OK || h.Errors != 2 || h.Recoveries != 2 {
		t.Fatalf("after two outages: %+v", h)
	}
}

func TestHealthFailureBeforeFirstStart(t *testing.T) {
	s := newHealth(time.Now)
	s.fail("pcscd is not running")
	if !s.ok("ready", "", false) {
		t.Fatal("coming up after a failed start is a recovery")
	}
	if h := s.get(); h.Errors != 1 || h.Recoveries != 1 {
		t.Fatalf("%+v", h)
	}
}

func TestHealthNoECP(t *testing.T) {
	s := newHealth(time.Now)
	s.ok("ready", "", true)
	s.noECP()
	if h := s.get(); !h.OK || h.ECP {
		t.Fatalf("%+v", h)
	}
}
