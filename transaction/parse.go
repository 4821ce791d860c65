package transaction

import (
	"errors"
	"fmt"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// The parsers of the phone's answers. Each is strict about what the
// transaction needs and skips what it does not know (PROTOCOL.md 1).

// parseSelect returns the endpoint's version list: the raw 5C value and its
// decoded versions.
func parseSelect(data []byte) ([]byte, []wire.Version, error) {
	f, err := apdu.Fields(data, wire.TagVersions)
	if err != nil {
		return nil, nil, err
	}
	list, ok := f[wire.TagVersions]
	if !ok {
		return nil, nil, errors.New("no version list")
	}
	vs, err := wire.DecodeVersions(list)
	return list, vs, err
}

// parseAuth0 returns the endpoint's ephemeral key, validated as a curve
// point, and with fast set the 16-byte cryptogram. A 9D answering a standard
// request is an unknown tag and skipped.
func parseAuth0(data []byte, fast bool) (epk, crypt []byte, err error) {
	known := []uint16{wire.TagEndpointEPK}
	if fast {
		known = append(known, wire.TagCryptogram)
	}
	f, err := apdu.Fields(data, known...)
	if err != nil {
		return nil, nil, err
	}
	epk, ok := f[wire.TagEndpointEPK]
	if !ok {
		return nil, nil, errors.New("no endpoint ephemeral key")
	}
	if _, err := keys.ParsePoint(epk); err != nil {
		return nil, nil, fmt.Errorf("endpoint ephemeral key: %w", err)
	}
	if !fast {
		return epk, nil, nil
	}
	crypt, ok = f[wire.TagCryptogram]
	if !ok || len(crypt) != wire.CryptogramLen {
		return nil, nil, errors.New("fast request answered without a 16-byte cryptogram")
	}
	return epk, crypt, nil
}

// parseAuth1 returns the identifier (4E) and the endpoint signature (9E) of
// the decrypted AUTH1 answer.
func parseAuth1(plain []byte) (ident, sig []byte, err error) {
	f, err := apdu.Fields(plain, wire.TagIdentifier, wire.TagSignature)
	if err != nil {
		return nil, nil, err
	}
	ident, ok1 := f[wire.TagIdentifier]
	sig, ok2 := f[wire.TagSignature]
	if !ok1 || !ok2 || len(sig) != wire.SignatureLen {
		return nil, nil, errors.New("no identifier and 64-byte signature")
	}
	return ident, sig, nil
}
