package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestNeverRendered(t *testing.T) {
	s := Bytes{0xde, 0xad, 0xbe, 0xef}
	type holder struct{ K Bytes }
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%x %X %v %+v %#v %s %q", s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v", holder{s}, &holder{s}),
	}
	j, err := json.Marshal(holder{s})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "k", s)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "k", s)
	outs = append(outs, buf.String())
	for _, o := range outs {
		if strings.Contains(strings.ToLower(o), "dead") || strings.Contains(o, "222 173") {
			t.Errorf("secret leaked: %s", o)
		}
		if !strings.Contains(o, Redacted) {
			t.Errorf("no placeholder in %q", o)
		}
	}
}

func TestEqual(t *testing.T) {
	a, b := Bytes{1, 2, 3}, Bytes{1, 2, 3}
	if !a.Equal(b) || a.Equal(Bytes{1, 2, 4}) || a.Equal(Bytes{1, 2}) {
		t.Fatal("Equal wrong")
	}
	c := a.Clone()
	c[0] = 9
	if a[0] != 1 || Bytes(nil).Clone() != nil {
		t.Fatal("Clone shares memory or invents bytes")
	}
}
