package policy

import (
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

func TestDecide(t *testing.T) {
	ps, err := NewProfiles(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	win := Key{Profile: 2, Active: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	cases := []struct {
		name   string
		k      Key
		a      Action
		at     time.Time
		allow  bool
		reason wire.Reason
		limit  int
	}{
		{"owner unlocks", Key{Profile: 0, Active: true}, ActionUnlock, now, true, wire.ReasonNone, 0},
		{"owner starts", Key{Profile: 0, Active: true}, ActionEngineStart, now, true, wire.ReasonNone, 0},
		{"access only locks", Key{Profile: 1, Active: true}, ActionLock, now, true, wire.ReasonNone, 0},
		{"access only cannot start", Key{Profile: 1, Active: true}, ActionEngineStart, now, false, wire.ReasonNotPermitted, 0},
		{"restricted starts with limit", Key{Profile: 3, Active: true}, ActionEngineStart, now, true, wire.ReasonNone, 80},
		{"restricted unlocks without limit", Key{Profile: 3, Active: true}, ActionUnlock, now, true, wire.ReasonNone, 0},
		{"suspended", Key{Profile: 0}, ActionUnlock, now, false, wire.ReasonKeyNotValid, 0},
		{"window start inclusive", win, ActionUnlock, win.NotBefore, true, wire.ReasonNone, 0},
		{"window end inclusive", win, ActionUnlock, win.NotAfter, true, wire.ReasonNone, 0},
		{"before window", win, ActionUnlock, win.NotBefore.Add(-time.Second), false, wire.ReasonKeyNotValid, 0},
		{"after window", win, ActionUnlock, win.NotAfter.Add(time.Second), false, wire.ReasonKeyNotValid, 0},
		{"unknown profile", Key{Profile: 9, Active: true}, ActionUnlock, now, false, wire.ReasonNotPermitted, 0},
		{"window before profile", Key{Profile: 9, Active: true, NotAfter: now.Add(-time.Second)}, ActionUnlock, now, false, wire.ReasonKeyNotValid, 0},
	}
	for _, c := range cases {
		d := Decide(ps, c.k, c.a, c.at)
		if d.Allowed != c.allow || d.Reason != c.reason || d.SpeedLimitKPH != c.limit || (!d.Allowed && d.Detail == "") {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
}

func TestActionAt(t *testing.T) {
	if ActionAt(RoleDoor, true) != ActionUnlock || ActionAt(RoleDoor, false) != ActionLock ||
		ActionAt(RoleDashboard, true) != ActionEngineStart || ActionAt(RoleDashboard, false) != ActionEngineStart {
		t.Fatal("wrong action")
	}
	if RoleDoor.TransactionCode() != 0x01 || RoleDashboard.TransactionCode() != 0x02 {
		t.Fatal("wrong transaction code")
	}
	if _, err := ParseRole("trunk"); err == nil {
		t.Fatal("unknown role accepted")
	}
}

func TestNewProfilesRejects(t *testing.T) {
	for name, ps := range map[string][]Profile{
		"duplicate": {{ID: 1, Name: "a"}, {ID: 1, Name: "b"}},
		"range":     {{ID: 256, Name: "a"}},
		"no name":   {{ID: 1}},
		"limit":     {{ID: 1, Name: "a", SpeedLimitKPH: -1}},
	} {
		if _, err := NewProfiles(ps); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	p, err := NewProfiles([]Profile{{ID: 5, Name: "x"}, {ID: 2, Name: "y"}})
	if err != nil || p.List()[0].ID != 2 {
		t.Fatal("not sorted by id")
	}
}
