package transaction

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/securechannel"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// failure ends a transaction with CONTROL FLOW failure and a reason.
type failure struct {
	reason wire.Reason
	detail string
}

func (f *failure) Error() string { return f.detail }

func fail(r wire.Reason, format string, a ...any) error {
	return &failure{reason: r, detail: fmt.Sprintf(format, a...)}
}

// transportError is a failure of the reader or of the card's presence: no
// CONTROL FLOW is sent, the phone is gone.
type transportError struct{ err error }

func (t *transportError) Error() string { return t.err.Error() }
func (t *transportError) Unwrap() error { return t.err }

// errNoApplet ends a tap whose card answered SELECT with an error status.
var errNoApplet = errors.New("SELECT refused")

// run is the state of one transaction.
type run struct {
	e     *Engine
	t     apdu.Transceiver
	ctx   context.Context // the caller's
	apdu  *apduContext    // each exchange's deadline
	end   time.Time       // the transaction's deadline
	req   Request
	o     *Outcome
	now   time.Time
	mark  time.Time
	tr    keys.Transcript
	eph   *ephemeral
	cands []*keystore.Candidate
	crypt []byte
	ch    *securechannel.Channel
	// session keys a fast-path channel not opened yet: a door tap on the
	// fast path exchanges nothing protected.
	session *keys.SessionKeys
	// kp is a Kpersistent from AUTH1 not yet written (see flushKp).
	kp    secret.Bytes
	ep    *keystore.Endpoint
	first *firstUse
	step  *Step
}

// firstUse is an AUTH1 that named an issued, unbound slot: the endpoint is
// authenticated only once its attestation checks out (PROTOCOL.md 3.8).
type firstUse struct {
	slot      *keystore.Slot
	signature []byte
	tbs       []byte
	kp        []byte
}

// Run runs one transaction with the card behind t. The returned Outcome says
// whether to actuate; Run never actuates anything itself.
func (e *Engine) Run(ctx context.Context, t apdu.Transceiver, req Request) *Outcome {
	start := time.Now()
	o := &Outcome{Result: ResultError, Path: PathNone, Action: policy.ActionAt(req.Role, req.Locked), Phases: make([]Phase, 0, 8)}
	r := &run{e: e, t: t, ctx: ctx, apdu: newAPDUContext(ctx), end: start.Add(e.cfg.Timeouts.Transaction), req: req, o: o, now: e.cfg.Now(), mark: start}
	defer r.apdu.release()
	err := r.do()
	r.finish(err)
	o.Total = time.Since(start)
	if !e.log.Enabled(ctx, slog.LevelDebug) {
		return o
	}
	e.log.Debug("transaction", "role", req.Role, "result", o.Result, "path", o.Path, "key_id", keyIDAttr(o.KeyID),
		"reason", o.Reason.String(), "detail", o.Detail, "ms", float64(o.Total.Microseconds())/1000)
	return o
}

func keyIDAttr(k *keys.KeyID) string {
	if k == nil {
		return ""
	}
	return k.String()
}

func (r *run) do() error {
	if err := r.selectApplet(); err != nil {
		return err
	}
	if err := r.auth0(); err != nil {
		return err
	}
	matched, err := r.fast()
	if err != nil {
		return err
	}
	if !matched {
		if err := r.auth1(); err != nil {
			return err
		}
	}
	return r.afterAuth()
}

// phase closes the running phase under name.
func (r *run) phase(name string) {
	now := time.Now()
	d := now.Sub(r.mark)
	r.mark = now
	for i := range r.o.Phases {
		if r.o.Phases[i].Name == name {
			r.o.Phases[i].Duration += d
			return
		}
	}
	r.o.Phases = append(r.o.Phases, Phase{Name: name, Duration: d})
}

func (r *run) trace(command string) *Step {
	if r.e.cfg.Trace == nil {
		r.step = nil
		return nil
	}
	r.step = &Step{Command: command}
	return r.step
}

func (r *run) emit() {
	if r.step != nil {
		r.e.cfg.Trace(*r.step)
		r.step = nil
	}
}

func (r *run) traceChannel(ch *securechannel.Channel) {
	if r.e.cfg.Trace == nil {
		return
	}
	ch.Trace = func(t securechannel.Trace) {
		if r.step != nil {
			r.step.Channels = append(r.step.Channels, t)
		}
	}
}

// transmit sends one command under its own timeout, cut short by the
// transaction's.
func (r *run) transmit(c apdu.Command, timeout time.Duration) (apdu.Response, error) {
	d := time.Now().Add(timeout)
	if r.end.Before(d) {
		d = r.end
	}
	r.apdu.arm(d)
	resp, err := apdu.Transmit(r.apdu, r.t, c)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && r.ctx.Err() == nil {
			return resp, fail(wire.ReasonTimeout, "no answer to %02X %02X within %v", c.CLA, c.INS, timeout)
		}
		return resp, &transportError{err: err}
	}
	return resp, nil
}

// transmitBounded is transmit for AUTH0 and AUTH1, whose answer must come
// within bound (when it is set): from the command sent to its answer
// received, a relay between the phone and the reader adds time.
func (r *run) transmitBounded(name string, c apdu.Command, bound time.Duration) (apdu.Response, error) {
	start := time.Now()
	resp, err := r.transmit(c, r.e.cfg.Timeouts.APDU)
	if took := time.Since(start); err == nil && bound > 0 && took > bound {
		return resp, fail(wire.ReasonTimeout, "%s answered in %s ms, over the %s ms bound: possible relay", name, millis(took), millis(bound))
	}
	return resp, err
}

// millis writes d in milliseconds, to the nearest 10 µs.
func millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Round(10*time.Microsecond))/float64(time.Millisecond), 'f', -1, 64)
}

func (r *run) selectApplet() error {
	v := r.e.cfg.Vehicle
	if st := r.trace("SELECT"); st != nil {
		defer r.emit()
	}
	resp, err := r.transmit(apdu.Command{CLA: wire.CLAISO, INS: wire.INSSelect, P1: wire.P1SelectName, Data: v.Profile.AppletAID, Ne: 256}, r.e.cfg.Timeouts.APDU)
	r.phase("select")
	if err != nil {
		return err
	}
	if !resp.OK() {
		return fmt.Errorf("%w: status %04X", errNoApplet, resp.SW)
	}
	if r.req.Disabled {
		return fail(wire.ReasonDisabled, "digital key disabled (vehicle-wide or at this reader)")
	}
	list, vs, err := parseSelect(resp.Data)
	if err != nil {
		return fail(wire.ReasonProtocol, "SELECT response: %v", err)
	}
	r.tr = keys.Transcript{Profile: v.Profile, EndpointVersions: list}
	found := false
	for _, x := range vs {
		if v.Profile.Supports(x) {
			r.tr.Version, found = x, true
			break
		}
	}
	if !found {
		return fail(wire.ReasonProtocol, "no applet version in common")
	}
	if r.step != nil {
		r.step.EndpointVersions, r.step.SelectedVersion = list, r.tr.Version
	}
	return nil
}

func (r *run) auth0() error {
	v := r.e.cfg.Vehicle
	eph, err := r.e.takeEphemeral()
	if err != nil {
		return fail(wire.ReasonProtocol, "vehicle randomness: %v", err)
	}
	r.eph = eph
	r.tr.VehicleEPK = eph.sk.PublicKey().Bytes()
	r.tr.TxID = eph.txid
	r.tr.P1, r.tr.P2 = wire.P1Standard, r.req.Role.TransactionCode()
	if r.req.Role == policy.RoleDoor {
		if r.cands = r.e.cfg.Store.FastCandidates(); len(r.cands) > 0 {
			r.tr.P1 = wire.P1Fast
		}
	}
	data := apdu.EncodeTLV(wire.TagVersions, r.tr.Version.Bytes())
	data = apdu.AppendTLV(data, wire.TagVehicleEPK, r.tr.VehicleEPK)
	data = apdu.AppendTLV(data, wire.TagTxID, r.tr.TxID)
	data = apdu.AppendTLV(data, wire.TagVehicleID, v.Identifier)
	st := r.trace("AUTH0")
	if st != nil {
		st.VehicleESK, st.VehicleEPK, st.TxID, st.P1, st.P2 = eph.sk.Bytes(), r.tr.VehicleEPK, r.tr.TxID, r.tr.P1, r.tr.P2
		defer r.emit()
	}
	resp, err := r.transmitBounded("AUTH0", apdu.Command{CLA: wire.CLAProp, INS: wire.INSAuth0, P1: r.tr.P1, P2: r.tr.P2, Data: data, Ne: 256}, r.e.cfg.Bounds.AUTH0)
	r.phase("auth0")
	if err != nil {
		return err
	}
	if !resp.OK() {
		return fail(wire.ReasonProtocol, "AUTH0 answered %04X", resp.SW)
	}
	epk, crypt, err := parseAuth0(resp.Data, r.tr.P1 == wire.P1Fast)
	if err != nil {
		return fail(wire.ReasonProtocol, "AUTH0 response: %v", err)
	}
	r.tr.EndpointEPK, r.crypt = epk, crypt
	if st != nil {
		st.EndpointEPK, st.Cryptogram = epk, r.crypt
		if r.tr.P1 == wire.P1Standard {
			st.Ignored9D = ignored9D(resp.Data)
		}
	}
	return nil
}

// ignored9D lists the 9D values an endpoint sent in answer to P1 = 00 (for
// the trace only: the transaction skips them as unknown tags).
func ignored9D(b []byte) [][]byte {
	elems, _ := apdu.ParseTLV(b)
	var out [][]byte
	for _, e := range elems {
		if e.Tag == wire.TagCryptogram {
			out = append(out, e.Value)
		}
	}
	return out
}

// fast tries every candidate's Kpersistent against the cryptogram, most
// recently used first, and opens the secure channel on a match.
func (r *run) fast() (bool, error) {
	if r.crypt == nil {
		return false, nil
	}
	v := r.e.cfg.Vehicle
	st := r.trace("FAST")
	buf := r.tr.FastInfoPrefix(r.e.vehPK, v.Identifier)
	n := len(buf)
	var match *keystore.Candidate
	var session keys.SessionKeys
	r.e.fastMu.Lock()
	for _, c := range r.cands {
		buf = r.tr.AppendFastInfo(buf[:n], c.PublicKey)
		fk := r.e.fastKeyFor(c)
		exp := fk.Cryptogram(buf)
		ok := subtle.ConstantTimeCompare(exp[:], r.crypt) == 1
		if st != nil {
			st.FastTried = append(st.FastTried, FastTry{KeyID: c.KeyID, Info: append([]byte(nil), buf...), OKM: fk.OKM(buf), Expected: exp[:], Match: ok})
		}
		if ok {
			match, session = c, keys.SessionFromOKM(fk.OKM(buf))
			break
		}
	}
	r.e.pruneFastKeys(r.cands)
	r.e.fastMu.Unlock()
	r.phase("fast")
	if st != nil {
		if match != nil {
			st.FastSession = &session
		}
		r.emit()
	}
	if match == nil {
		return false, nil
	}
	r.o.Path = PathFast
	r.session = &session // the channel opens at the first EXCHANGE, if any
	// The candidate carries the record as last committed; afterAuth checks
	// it again inside the store transaction that records the tap.
	ep := match.Endpoint
	r.identify(ep)
	if ep.State != keystore.StateActive {
		return false, fail(wire.ReasonKeyNotValid, "key %s is %s", ep.KeyID, ep.State)
	}
	return true, nil
}

// pruneFastKeys forgets prepared keys of endpoints that are no longer
// candidates, once they clearly outnumber the candidates. Callers hold fastMu.
func (e *Engine) pruneFastKeys(cands []*keystore.Candidate) {
	if len(e.fastKeys) <= 2*len(cands)+16 {
		return
	}
	keep := make(map[keys.KeyID]*fastKey, len(cands))
	for _, c := range cands {
		if fk, ok := e.fastKeys[c.KeyID]; ok {
			keep[c.KeyID] = fk
		}
	}
	e.fastKeys = keep
}

func (r *run) identify(ep *keystore.Endpoint) {
	r.ep = ep
	id := ep.KeyID
	r.o.KeyID, r.o.SlotID, r.o.Role, r.o.FriendlyName = &id, ep.SlotID, string(ep.Role), ep.FriendlyName
}

func (r *run) auth1() error {
	v := r.e.cfg.Vehicle
	if r.o.Path == PathNone {
		r.o.Path = PathStandard
	}
	st := r.trace("AUTH1")
	epk, _ := keys.ParsePoint(r.tr.EndpointEPK)
	z, err := keys.ECDH(r.eph.sk, epk)
	if err != nil {
		return fail(wire.ReasonProtocol, "ECDH: %v", err)
	}
	kdh := keys.X963(z, r.tr.TxID)
	session, kp := r.tr.DeriveStandard(kdh)
	vtbs := keys.TBS(v.Identifier, r.tr.EndpointEPK, r.tr.VehicleEPK, r.tr.TxID, wire.UsageVehicle)
	sig, err := keys.Sign(v.Key, vtbs)
	if err != nil {
		return fail(wire.ReasonProtocol, "signing AUTH1: %v", err)
	}
	ch, err := securechannel.New(session, 0)
	if err != nil {
		return fail(wire.ReasonProtocol, "AUTH1 session: %v", err)
	}
	r.ch = ch
	r.traceChannel(ch)
	if st != nil {
		st.Z, st.Kdh, st.Session, st.Kpersistent = z, kdh, session, kp
		st.InfoVolatile, st.InfoPersistent = r.tr.StandardInfo(wire.LabelVolatile), r.tr.StandardInfo(wire.LabelPersistent)
		st.VehicleTBS, st.VehicleSignature = vtbs, sig
		defer r.emit()
	}
	resp, err := r.transmitBounded("AUTH1", apdu.Command{CLA: wire.CLAProp, INS: wire.INSAuth1, Data: apdu.EncodeTLV(wire.TagSignature, sig), Ne: 256}, r.e.cfg.Bounds.AUTH1)
	r.phase("auth1")
	if err != nil {
		return err
	}
	if !resp.OK() {
		return fail(wire.ReasonProtocol, "AUTH1 answered %04X", resp.SW)
	}
	plain, err := ch.UnwrapResponse(resp.Data)
	if err != nil {
		return fail(wire.ReasonProtocol, "AUTH1 response: %v", err)
	}
	if st != nil {
		st.ResponsePlaintext = plain
	}
	ident, esig, err := parseAuth1(plain)
	if err != nil {
		return fail(wire.ReasonProtocol, "AUTH1 response: %v", err)
	}
	etbs := keys.TBS(v.Identifier, r.tr.EndpointEPK, r.tr.VehicleEPK, r.tr.TxID, wire.UsageEndpoint)
	if st != nil {
		st.Identifier, st.EndpointSignature, st.EndpointTBS = ident, esig, etbs
	}
	return r.authenticate(ident, esig, etbs, kp)
}

// authenticate looks up the key AUTH1 named and verifies its signature. An
// issued, unbound slot defers to friend first use.
func (r *run) authenticate(ident, sig, tbs []byte, kp []byte) error {
	var ep *keystore.Endpoint
	var slot *keystore.Slot
	err := r.e.cfg.Store.View(func(tx *keystore.Tx) (err error) {
		if r.e.cfg.Vehicle.Profile.EndpointIDIn4E {
			ep, err = tx.EndpointByPrefix(ident)
			return err
		}
		if slot, err = tx.Slot(ident); err != nil {
			return err
		}
		if slot.BoundEndpoint == nil {
			return nil
		}
		ep, err = tx.Endpoint(*slot.BoundEndpoint)
		return err
	})
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return fail(wire.ReasonUnknownKey, "AUTH1 names unknown %x", ident)
	case err != nil:
		return fail(wire.ReasonProtocol, "store: %v", err)
	case ep == nil && slot.State == keystore.SlotIssued:
		r.o.Path, r.o.SlotID = PathFriendFirstUse, slot.ID
		r.first = &firstUse{slot: slot, signature: sig, tbs: tbs, kp: kp}
		return nil
	case ep == nil:
		return fail(wire.ReasonUnknownKey, "slot %x was revoked before any key used it", ident)
	}
	pub, err := keys.ParseVerifyingKey(ep.PublicKey)
	if err != nil || !keys.Verify(pub, tbs, sig) {
		return fail(wire.ReasonUnknownKey, "endpoint signature does not verify for slot %x", ident)
	}
	r.identify(ep)
	if ep.State != keystore.StateActive || (slot != nil && slot.State == keystore.SlotRevoked) {
		return fail(wire.ReasonKeyNotValid, "key %s is %s", ep.KeyID, ep.State)
	}
	// Kpersistent is written with the next store write of this tap: before
	// any EXCHANGE, with the last-use time on success, or alone at the end.
	r.kp = kp
	return nil
}

// flushKp writes a pending Kpersistent, if the key is still active.
func (r *run) flushKp() error {
	if r.kp == nil {
		return nil
	}
	err := r.e.cfg.Store.Update(func(tx *keystore.Tx) error {
		cur, err := tx.Endpoint(r.ep.KeyID)
		if err != nil {
			return err
		}
		if cur.State != keystore.StateActive {
			return fail(wire.ReasonKeyNotValid, "key %s is %s", cur.KeyID, cur.State)
		}
		cur.Kpersistent = r.kp
		r.ep = cur
		return tx.PutEndpoint(cur)
	})
	r.kp = nil
	r.phase("store")
	return storeErr(err)
}

// storeErr passes failures through and turns store errors into a protocol
// failure: nothing is actuated when the vehicle cannot record the tap.
func storeErr(err error) error {
	var f *failure
	if err == nil || errors.As(err, &f) {
		return err
	}
	return fail(wire.ReasonProtocol, "store: %v", err)
}

// finish sends CONTROL FLOW and fills in the outcome.
func (r *run) finish(err error) {
	o := r.o
	if ferr := r.flushKp(); ferr != nil {
		r.e.log.Warn("storing Kpersistent", "key_id", r.ep.KeyID, "err", ferr)
	}
	var f *failure
	var te *transportError
	switch {
	case err == nil:
		o.Result, o.Reason = ResultAllowed, wire.ReasonNone
		r.controlFlow(true, wire.ReasonNone)
		return
	case errors.Is(err, errNoApplet):
		o.Result, o.Detail, o.Err = ResultNoKey, err.Error(), fmt.Errorf("%w: %v", ErrNoApplet, err)
		return
	case errors.As(err, &te):
		o.Result, o.Detail, o.Err = ResultError, "phone left or reader failed: "+te.Error(), te.err
		if !errors.Is(te.err, ErrCardGone) {
			o.Err = fmt.Errorf("%w: %w", ErrCardGone, te.err)
		}
		return
	case errors.As(err, &f):
		o.Reason, o.Detail = f.reason, f.detail
		o.Err = fmt.Errorf("%w: %s", reasonErr[f.reason], f.detail)
	default:
		o.Reason, o.Detail = wire.ReasonProtocol, err.Error()
		o.Err = fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	o.Result = ResultDenied
	if o.Reason == wire.ReasonProtocol || o.Reason == wire.ReasonTimeout {
		o.Result = ResultError
	}
	r.controlFlow(false, o.Reason)
}

// controlFlow sends CONTROL FLOW once, with its own timeout even when the
// transaction's has run out; its answer changes nothing.
func (r *run) controlFlow(success bool, reason wire.Reason) {
	st := r.trace("CONTROL FLOW")
	c := wire.ControlFlow(success, reason)
	r.o.ControlFlow = c
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), r.e.cfg.Timeouts.APDU)
	defer cancel()
	_, _ = r.t.Transceive(ctx, c)
	r.phase("control_flow")
	if st != nil {
		st.P1, st.P2 = c[2], c[3]
		r.emit()
	}
}
