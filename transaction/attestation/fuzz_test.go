package attestation

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func FuzzParse(f *testing.F) {
	// The package of ccc_friend_first_use.json and variations of its header.
	pkg, _ := hex.DecodeString(samplePackage)
	f.Add(pkg)
	f.Add(pkg[:100])
	f.Add(append(append([]byte{}, pkg...), 0))
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := Parse(der)
		if err != nil {
			return
		}
		// Whatever parses is exactly the DER of its content.
		tbs, err := p.FriendKey.Marshal()
		if err != nil {
			t.Fatalf("parsed package does not marshal: %v", err)
		}
		if !bytes.Equal(tbs, p.TBS) {
			t.Fatalf("FriendKey re-encodes differently:\n%x\n%x", tbs, p.TBS)
		}
	})
}
