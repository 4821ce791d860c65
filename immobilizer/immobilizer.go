// Package immobilizer manages slot identifiers and their immobilizer tokens
// (PROTOCOL.md 2, 3.9 and 3.10): it issues fresh ones to the owner, binds a
// slot to the friend who first uses it, checks the token a phone presents at
// engine start, and revokes keys and slots.
package immobilizer

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// Errors a caller can test with errors.Is.
var (
	ErrNotIssued = errors.New("immobilizer: slot is not an issued, unbound slot")
	ErrNotOwners = errors.New("immobilizer: slot was not issued to this owner")
)

// NewToken draws a token of n bytes.
func NewToken(r io.Reader, n int) ([]byte, error) {
	t := make([]byte, n)
	if _, err := io.ReadFull(r, t); err != nil {
		return nil, fmt.Errorf("immobilizer: drawing a token: %w", err)
	}
	return t, nil
}

// Issue draws a fresh slot identifier of idLen bytes (one the store has never
// used) and a token of tokenLen bytes, and records the slot as issued to owner
// for mailbox entry. The identifier is drawn before the token.
func Issue(tx *keystore.Tx, r io.Reader, idLen, tokenLen int, owner keys.KeyID, entry int) (*keystore.Slot, error) {
	id := make([]byte, idLen)
	for {
		if _, err := io.ReadFull(r, id); err != nil {
			return nil, fmt.Errorf("immobilizer: drawing a slot identifier: %w", err)
		}
		if _, err := tx.Slot(id); errors.Is(err, keystore.ErrNotFound) {
			break
		} else if err != nil {
			return nil, err
		}
	}
	tok, err := NewToken(r, tokenLen)
	if err != nil {
		return nil, err
	}
	s := &keystore.Slot{ID: id, Entry: entry, IssuedTo: owner, Token: tok, State: keystore.SlotIssued}
	return s, tx.PutSlot(s)
}

// Bind binds an issued slot of owner to the friend's endpoint.
func Bind(tx *keystore.Tx, s *keystore.Slot, owner, friend keys.KeyID) error {
	if s.State != keystore.SlotIssued || s.BoundEndpoint != nil {
		return fmt.Errorf("%w: %x is %s", ErrNotIssued, s.ID, s.State)
	}
	if s.IssuedTo != owner {
		return fmt.Errorf("%w: %x", ErrNotOwners, s.ID)
	}
	s.BoundEndpoint = &friend
	s.State = keystore.SlotBound
	return tx.PutSlot(s)
}

// Check compares the token a phone presented with the slot's, in constant time.
func Check(s *keystore.Slot, presented []byte) bool {
	return len(presented) == len(s.Token) && subtle.ConstantTimeCompare(presented, s.Token.Expose()) == 1
}

// RevokeEndpoint terminates a key and revokes its slot. The endpoint record
// stays, so its next tap is told the key is not valid and the audit log can
// name it.
func RevokeEndpoint(tx *keystore.Tx, id keys.KeyID) error {
	e, err := tx.Endpoint(id)
	if err != nil {
		return err
	}
	e.State = keystore.StateTerminated
	if err := tx.PutEndpoint(e); err != nil {
		return err
	}
	if e.SlotID == nil {
		return nil
	}
	s, err := tx.Slot(e.SlotID)
	if err != nil {
		return err
	}
	s.State = keystore.SlotRevoked
	return tx.PutSlot(s)
}

// RevokeSlot revokes an issued slot that no friend has used yet; a tap naming
// it afterwards finds an unknown key. Bound slots are revoked with their key
// (RevokeEndpoint).
func RevokeSlot(tx *keystore.Tx, id []byte) error {
	s, err := tx.Slot(id)
	if err != nil {
		return err
	}
	if s.State != keystore.SlotIssued {
		return fmt.Errorf("%w: %x is %s (revoke its key instead)", ErrNotIssued, id, s.State)
	}
	s.State = keystore.SlotRevoked
	return tx.PutSlot(s)
}

// RevokeUnbound revokes every slot issued to owner that no friend has bound.
func RevokeUnbound(tx *keystore.Tx, owner keys.KeyID) error {
	slots, err := tx.Slots()
	if err != nil {
		return err
	}
	for _, s := range slots {
		if s.IssuedTo == owner && s.State == keystore.SlotIssued {
			s.State = keystore.SlotRevoked
			if err := tx.PutSlot(s); err != nil {
				return err
			}
		}
	}
	return nil
}
