// Package transaction is the vehicle side of one tap (PROTOCOL.md 3): SELECT
// with version choice, AUTH0, the fast path over every stored Kpersistent,
// AUTH1 with mutual authentication, the secure channel and EXCHANGE, friend
// first use, owner slot and token provisioning, the immobilizer token check
// at engine start, and CONTROL FLOW. It does no I/O of its own: it runs over
// an apdu.Transceiver with injected randomness and clock, and returns an
// Outcome the daemon actuates on only when it says Allowed.
package transaction

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Vehicle is the vehicle's identity and configuration as the protocol sees it.
type Vehicle struct {
	Profile    wire.Profile
	Identifier []byte
	Key        *ecdsa.PrivateKey
	Layout     wire.Layout
	Profiles   *policy.Profiles
}

// Timeouts of PROTOCOL.md 7.
type Timeouts struct {
	APDU        time.Duration // each exchange (500 ms)
	Long        time.Duration // attestation reads (1000 ms)
	Transaction time.Duration // the whole transaction (2 s)
}

// DefaultTimeouts are the timeouts of PROTOCOL.md 7.
var DefaultTimeouts = Timeouts{APDU: 500 * time.Millisecond, Long: time.Second, Transaction: 2 * time.Second}

// ResponseBounds are the longest the phone may take to answer AUTH0 and
// AUTH1, from sending the command to receiving its whole answer: a relay
// between the phone and the reader adds time there (docs/relay.md). A later
// answer ends the transaction with CONTROL FLOW failure 07. Zero leaves a
// command unbounded (the APDU timeout still applies).
type ResponseBounds struct {
	AUTH0 time.Duration
	AUTH1 time.Duration
}

// Config wires an Engine.
type Config struct {
	Vehicle  Vehicle
	Store    *keystore.Store
	Rand     io.Reader
	Now      func() time.Time
	Timeouts Timeouts
	// Bounds, when set, refuse answers to AUTH0 and AUTH1 that come too late.
	Bounds ResponseBounds
	Logger *slog.Logger
	// Trace, when set, receives every step's intermediates (tests only).
	Trace func(Step)
}

// Engine runs transactions. One Engine serves every reader; it is safe for
// concurrent use, and the store serializes writes.
type Engine struct {
	cfg      Config
	vehPK    []byte
	log      *slog.Logger
	fastMu   sync.Mutex
	fastKeys map[keys.KeyID]*fastKey
	prepMu   sync.Mutex
	prepared *ephemeral
}

type fastKey struct {
	kp  []byte // the Kpersistent the prepared key was made from
	key *keys.FastKey
}

type ephemeral struct {
	sk   *ecdh.PrivateKey
	txid []byte
}

// New validates the configuration and returns an Engine.
func New(cfg Config) (*Engine, error) {
	v := cfg.Vehicle
	switch {
	case v.Key == nil:
		return nil, errors.New("transaction: no vehicle key")
	case len(v.Identifier) != v.Profile.IdentifierLen:
		return nil, fmt.Errorf("transaction: vehicle identifier of %d bytes, profile %s wants %d", len(v.Identifier), v.Profile.Name, v.Profile.IdentifierLen)
	case v.Profiles == nil:
		return nil, errors.New("transaction: no access profiles")
	case cfg.Store == nil || cfg.Rand == nil || cfg.Now == nil:
		return nil, errors.New("transaction: store, randomness and clock are required")
	}
	if err := v.Layout.Validate(); err != nil {
		return nil, fmt.Errorf("transaction: %w", err)
	}
	if cfg.Timeouts == (Timeouts{}) {
		cfg.Timeouts = DefaultTimeouts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, vehPK: keys.EncodePoint(&v.Key.PublicKey), log: cfg.Logger, fastKeys: map[keys.KeyID]*fastKey{}}, nil
}

// VehiclePK returns the vehicle's 65-byte public key.
func (e *Engine) VehiclePK() []byte { return e.vehPK }

// Prepare draws the ephemeral key and transaction identifier of the next
// transaction ahead of time (PROTOCOL.md 3.2 allows it), so a tap does not
// wait for key generation. Each prepared pair is used once.
func (e *Engine) Prepare() error {
	eph, err := e.draw()
	if err != nil {
		return err
	}
	e.prepMu.Lock()
	e.prepared = eph
	e.prepMu.Unlock()
	return nil
}

func (e *Engine) takeEphemeral() (*ephemeral, error) {
	e.prepMu.Lock()
	eph := e.prepared
	e.prepared = nil
	e.prepMu.Unlock()
	if eph != nil {
		return eph, nil
	}
	return e.draw()
}

func (e *Engine) draw() (*ephemeral, error) {
	sk, err := keys.NewEphemeral(e.cfg.Rand)
	if err != nil {
		return nil, err
	}
	txid := make([]byte, wire.TxIDLen)
	if _, err := io.ReadFull(e.cfg.Rand, txid); err != nil {
		return nil, fmt.Errorf("drawing a transaction identifier: %w", err)
	}
	return &ephemeral{sk: sk, txid: txid}, nil
}

// fastKeyFor returns the prepared fast-path key of a candidate, building it
// when the candidate is new or its Kpersistent changed. Callers hold fastMu.
func (e *Engine) fastKeyFor(c *keystore.Candidate) *keys.FastKey {
	fk := e.fastKeys[c.KeyID]
	if fk == nil || !c.Kpersistent.Equal(fk.kp) {
		fk = &fastKey{kp: c.Kpersistent.Clone(), key: keys.NewFastKey(c.Kpersistent)}
		e.fastKeys[c.KeyID] = fk
	}
	return fk.key
}
