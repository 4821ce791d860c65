package pcsc

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"ACS ACR122U PICC Interface 00 00", "ACS ACR122U PICC Interface 00 00", true},
		{"ACS ACR122U*", "ACS ACR122U PICC Interface 00 00", true},
		{"ACS ACR122U*", "ACS ACR1252 Dual Reader PICC 00 01", false},
		{"Virtual PCD 00 0?", "Virtual PCD 00 01", true},
		{"Virtual PCD * 01", "Virtual PCD 00 01", true},
		{"Virtual PCD * 01", "Virtual PCD 00 00", false},
		// brackets are a glob class, but an exact name still matches itself
		{"SCM SCR 335 [CCID Interface] 00 00", "SCM SCR 335 [CCID Interface] 00 00", true},
		{"SCM SCR 335 [CCID Interface] 00 00", "SCM SCR 335 C 00 00", true},
		{`SCM SCR 335 \[CCID Interface\] 00 *`, "SCM SCR 335 [CCID Interface] 00 00", true},
		// a malformed glob is only an exact name
		{"Reader [1", "Reader [1", true},
		{"Reader [1", "Reader 1", false},
		{"Virtual PCD 00 00", "Virtual PCD 00 000", false},
	}
	for _, c := range cases {
		if got := Match(c.pattern, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.pattern, c.name, got)
		}
	}
}

func TestPick(t *testing.T) {
	names := []string{"Virtual PCD 00 00", "Virtual PCD 00 01", "Virtual PCD 0*"}
	none := func(string) bool { return false }
	if got, ok := pick("Virtual PCD 0*", names, none); !ok || got != "Virtual PCD 0*" {
		t.Errorf("exact name not preferred: %q", got)
	}
	if got, ok := pick("Virtual PCD 00 0?", names, none); !ok || got != "Virtual PCD 00 00" {
		t.Errorf("first match: %q", got)
	}
	taken := func(n string) bool { return n == "Virtual PCD 00 00" }
	if got, ok := pick("Virtual PCD 00 0?", names, taken); !ok || got != "Virtual PCD 00 01" {
		t.Errorf("taken reader not skipped: %q", got)
	}
	if got, ok := pick("Virtual PCD 00 00", names, taken); ok {
		t.Errorf("taken exact name picked: %q", got)
	}
	if _, ok := pick("ACS*", names, none); ok {
		t.Error("picked a reader that does not match")
	}
}
