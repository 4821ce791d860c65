// Package endpoint is the phone side of the Digital Key applet protocol: a
// simulated phone for tests, the demo and the dkendpoint virtual card. It holds
// one key per vehicle with its mailboxes and Kpersistent, answers SELECT,
// AUTH0, AUTH1, EXCHANGE and CONTROL FLOW exactly as PROTOCOL.md describes,
// shares keys offline as an owner, and can misbehave on purpose (see Faulty).
// It is never linked into the daemon's decision path.
package endpoint

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Role of a key on the phone.
const (
	RoleOwner  = "owner"
	RoleFriend = "friend"
)

// Key is the phone's key for one vehicle.
type Key struct {
	VehicleIdentifier []byte
	VehiclePK         []byte
	SK                *ecdsa.PrivateKey
	Role              string
	Kpersistent       secret.Bytes
	// AuthorizedPK is the vehicle OEM root key received at pairing (owners).
	AuthorizedPK []byte
	Private      []byte // private mailbox
	Confidential []byte // confidential mailbox
}

// PK returns the key's 65-byte public key.
func (k *Key) PK() []byte { return keys.EncodePoint(&k.SK.PublicKey) }

// KeyID returns the key's Digital Key Identifier.
func (k *Key) KeyID() keys.KeyID { return keys.KeyIDOf(k.PK()) }

// Phone is a simulated phone. It is safe for concurrent use; commands are
// processed one at a time.
type Phone struct {
	// Profile is the protocol profile of the applet.
	Profile wire.Profile
	// Versions is the applet's SELECT version list.
	Versions []wire.Version
	// Layout is the mailbox layout.
	Layout wire.Layout
	// Rand is the phone's randomness (ephemeral keys, random cryptograms).
	Rand io.Reader

	mu       sync.Mutex
	keys     []*Key
	pending  []*Key // keys made by Invite, waiting for their share
	pki      *DevicePKI
	password string // the pairing password the owner typed, until it is used
	s        session
}

// New returns a phone with no keys.
func New(p wire.Profile, versions []wire.Version, layout wire.Layout, rand io.Reader) *Phone {
	return &Phone{Profile: p, Versions: versions, Layout: layout, Rand: rand}
}

// AddKey installs a key. A key for the same vehicle replaces the old one.
func (p *Phone) AddKey(k *Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range p.keys {
		if string(o.VehicleIdentifier) == string(k.VehicleIdentifier) {
			p.keys[i] = k
			return
		}
	}
	p.keys = append(p.keys, k)
}

// Key returns the key for a vehicle (nil if none).
func (p *Phone) Key(vehicleID []byte) *Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keyFor(vehicleID)
}

// Keys returns the phone's keys.
func (p *Phone) Keys() []*Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Key(nil), p.keys...)
}

func (p *Phone) keyFor(vehicleID []byte) *Key {
	for _, k := range p.keys {
		if string(k.VehicleIdentifier) == string(vehicleID) {
			return k
		}
	}
	return nil
}

// NewMailboxes returns empty mailboxes of the phone's layout.
func (p *Phone) NewMailboxes() (private, confidential []byte) {
	return make([]byte, p.Layout.PrivateLen()), make([]byte, p.Layout.ConfidentialLen())
}

// Reset is the field going away: the session ends and nothing of it remains.
func (p *Phone) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.s = session{}
}

// ErrNoResponse is what Transceive returns for a command it cannot parse at
// all; a real card would not answer either.
var ErrNoResponse = errors.New("endpoint: no response")

// Transceive processes one raw command APDU, as the phone's NFC stack would:
// command chaining (CLA bit 10) is collected, responses longer than 256 bytes
// are handed out with 61 xx and GET RESPONSE, and a trailing Le is optional.
func (p *Phone) Transceive(_ context.Context, raw []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := apdu.ParseCommand(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoResponse, err)
	}
	if c.INS == wire.INSGetResp && c.CLA == wire.CLAISO {
		return p.getResponse(c), nil
	}
	p.s.pendingOut = nil
	if c.CLA&0x10 != 0 {
		p.s.chained = append(p.s.chained, c.Data...)
		return apdu.Status(apdu.SWOK), nil
	}
	if p.s.chained != nil {
		c.Data = append(p.s.chained, c.Data...)
		p.s.chained = nil
	}
	r := p.process(c)
	return p.respond(r), nil
}

func (p *Phone) respond(r apdu.Response) []byte {
	if len(r.Data) <= 256 {
		return r.Bytes()
	}
	p.s.pendingOut = r.Data[256:]
	p.s.pendingSW = r.SW
	return apdu.Response{Data: r.Data[:256], SW: 0x6100 | uint16(min(len(p.s.pendingOut), 256)&0xFF)}.Bytes()
}

func (p *Phone) getResponse(c apdu.Command) []byte {
	if p.s.pendingOut == nil {
		return apdu.Status(apdu.SWConditionsNotSatis)
	}
	n := min(c.Ne, len(p.s.pendingOut))
	part := p.s.pendingOut[:n]
	p.s.pendingOut = p.s.pendingOut[n:]
	if len(p.s.pendingOut) == 0 {
		p.s.pendingOut = nil
		return apdu.Response{Data: part, SW: p.s.pendingSW}.Bytes()
	}
	return apdu.Response{Data: part, SW: 0x6100 | uint16(min(len(p.s.pendingOut), 256)&0xFF)}.Bytes()
}
