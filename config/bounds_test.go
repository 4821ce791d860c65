package config

import (
	"strings"
	"testing"
	"time"
)

// TestResponseBounds: timeouts.auth0_max and auth1_max are optional
// durations, positive and below the APDU timeout (configured or default).
func TestResponseBounds(t *testing.T) {
	base := simulatorConfig(t)
	with := func(apdu, bounds string) string {
		return strings.Replace(base, `apdu = "500ms"`, apdu+"\n"+bounds, 1)
	}
	c, err := Parse([]byte(base), dir(t))
	if err != nil || c.Timeouts.Auth0Max != 0 || c.Timeouts.Auth1Max != 0 {
		t.Fatalf("absent bounds: %+v %v", c.Timeouts, err)
	}
	c, err = Parse([]byte(with(`apdu = "500ms"`, "auth0_max = \"40ms\"\nauth1_max = \"60ms\"")), dir(t))
	if err != nil || time.Duration(c.Timeouts.Auth0Max) != 40*time.Millisecond || time.Duration(c.Timeouts.Auth1Max) != 60*time.Millisecond {
		t.Fatalf("bounds: %+v %v", c.Timeouts, err)
	}
	if _, err := Parse([]byte(with(`apdu = "1s"`, `auth1_max = "600ms"`)), dir(t)); err != nil {
		t.Fatalf("a bound under a longer APDU timeout: %v", err)
	}
	if _, err := Parse([]byte(with("", `auth0_max = "0s"`)), dir(t)); err != nil {
		t.Fatalf("a zero bound: %v", err)
	}
	for _, tc := range []struct{ name, edit, want string }{
		{"negative", with(`apdu = "500ms"`, `auth0_max = "-1ms"`), "timeouts.auth0_max: must be positive"},
		{"at the APDU timeout", with(`apdu = "500ms"`, `auth1_max = "500ms"`), "timeouts.auth1_max: 500ms is not below timeouts.apdu (500ms)"},
		{"above the default APDU timeout", with("", `auth0_max = "600ms"`), "timeouts.auth0_max: 600ms is not below timeouts.apdu (500ms)"},
		{"above a shorter APDU timeout", with(`apdu = "100ms"`, `auth1_max = "150ms"`), "timeouts.auth1_max: 150ms is not below timeouts.apdu (100ms)"},
		{"not a duration", with(`apdu = "500ms"`, `auth1_max = "fast"`), "fast"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.edit), dir(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
