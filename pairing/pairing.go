// Package pairing is the vehicle side of owner pairing (PROTOCOL.md 6): on
// the dashboard reader in pairing mode, it selects the Digital Key framework,
// runs SPAKE2+ with the verifier the OEM gave the vehicle, opens the secure
// channel, sends the key creation data, checks the phone's certificate chain
// and creation signature, and stores the new owner in the same store
// transaction that deletes the verifier. A phone that is not ready for
// pairing gets an ordinary transaction instead (the caller runs it).
package pairing

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/enrol"
	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing/message"
	"github.com/dkvehicled/dkvehicled/pairing/spake2plus"
	"github.com/dkvehicled/dkvehicled/reader"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/securechannel"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// MaxAttempts is the number of pairing attempts a new verifier allows.
const MaxAttempts = 7

// Vehicle is what pairing needs to know about the vehicle.
type Vehicle struct {
	Identifier []byte
	// Versions are the vehicle's applet versions (5C).
	Versions []wire.Version
	Layout   wire.Layout
	// Brand is the 2-byte vehicle brand code (D6).
	Brand []byte
	// Certificate is the vehicle certificate (DER); Intermediate the
	// optional vehicle OEM intermediate (DER or nil).
	Certificate  []byte
	Intermediate []byte
	// Root is the vehicle OEM root: the trust anchor of the phone's chain,
	// and authorized_PK for the phone.
	Root         *x509.Certificate
	OwnerProfile int
	OwnerName    string
}

// Config wires a Pairer.
type Config struct {
	Vehicle  Vehicle
	Store    *keystore.Store
	Rand     io.Reader
	Now      func() time.Time
	Timeouts transaction.Timeouts
	Logger   *slog.Logger
	// Trace, when set, receives the intermediates once the pairing ends
	// (tests only).
	Trace func(*Trace)
}

// Trace holds the intermediates of one pairing, for tests against the vectors.
type Trace struct {
	Ready             byte
	Y                 secret.Bytes
	Context           []byte
	Spake             *spake2plus.Result
	SystemKeys        secret.Bytes // Kenc‖Kmac‖Krmac‖LTSS
	KeyCreation       []byte
	OwnerSlot         []byte
	OwnerToken        secret.Bytes
	WriteChannel      []securechannel.Trace
	GetChannel        []securechannel.Trace
	GetTimeout        time.Duration
	Created           []byte // GET DATA's plaintext
	EndpointPK        []byte
	CreationSignInput []byte
}

// Pairer runs pairings. It is safe for concurrent use.
type Pairer struct {
	cfg     Config
	rootPK  []byte
	log     *slog.Logger
	context []byte
}

// New checks the configuration.
func New(cfg Config) (*Pairer, error) {
	v := cfg.Vehicle
	if v.Root == nil || len(v.Certificate) == 0 {
		return nil, errors.New("pairing: the vehicle certificate and the vehicle OEM root are required")
	}
	if len(v.Brand) != 2 || len(v.Versions) == 0 {
		return nil, errors.New("pairing: a 2-byte brand and the applet versions are required")
	}
	if cfg.Store == nil || cfg.Rand == nil || cfg.Now == nil {
		return nil, errors.New("pairing: store, randomness and clock are required")
	}
	if cfg.Timeouts == (transaction.Timeouts{}) {
		cfg.Timeouts = transaction.DefaultTimeouts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pk, err := ecdsaPoint(v.Root)
	if err != nil {
		return nil, err
	}
	ctx := append(append([]byte(nil), wire.PairingContextLabel...), apdu.EncodeTLV(wire.TagSpakeVersion, wire.FrameworkVersion.Bytes())...)
	ctx = apdu.AppendTLV(ctx, wire.TagVersions, wire.EncodeVersions(v.Versions))
	return &Pairer{cfg: cfg, rootPK: pk, log: cfg.Logger, context: ctx}, nil
}

// Result classifies a pairing's end.
type Result string

// Results.
const (
	Paired   Result = "paired"   // the phone is the new owner
	Failed   Result = "failed"   // refused (OP CONTROL FLOW failure sent)
	Error    Result = "error"    // the phone left or the reader failed
	Fallback Result = "fallback" // no pairing: run an ordinary transaction
)

// Outcome is the end of one pairing attempt.
type Outcome struct {
	Result Result
	// Fallback says why an ordinary transaction follows:
	// "framework_absent" or "framework_not_ready".
	Fallback    string
	KeyID       *keys.KeyID
	Reason      wire.Reason
	Detail      string
	Err         error
	ControlFlow []byte
	Phases      []transaction.Phase
	Total       time.Duration
}

// failure ends a pairing with OP CONTROL FLOW failure and a reason.
type failure struct {
	reason wire.Reason
	detail string
}

func (f *failure) Error() string { return f.detail }

func fail(r wire.Reason, format string, a ...any) error {
	return &failure{reason: r, detail: fmt.Sprintf(format, a...)}
}

type fallback string

func (f fallback) Error() string { return string(f) }

// run is one pairing.
type run struct {
	p     *Pairer
	t     apdu.Transceiver
	ctx   context.Context
	end   time.Time
	now   time.Time
	mark  time.Time
	o     *Outcome
	trace *Trace
	ch    *securechannel.Channel
}

// Run runs one pairing attempt with the card behind t.
func (p *Pairer) Run(ctx context.Context, t apdu.Transceiver) *Outcome {
	start := time.Now()
	r := &run{p: p, t: t, ctx: ctx, end: start.Add(p.cfg.Timeouts.Transaction), now: p.cfg.Now(), mark: start,
		o: &Outcome{Result: Error}, trace: &Trace{}}
	err := r.do()
	r.finish(err)
	r.o.Total = time.Since(start)
	if p.cfg.Trace != nil {
		p.cfg.Trace(r.trace)
	}
	return r.o
}

func (r *run) phase(name string) {
	now := time.Now()
	r.o.Phases = append(r.o.Phases, transaction.Phase{Name: name, Duration: now.Sub(r.mark)})
	r.mark = now
}

// transportError is a failure of the card's presence or of the reader.
type transportError struct{ err error }

func (t *transportError) Error() string { return t.err.Error() }
func (t *transportError) Unwrap() error { return t.err }

func (r *run) transmit(c apdu.Command, timeout time.Duration) (apdu.Response, error) {
	d := time.Now().Add(timeout)
	if r.end.Before(d) {
		d = r.end
	}
	ctx, cancel := context.WithDeadline(r.ctx, d)
	defer cancel()
	resp, err := apdu.Transmit(ctx, r.t, c)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && r.ctx.Err() == nil {
			return resp, fail(wire.ReasonTimeout, "no answer to %02X %02X within %v", c.CLA, c.INS, timeout)
		}
		return resp, &transportError{err: err}
	}
	return resp, nil
}

func (r *run) do() error {
	v := r.p.cfg.Vehicle
	to := r.p.cfg.Timeouts
	resp, err := r.transmit(apdu.Command{CLA: wire.CLAISO, INS: wire.INSSelect, P1: wire.P1SelectName, Data: wire.FrameworkAID, Ne: 256}, to.APDU)
	r.phase("select_framework")
	if err != nil {
		return err
	}
	if !resp.OK() {
		return fallback("framework_absent")
	}
	sel, err := message.ParseSelect(resp.Data)
	if err != nil {
		return fail(wire.ReasonProtocol, "framework SELECT: %v", err)
	}
	r.trace.Ready = sel.Ready
	if sel.Ready != wire.PairingReady {
		return fallback("framework_not_ready")
	}
	if !containsVersion(sel.FrameworkVersions, wire.FrameworkVersion) {
		return fail(wire.ReasonNoVersion, "the framework does not offer version %s", wire.FrameworkVersion)
	}
	appletVersions, _ := wire.DecodeVersions(sel.AppletVersions)
	common := false
	for _, x := range appletVersions {
		common = common || containsVersion(v.Versions, x)
	}
	if !common {
		return fail(wire.ReasonNoVersion, "no applet version in common")
	}

	// The attempt is counted before SPAKE2+ REQUEST goes out.
	var ver *keystore.Verifier
	err = r.p.cfg.Store.Update(func(tx *keystore.Tx) (err error) {
		if ver, err = tx.Verifier(); err != nil {
			return err
		}
		if ver == nil {
			return fail(wire.ReasonNoVerifier, "no pairing verifier stored")
		}
		if ver.AttemptsLeft <= 0 {
			return fail(wire.ReasonNoVerifier, "no pairing attempts left (a new verifier resets them)")
		}
		ver.AttemptsLeft--
		return tx.PutVerifier(ver)
	})
	r.phase("store")
	if err := storeErr(err); err != nil {
		return err
	}
	req := message.Request{Version: wire.FrameworkVersion, AppletVersions: wire.EncodeVersions(v.Versions),
		Scrypt: message.Scrypt{Salt: ver.Salt, N: ver.N, R: ver.R, P: ver.P}, Brand: v.Brand}
	resp, err = r.transmit(apdu.Command{CLA: wire.CLAProp, INS: wire.INSSpakeRequest, Data: req.Encode(), Ne: 256}, to.APDU)
	r.phase("spake2plus_request")
	if err != nil {
		return err
	}
	if !resp.OK() {
		return fail(wire.ReasonProtocol, "SPAKE2+ REQUEST answered %04X", resp.SW)
	}
	x, err := message.ParseShareX(resp.Data)
	if err != nil {
		return fail(wire.ReasonProtocol, "SPAKE2+ REQUEST answer: %v", err)
	}
	y, err := spake2plus.DrawScalar(r.p.cfg.Rand)
	if err != nil {
		return fail(wire.ReasonProtocol, "vehicle randomness: %v", err)
	}
	r.trace.Y, r.trace.Context = y, r.p.context
	verifier, err := spake2plus.NewVerifier(spake2plus.Params{Context: r.p.context, MAC: spake2plus.CMAC}, ver.W0.Expose(), ver.L.Expose(), y)
	if err != nil {
		return fail(wire.ReasonProtocol, "stored verifier: %v", err)
	}
	res, err := verifier.Finish(x)
	if err != nil {
		return fail(wire.ReasonBadPoint, "the phone's share: %v", err)
	}
	r.trace.Spake = res
	vmsg := message.Verify{ShareY: verifier.Share(), ConfirmV: res.ConfirmV}
	resp, err = r.transmit(apdu.Command{CLA: wire.CLAProp, INS: wire.INSSpakeVerify, Data: vmsg.Encode(), Ne: 256}, to.APDU)
	r.phase("spake2plus_verify")
	if err != nil {
		return err
	}
	if !resp.OK() {
		return fail(wire.ReasonConfirmation, "SPAKE2+ VERIFY answered %04X (wrong password?)", resp.SW)
	}
	confirmP, err := message.ParseConfirmP(resp.Data)
	if err != nil {
		return fail(wire.ReasonProtocol, "SPAKE2+ VERIFY answer: %v", err)
	}
	if err := res.CheckConfirmP(confirmP); err != nil {
		return fail(wire.ReasonConfirmation, "the phone's confirmation does not match")
	}

	sys, err := hkdf.Key(sha256.New, res.KShared, nil, string(wire.LabelSystemKeys), 64)
	if err != nil {
		return fail(wire.ReasonProtocol, "system keys: %v", err)
	}
	r.trace.SystemKeys = sys
	ltss := secret.Bytes(sys[48:64])
	if r.ch, err = securechannel.New(keys.SessionKeys{Enc: sys[0:16], Mac: sys[16:32], Rmac: sys[32:48]}, 1); err != nil {
		return fail(wire.ReasonProtocol, "secure channel: %v", err)
	}
	slot, token, err := r.drawSlot()
	if err != nil {
		return err
	}
	kc := message.KeyCreation{
		VehicleIdentifier: v.Identifier, VehicleCert: v.Certificate, Intermediate: v.Intermediate, AuthorizedPK: r.p.rootPK,
		OwnerSlot: slot, AppletVersions: wire.EncodeVersions(v.Versions), Layout: v.Layout,
	}
	kcData := kc.Encode()
	r.trace.KeyCreation, r.trace.OwnerSlot, r.trace.OwnerToken = kcData, slot, token
	r.ch.Trace = func(t securechannel.Trace) { r.trace.WriteChannel = append(r.trace.WriteChannel, t) }
	protected, err := r.ch.WrapCommand(kcData)
	if err != nil {
		return fail(wire.ReasonProtocol, "WRITE DATA: %v", err)
	}
	resp, err = r.transmit(apdu.Command{CLA: wire.CLASecure, INS: wire.INSWriteData, Data: protected, Ne: 256}, to.APDU)
	r.phase("write_data")
	if err != nil {
		return err
	}
	if !resp.OK() {
		return fail(wire.ReasonProtocol, "WRITE DATA answered %04X", resp.SW)
	}
	if p, err := r.ch.UnwrapResponse(resp.Data); err != nil || len(p) != 0 {
		return fail(wire.ReasonProtocol, "WRITE DATA answer: %v", errOr(err, "carries data"))
	}

	r.ch.Trace = func(t securechannel.Trace) { r.trace.GetChannel = append(r.trace.GetChannel, t) }
	mac, err := r.ch.WrapCommand(nil)
	if err != nil {
		return fail(wire.ReasonProtocol, "GET DATA: %v", err)
	}
	r.trace.GetTimeout = to.Long
	resp, err = r.transmit(apdu.Command{CLA: wire.CLASecure, INS: wire.INSGetData, P1: wire.GetDataP1, P2: wire.GetDataP2, Data: mac, Ne: 256}, to.Long)
	r.phase("get_data")
	if err != nil {
		return err
	}
	if !resp.OK() {
		return fail(wire.ReasonProtocol, "GET DATA answered %04X", resp.SW)
	}
	plain, err := r.ch.UnwrapResponse(resp.Data)
	if err != nil {
		return fail(wire.ReasonProtocol, "GET DATA answer: %v", err)
	}
	r.trace.Created = plain
	created, err := message.ParseCreated(plain)
	if err != nil {
		return fail(wire.ReasonProtocol, "GET DATA answer: %v", err)
	}
	pub, err := checkChain(v.Root, created, r.now)
	if err != nil {
		return fail(wire.ReasonChainRejected, "%v", err)
	}
	epk := keys.EncodePoint(pub)
	input := append(append([]byte(nil), kcData...), epk...)
	r.trace.EndpointPK, r.trace.CreationSignInput = epk, input
	if !keys.Verify(pub, input, created.Signature) {
		return fail(wire.ReasonChainRejected, "the creation signature does not verify")
	}
	r.phase("checks")

	id := keys.KeyIDOf(epk)
	err = r.p.cfg.Store.Update(func(tx *keystore.Tx) error {
		if err := tx.DeleteVerifier(); err != nil {
			return err
		}
		_, err := enrol.Owner(tx, r.p.cfg.Rand, r.now, v.Layout, enrol.OwnerRecord{
			PublicKey: epk, Profile: v.OwnerProfile, FriendlyName: v.OwnerName, LTSS: ltss, SlotID: slot, Token: token,
		})
		return err
	})
	r.phase("store")
	if err := storeErr(err); err != nil {
		return err
	}
	r.o.KeyID = &id
	return nil
}

// drawSlot draws the owner's slot identifier (one the store does not know)
// and immobilizer token.
func (r *run) drawSlot() ([]byte, secret.Bytes, error) {
	l := r.p.cfg.Vehicle.Layout
	slot := make([]byte, l.SlotIDLen)
	for {
		if _, err := io.ReadFull(r.p.cfg.Rand, slot); err != nil {
			return nil, nil, fail(wire.ReasonProtocol, "vehicle randomness: %v", err)
		}
		var err error
		if e := r.p.cfg.Store.View(func(tx *keystore.Tx) error { _, err = tx.Slot(slot); return nil }); e != nil {
			return nil, nil, storeErr(e)
		}
		if errors.Is(err, keystore.ErrNotFound) {
			break
		}
	}
	token := make([]byte, l.TokenLen)
	if _, err := io.ReadFull(r.p.cfg.Rand, token); err != nil {
		return nil, nil, fail(wire.ReasonProtocol, "vehicle randomness: %v", err)
	}
	return slot, token, nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func containsVersion(vs []wire.Version, v wire.Version) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// storeErr passes failures through and makes store errors a protocol
// failure: no owner is stored when the store cannot be written.
func storeErr(err error) error {
	var f *failure
	if err == nil || errors.As(err, &f) {
		return err
	}
	return fail(wire.ReasonProtocol, "store: %v", err)
}

// finish sends OP CONTROL FLOW and fills in the outcome.
func (r *run) finish(err error) {
	o := r.o
	var f *failure
	var te *transportError
	var fb fallback
	switch {
	case err == nil:
		o.Result = Paired
		if err := r.controlFlow(true, wire.ReasonNone); err != nil {
			// The owner is stored; the phone installs its key only on this
			// command, so it may have none. A new verifier and pairing
			// replace this owner.
			o.Detail = "owner stored, but OP CONTROL FLOW did not reach the phone (" + err.Error() + "): if the phone shows no key, pair it again with a new verifier"
			if errors.Is(err, reader.ErrCardGone) {
				o.Err = err
			}
		}
		return
	case errors.As(err, &fb):
		o.Result, o.Fallback, o.Detail = Fallback, string(fb), string(fb)
		return
	case errors.As(err, &te):
		o.Result, o.Detail = Error, "phone left or reader failed: "+te.Error()
		o.Err = fmt.Errorf("%w: %w", reader.ErrCardGone, te.err)
		return
	case errors.As(err, &f):
		o.Reason, o.Detail = f.reason, f.detail
	default:
		o.Reason, o.Detail = wire.ReasonProtocol, err.Error()
	}
	o.Result = Failed
	o.Err = fmt.Errorf("pairing refused (%s): %s", o.Reason, o.Detail)
	_ = r.controlFlow(false, o.Reason) // refused either way
}

// controlFlow sends OP CONTROL FLOW; it reports whether the phone answered.
func (r *run) controlFlow(success bool, reason wire.Reason) error {
	c := wire.ControlFlow(success, reason)
	r.o.ControlFlow = c
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), r.p.cfg.Timeouts.APDU)
	defer cancel()
	_, err := r.t.Transceive(ctx, c)
	r.phase("control_flow")
	return err
}
