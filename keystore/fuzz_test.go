package keystore

import "testing"

// FuzzDecodeRecords feeds arbitrary bytes to the record decoders, as a
// damaged store file would: they return an error or a record, never panic.
func FuzzDecodeRecords(f *testing.F) {
	f.Add([]byte(`{"pk":"BA==","role":"owner","profile":0,"state":"active","name":"x","order":0,"created":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"entry":0,"issued_to":"AAAAAAAAAAAAAAAAAAAAAAAAAAA=","token":"AA==","state":"issued"}`))
	f.Add([]byte(`{`))
	id := make([]byte, 20)
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := decodeEndpoint(id, b); err == nil && e.KeyID != [20]byte(id) {
			t.Fatal("wrong key id")
		}
		if s, err := decodeSlot([]byte{1}, b); err == nil && string(s.ID) != "\x01" {
			t.Fatal("wrong slot id")
		}
	})
}
