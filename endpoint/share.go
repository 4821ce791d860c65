package endpoint

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/transaction/attestation"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Share is what an owner's phone sends to a friend's phone when it shares a
// key offline (PROTOCOL.md 3.10): the vehicle's identity, a slot identifier
// and its immobilizer token moved out of the owner's mailboxes, and the
// attestation package the owner signed.
type Share struct {
	VehicleIdentifier []byte
	VehiclePK         []byte
	SlotIdentifier    []byte
	Token             secret.Bytes
	Package           []byte // AttestationPackage DER
	// MovedEntry is the owner's mailbox entry the slot came from.
	MovedEntry int
}

// Invitation is what the friend's phone gives the owner: the public key it
// made for the vehicle.
type Invitation struct {
	VehicleIdentifier []byte
	PublicKey         []byte
}

// ShareTerms are the owner's choices for a friend's key.
type ShareTerms struct {
	Profile      int
	NotBefore    time.Time
	NotAfter     time.Time
	FriendlyName string
}

// ErrNoFreeEntry reports an owner with no valid entry left to share.
var ErrNoFreeEntry = errors.New("endpoint: no slot entry left to share (tap the dashboard reader to refill)")

// Invite makes a new key for a vehicle on this (friend's) phone, drawn from
// the phone's randomness, and returns the invitation for the owner. The key
// is installed when the share arrives (Accept).
func (p *Phone) Invite(vehicleID []byte) (*Invitation, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sk, err := keys.NewSigningKey(p.Rand)
	if err != nil {
		return nil, err
	}
	priv, conf := p.NewMailboxes()
	k := &Key{VehicleIdentifier: vehicleID, SK: sk, Role: RoleFriend, Private: priv, Confidential: conf}
	p.pending = append(p.pending, k)
	return &Invitation{VehicleIdentifier: vehicleID, PublicKey: k.PK()}, nil
}

// Share signs a friend's key offline on the owner's phone: it moves the lowest
// valid entry of 1 to 7 (slot identifier and token) out of the mailboxes,
// clears its SlotIdentBmp bit and sets SigBmp bit 0 so the next dashboard tap
// refills it.
func (p *Phone) Share(inv *Invitation, t ShareTerms) (*Share, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keyFor(inv.VehicleIdentifier)
	if k == nil || k.Role != RoleOwner {
		return nil, errors.New("endpoint: this phone holds no owner key for that vehicle")
	}
	l := p.Layout
	bmp := k.Private[wire.OffsetSlotIdentBmp]
	entry := -1
	for i := 1; i < wire.Entries; i++ {
		if bmp&(1<<i) != 0 {
			entry = i
			break
		}
	}
	if entry < 0 {
		return nil, ErrNoFreeEntry
	}
	slotOff, tokOff := l.SlotEntry(entry), l.TokenEntry(entry)
	slot := append([]byte(nil), k.Private[slotOff:slotOff+l.SlotIDLen]...)
	token := append([]byte(nil), k.Confidential[tokOff:tokOff+l.TokenLen]...)
	pkg, err := attestation.Sign(k.SK, attestation.FriendKey{
		VehicleIdentifier: k.VehicleIdentifier, FriendPublicKey: inv.PublicKey, SlotIdentifier: slot,
		Profile: t.Profile, NotBefore: t.NotBefore, NotAfter: t.NotAfter, FriendlyName: t.FriendlyName,
		OwnerKeyID: k.KeyID(),
	})
	if err != nil {
		return nil, err
	}
	if len(pkg) > l.AttestationLen {
		return nil, fmt.Errorf("endpoint: attestation package of %d bytes does not fit the %d-byte area", len(pkg), l.AttestationLen)
	}
	clear(k.Private[slotOff : slotOff+l.SlotIDLen])
	clear(k.Confidential[tokOff : tokOff+l.TokenLen])
	k.Private[wire.OffsetSlotIdentBmp] = bmp &^ (1 << entry)
	k.Private[wire.OffsetSigBmp] |= wire.SigRefill
	return &Share{
		VehicleIdentifier: k.VehicleIdentifier, VehiclePK: k.VehiclePK, SlotIdentifier: slot,
		Token: token, Package: pkg, MovedEntry: entry,
	}, nil
}

// Accept installs a shared key on the friend's phone: the key made by Invite,
// with SigBmp 08, SlotIdentBmp 01, the slot in entry 0, the token in
// confidential entry 0 and the package in the attestation area.
func (p *Phone) Accept(s *Share) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var k *Key
	for i, c := range p.pending {
		if string(c.VehicleIdentifier) == string(s.VehicleIdentifier) {
			k = c
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
			break
		}
	}
	if k == nil {
		return errors.New("endpoint: no invitation pending for that vehicle")
	}
	l := p.Layout
	k.VehiclePK = s.VehiclePK
	k.Private[wire.OffsetSigBmp] = wire.SigAttestation
	k.Private[wire.OffsetSlotIdentBmp] = 0x01
	copy(k.Private[l.SlotEntry(0):], s.SlotIdentifier)
	copy(k.Private[l.Attestation():], s.Package)
	copy(k.Confidential[l.TokenEntry(0):], s.Token)
	for i, o := range p.keys {
		if string(o.VehicleIdentifier) == string(k.VehicleIdentifier) {
			p.keys[i] = k
			return nil
		}
	}
	p.keys = append(p.keys, k)
	return nil
}

// NewOwnerKey makes this phone's owner key for a vehicle, drawn from the
// phone's randomness, with its mailboxes as key creation leaves them
// (PROTOCOL.md 6.3): SigBmp 01, SlotIdentBmp 01 and the owner's slot in entry
// 0, so that the first dashboard tap provisions slots and tokens.
func (p *Phone) NewOwnerKey(vehicleID, vehiclePK, authorizedPK, ownerSlot []byte) (*Key, error) {
	sk, err := keys.NewSigningKey(p.Rand)
	if err != nil {
		return nil, err
	}
	return p.InstallOwnerKey(vehicleID, vehiclePK, authorizedPK, ownerSlot, sk), nil
}

// InstallOwnerKey installs an owner key whose private key already exists.
func (p *Phone) InstallOwnerKey(vehicleID, vehiclePK, authorizedPK, ownerSlot []byte, sk *ecdsa.PrivateKey) *Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.installOwnerKey(vehicleID, vehiclePK, authorizedPK, ownerSlot, sk)
}

// installOwnerKey is InstallOwnerKey for callers holding the lock.
func (p *Phone) installOwnerKey(vehicleID, vehiclePK, authorizedPK, ownerSlot []byte, sk *ecdsa.PrivateKey) *Key {
	priv, conf := p.NewMailboxes()
	priv[wire.OffsetSigBmp] = wire.SigRefill
	priv[wire.OffsetSlotIdentBmp] = 0x01
	copy(priv[p.Layout.SlotEntry(0):], ownerSlot)
	k := &Key{VehicleIdentifier: vehicleID, VehiclePK: vehiclePK, SK: sk, Role: RoleOwner, AuthorizedPK: authorizedPK, Private: priv, Confidential: conf}
	for i, o := range p.keys {
		if string(o.VehicleIdentifier) == string(vehicleID) {
			p.keys[i] = k
			return k
		}
	}
	p.keys = append(p.keys, k)
	return k
}

// AcceptEnrolment installs the key made by Invite as this phone's owner key
// for the vehicle, after the vehicle enrolled its public key directly (a bench
// tool; owner pairing does the same through the framework). The mailboxes
// are left as key creation leaves them, so the first dashboard tap
// provisions slots and delivers the owner's immobilizer token.
func (p *Phone) AcceptEnrolment(vehicleID, vehiclePK, authorizedPK, ownerSlot []byte) (*Key, error) {
	if _, err := keys.ParsePoint(vehiclePK); err != nil {
		return nil, fmt.Errorf("endpoint: the vehicle's public key: %w", err)
	}
	p.mu.Lock()
	var sk *ecdsa.PrivateKey
	for i, c := range p.pending {
		if string(c.VehicleIdentifier) == string(vehicleID) {
			sk = c.SK
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	if sk == nil {
		return nil, errors.New("endpoint: no key was made for that vehicle (run Invite first)")
	}
	return p.InstallOwnerKey(vehicleID, vehiclePK, authorizedPK, ownerSlot, sk), nil
}
