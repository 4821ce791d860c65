package daemon

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/hal"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/pairing"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/reader"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Owner pairing (PROTOCOL.md 6) in the daemon: pairing mode is a state
// started from the control socket and ended by a pairing, its timeout or a
// cancel; it is not kept across restarts. The verifier and its attempt count
// live in the store.

// defaultPairingTimeout ends pairing mode when the configuration says nothing.
const defaultPairingTimeout = 5 * time.Minute

// maxPairingTimeout bounds the timeout a control client may ask for.
const maxPairingTimeout = time.Hour

// newPairer builds the pairer when the configuration has the vehicle
// certificate and the vehicle OEM root; without them pairing is unavailable.
func (d *Daemon) newPairer() error {
	cfg := d.cfg
	if cfg.Vehicle.Certificate == "" {
		return nil
	}
	root, err := cfg.Certificate(cfg.Vehicle.OEMRoot)
	if err != nil {
		return fmt.Errorf("vehicle OEM root: %w", err)
	}
	cert, err := cfg.Certificate(cfg.Vehicle.Certificate)
	if err != nil {
		return fmt.Errorf("vehicle certificate: %w", err)
	}
	if err := checkVehicleCertificate(cert, root, d.vehPK); err != nil {
		return err
	}
	d.pairer, err = pairing.New(pairing.Config{
		Vehicle: pairing.Vehicle{
			Identifier: d.vehicle.Identifier, Versions: d.vehicle.Profile.Versions, Layout: d.vehicle.Layout,
			Brand: cfg.Brand(), Certificate: cert.Raw, Root: root, OwnerProfile: cfg.Vehicle.OwnerProfile, OwnerName: "owner",
		},
		Store: d.store, Rand: d.rand, Now: d.now, Timeouts: d.timeouts, Logger: d.log,
	})
	return err
}

// pairingMode reports whether pairing mode is on, ending it when its time is
// up (and then publishing that).
func (d *Daemon) pairingMode() bool {
	d.mu.Lock()
	until := d.pairUntil
	expired := !until.IsZero() && !d.now().Before(until)
	if expired {
		d.pairUntil = time.Time{}
	}
	d.mu.Unlock()
	if expired {
		d.emit(control.Event{Type: "pairing", Action: "end", Result: "timeout", Detail: "pairing mode timed out"})
	}
	return !until.IsZero() && !expired
}

// pairingStatus is the state of owner pairing.
func (d *Daemon) pairingStatus() (control.PairingStatus, error) {
	st := control.PairingStatus{Available: d.pairer != nil}
	if d.pairingMode() {
		d.mu.Lock()
		st.Mode, st.Until = true, d.pairUntil
		d.mu.Unlock()
	}
	err := d.store.View(func(tx *keystore.Tx) error {
		v, err := tx.Verifier()
		if v != nil {
			st.Verifier, st.AttemptsLeft = true, v.AttemptsLeft
		}
		return err
	})
	return st, err
}

// pairingVerb answers the pairing.* verbs.
func (d *Daemon) pairingVerb(peer control.Peer, verb string, decode func(any) error) (control.PairingStatus, error) {
	if verb == control.VerbPairingStatus {
		return d.pairingStatus()
	}
	if d.pairer == nil {
		return control.PairingStatus{}, control.Errorf(control.CodeDisabled,
			"owner pairing needs vehicle.certificate and vehicle.oem_root in the configuration (dkpki init makes a bench set)")
	}
	uid := peer.UID
	switch verb {
	case control.VerbPairingVerifier:
		var a control.VerifierArgs
		if err := decode(&a); err != nil {
			return control.PairingStatus{}, err
		}
		v, err := d.verifierOf(a)
		if err != nil {
			return control.PairingStatus{}, err
		}
		if err := d.store.Update(func(tx *keystore.Tx) error { return tx.PutVerifier(v.Keystore(pairing.MaxAttempts)) }); err != nil {
			return control.PairingStatus{}, err
		}
		d.emit(control.Event{Type: "pairing", Action: "verifier", Detail: fmt.Sprintf("new verifier, %d attempts", pairing.MaxAttempts), By: &uid})
	case control.VerbPairingStart:
		var a control.PairingStartArgs
		if err := decode(&a); err != nil {
			return control.PairingStatus{}, err
		}
		timeout := d.cfg.Pairing.Timeout.Or(defaultPairingTimeout)
		if a.TimeoutS < 0 || time.Duration(a.TimeoutS)*time.Second > maxPairingTimeout {
			return control.PairingStatus{}, control.Errorf(control.CodeBadRequest, "timeout_s: between 1 and 3600 (0: the configured default)")
		}
		if a.TimeoutS > 0 {
			timeout = time.Duration(a.TimeoutS) * time.Second
		}
		if !d.hasDashboard() {
			return control.PairingStatus{}, control.Errorf(control.CodeNotPermitted, "pairing runs at a dashboard reader, and none is configured")
		}
		st, err := d.pairingStatus()
		if err != nil {
			return st, err
		}
		if !st.Verifier || st.AttemptsLeft <= 0 {
			return st, control.Errorf(control.CodeNotPermitted, "no usable pairing verifier: give one first (dkctl pairing verifier)")
		}
		d.mu.Lock()
		d.pairUntil = d.now().Add(timeout)
		until := d.pairUntil
		d.mu.Unlock()
		d.emit(control.Event{Type: "pairing", Action: "start", Detail: "until " + until.UTC().Format(time.RFC3339), By: &uid})
	case control.VerbPairingCancel:
		d.mu.Lock()
		was := !d.pairUntil.IsZero()
		d.pairUntil = time.Time{}
		d.mu.Unlock()
		if was {
			d.emit(control.Event{Type: "pairing", Action: "end", Result: "cancelled", By: &uid})
		}
	}
	return d.pairingStatus()
}

// verifierOf reads the verifier of a pairing.verifier request.
func (d *Daemon) verifierOf(a control.VerifierArgs) (*pki.Verifier, error) {
	switch {
	case len(a.File) > 0 && a.Password != "":
		return nil, control.Errorf(control.CodeBadRequest, "give a verifier file or a password, not both")
	case len(a.File) > 0:
		v, err := pki.ParseVerifier([]byte(a.File))
		if err != nil {
			return nil, control.Errorf(control.CodeBadRequest, err.Error())
		}
		return v, nil
	case a.Password != "":
		if !pki.ValidPassword(a.Password) {
			return nil, control.Errorf(control.CodeBadRequest, "a pairing password is 8 decimal digits")
		}
		v, err := pki.NewVerifier(d.rand, a.Password, d.cfg.Pairing.ScryptN)
		if err != nil {
			return nil, fmt.Errorf("deriving the verifier: %w", err)
		}
		return v, nil
	}
	return nil, control.Errorf(control.CodeBadRequest, "give a verifier file or a password")
}

func (d *Daemon) hasDashboard() bool {
	for _, rl := range d.readers {
		if rl.role == policy.RoleDashboard {
			return true
		}
	}
	return false
}

// pairs reports whether a tap at this reader is a pairing attempt: pairing
// mode, a dashboard reader, and the reader's own switch on. The vehicle-wide
// switch does not stop pairing (PROTOCOL.md 6.1); it does stop the ordinary
// transaction a phone not ready for pairing gets.
func (d *Daemon) pairs(rl *readerLoop) bool {
	return d.pairer != nil && rl.role == policy.RoleDashboard && d.readerEnabled(rl.name) && d.pairingMode()
}

// pair runs one pairing attempt. It returns the outcome, or nil when the
// phone is not ready for pairing and an ordinary transaction must follow
// (with the note to add to its event).
func (d *Daemon) pair(ctx context.Context, rl *readerLoop, card reader.Card) (*pairing.Outcome, string) {
	o := d.pairer.Run(ctx, card)
	if o.Result == pairing.Fallback {
		return nil, "pairing mode, but the phone is not ready for pairing (" + o.Fallback + "): ordinary transaction"
	}
	ev := control.Event{Type: "pairing", Reader: rl.name, Role: string(rl.role), Result: string(o.Result), Detail: o.Detail, Total: control.Duration(o.Total)}
	if o.Result != pairing.Paired && o.Reason != wire.ReasonNone {
		ev.Reason = o.Reason.String()
	}
	for _, p := range o.Phases {
		ev.Phases = append(ev.Phases, control.Phase{Name: p.Name, Time: control.Duration(p.Duration)})
	}
	switch o.Result {
	case pairing.Paired:
		ev.KeyID, ev.KeyRole, ev.Action = o.KeyID.String(), string(keystore.RoleOwner), "paired"
		d.mu.Lock()
		d.pairUntil = time.Time{}
		d.mu.Unlock()
		d.feedback(ctx, rl, hal.PatternAllowed)
	case pairing.Failed:
		d.feedback(ctx, rl, hal.PatternDenied)
	default:
		d.feedback(ctx, rl, hal.PatternError)
	}
	if st, err := d.pairingStatus(); err == nil && o.Result != pairing.Paired && st.Mode && st.AttemptsLeft == 0 {
		ev.Detail += "; no pairing attempts left: give a new verifier"
	}
	d.metrics.pairing(string(o.Result))
	d.emit(ev)
	return o, ""
}

// checkVehicleCertificate refuses a vehicle certificate that does not
// certify the vehicle's key or is not signed by the vehicle OEM root: a
// phone would reject every pairing.
func checkVehicleCertificate(cert, root *x509.Certificate, vehPK []byte) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return errors.New("vehicle certificate: not an ECDSA key")
	}
	if pk := keys.EncodePoint(pub); !bytes.Equal(pk, vehPK) {
		return errors.New("vehicle certificate: it certifies another key than the configured vehicle key")
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return fmt.Errorf("vehicle certificate: not signed by the vehicle OEM root: %w", err)
	}
	return nil
}
