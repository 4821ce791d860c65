// Package enrol records an owner's key in the vehicle's store exactly as owner
// pairing leaves it (PROTOCOL.md 6.3): the owner endpoint, its own slot with a
// fresh immobilizer token, and the owner pointer, replacing a previous owner.
// Pairing calls Owner after SPAKE2+ and the certificate checks; the bench
// tool "direct enrolment" calls it with a public key the operator trusts.
package enrol

import (
	"fmt"
	"io"
	"time"

	"github.com/dkvehicled/dkvehicled/immobilizer"
	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// OwnerRecord describes the new owner.
type OwnerRecord struct {
	PublicKey    []byte // 65-byte P-256 point
	Profile      int    // the owner access profile
	FriendlyName string
	LTSS         secret.Bytes // from pairing; nil for direct enrolment
	// SlotID and Token are the owner's own slot and immobilizer token; when
	// nil they are drawn from the randomness (slot first, then token).
	SlotID []byte
	Token  secret.Bytes
}

// Owner stores rec as the vehicle's owner in tx. A previous owner is replaced
// as PROTOCOL.md 6.3 says: its endpoint terminated, its own slot and its
// unbound slots revoked; friends already bound keep working. It returns the
// owner's slot.
func Owner(tx *keystore.Tx, rand io.Reader, now time.Time, l wire.Layout, rec OwnerRecord) (*keystore.Slot, error) {
	if _, err := keys.ParseVerifyingKey(rec.PublicKey); err != nil {
		return nil, fmt.Errorf("enrol: owner key: %w", err)
	}
	id := keys.KeyIDOf(rec.PublicKey)
	if _, err := tx.Endpoint(id); err == nil {
		return nil, fmt.Errorf("enrol: key %s is already stored", id)
	}
	if prev, ok := tx.Owner(); ok {
		if err := immobilizer.RevokeEndpoint(tx, prev); err != nil {
			return nil, fmt.Errorf("enrol: revoking the previous owner: %w", err)
		}
		if err := immobilizer.RevokeUnbound(tx, prev); err != nil {
			return nil, fmt.Errorf("enrol: revoking the previous owner's slots: %w", err)
		}
	}
	var slot *keystore.Slot
	var err error
	if rec.SlotID == nil {
		slot, err = immobilizer.Issue(tx, rand, l.SlotIDLen, l.TokenLen, id, 0)
		if err != nil {
			return nil, err
		}
	} else {
		if _, err := tx.Slot(rec.SlotID); err == nil {
			return nil, fmt.Errorf("enrol: slot %x is already in use", rec.SlotID)
		}
		slot = &keystore.Slot{ID: rec.SlotID, Entry: 0, IssuedTo: id, Token: rec.Token, State: keystore.SlotIssued}
	}
	slot.BoundEndpoint, slot.State = &id, keystore.SlotBound
	if err := tx.PutSlot(slot); err != nil {
		return nil, err
	}
	ep := &keystore.Endpoint{
		KeyID: id, PublicKey: rec.PublicKey, SlotID: slot.ID, Role: keystore.RoleOwner, Profile: rec.Profile,
		State: keystore.StateActive, FriendlyName: rec.FriendlyName, LTSS: rec.LTSS, Created: now,
	}
	if err := tx.PutEndpoint(ep); err != nil {
		return nil, err
	}
	return slot, tx.SetOwner(id)
}
