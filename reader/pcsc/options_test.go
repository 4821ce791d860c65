package pcsc

import (
	"bytes"
	"testing"
)

func TestOptionsDefaults(t *testing.T) {
	frame := []byte{0x6A, 0x02, 0xC3, 0x02, 0x01, 0x01, 0x00, 0x00}
	o, err := Options{Reader: "ACS ACR122U*", ECPFrame: frame}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "ACS ACR122U*" || o.RetryInterval != DefaultRetryInterval || o.ECPInterval != DefaultECPInterval || o.Logger == nil {
		t.Fatalf("%+v", o)
	}
	frame[0] = 0
	if o.ECPFrame[0] != 0x6A {
		t.Fatal("ECPFrame shares the caller's slice")
	}
	if o, _ := (Options{Name: "door", Reader: "x"}).withDefaults(); o.Name != "door" || o.ECPFrame != nil {
		t.Fatalf("%+v", o)
	}
}

func TestOptionsRejected(t *testing.T) {
	for name, o := range map[string]Options{
		"no reader":        {},
		"empty ECP frame":  {Reader: "x", ECPFrame: []byte{}},
		"long ECP frame":   {Reader: "x", ECPFrame: bytes.Repeat([]byte{1}, 254)},
		"negative retry":   {Reader: "x", RetryInterval: -1},
		"negative ECP gap": {Reader: "x", ECPInterval: -1},
	} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := (Options{Reader: "x", ECPFrame: bytes.Repeat([]byte{1}, 253)}).withDefaults(); err != nil {
		t.Errorf("253-byte frame: %v", err)
	}
}
