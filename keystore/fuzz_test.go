package keystore

import "testing"

// FuzzDecodeRecords feeds arbitrary bytes to the record decoders, as a
// damaged store file would: they return an error or a record, never panic.
func FuzzDecodeRecords(f *testing.F) {
	ep, _ := encodeEndpoint(&Endpoint{PublicKey: []byte{4, 1}, Role: RoleOwner, State: StateActive, Kpersistent: []byte{1, 2}, FriendlyName: "x"})
	sl, _ := encodeSlot(&Slot{IssuedTo: [20]byte{1}, Token: []byte{9}, State: SlotIssued})
	f.Add(ep)
	f.Add(sl)
	f.Add([]byte{recordFormat})
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
