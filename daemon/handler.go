package daemon

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/enrol"
	"github.com/dkvehicled/dkvehicled/immobilizer"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/transaction/attestation"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// Subscribe implements control.Handler.
func (d *Daemon) Subscribe() control.Subscription { return d.bus.subscribe() }

// Handle implements control.Handler.
func (d *Daemon) Handle(ctx context.Context, peer control.Peer, verb string, args json.RawMessage) (any, error) {
	decode := func(v any) error {
		if len(args) == 0 {
			return nil
		}
		dec := json.NewDecoder(strings.NewReader(string(args)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return control.Errorf(control.CodeBadRequest, "arguments of "+verb+": "+control.JSONProblem(err))
		}
		return nil
	}
	switch verb {
	case control.VerbStatus:
		return d.status()
	case control.VerbVehicle:
		return d.vehicleInfo(), nil
	case control.VerbProfiles:
		var out []control.Profile
		for _, p := range d.vehicle.Profiles.List() {
			out = append(out, control.Profile{ID: p.ID, Name: p.Name, Access: p.Access, Engine: p.Engine, SpeedLimitKPH: p.SpeedLimitKPH})
		}
		return out, nil
	case control.VerbMetrics:
		return control.Metrics{Text: d.metricsText()}, nil
	case control.VerbStoreCheck:
		return d.checkStore()
	case control.VerbKeysList:
		return d.listKeys()
	case control.VerbSlotsList:
		return d.listSlots()
	case control.VerbAudit:
		var a control.AuditArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.audit(a.Limit)
	case control.VerbKeysShow, control.VerbKeysRevoke, control.VerbKeysSuspend, control.VerbKeysResume:
		var a control.KeyArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.keyVerb(peer, verb, a.KeyID)
	case control.VerbKeysRename:
		var a control.RenameArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		if len(a.Name) > attestation.MaxFriendlyName || !utf8.ValidString(a.Name) {
			return nil, control.Errorf(control.CodeBadRequest, fmt.Sprintf("a friendly name is at most %d bytes of UTF-8", attestation.MaxFriendlyName))
		}
		return d.changeKey(peer, "rename", a.KeyID, func(e *keystore.Endpoint) error { e.FriendlyName = a.Name; return nil })
	case control.VerbKeysProfile:
		var a control.ProfileArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		if _, ok := d.vehicle.Profiles.Get(a.Profile); !ok {
			return nil, control.Errorf(control.CodeUnknownKey, fmt.Sprintf("no access profile %d", a.Profile))
		}
		return d.changeKey(peer, "set_profile", a.KeyID, func(e *keystore.Endpoint) error {
			if e.Role != keystore.RoleFriend {
				return control.Errorf(control.CodeNotPermitted, "only a friend key's profile can change")
			}
			e.Profile = a.Profile
			return nil
		})
	case control.VerbKeysWindow:
		var a control.WindowArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		nb, err1 := optTime(a.NotBefore)
		na, err2 := optTime(a.NotAfter)
		if err := errors.Join(err1, err2); err != nil {
			return nil, control.Errorf(control.CodeBadRequest, "times are RFC 3339, e.g. 2026-05-01T08:00:00Z: "+err.Error())
		}
		if !nb.IsZero() && !na.IsZero() && na.Before(nb) {
			return nil, control.Errorf(control.CodeBadRequest, "not_after is before not_before")
		}
		return d.changeKey(peer, "set_window", a.KeyID, func(e *keystore.Endpoint) error {
			if e.Role != keystore.RoleFriend {
				return control.Errorf(control.CodeNotPermitted, "only a friend key's validity window can change")
			}
			e.NotBefore, e.NotAfter = nb, na
			return nil
		})
	case control.VerbSlotsRevoke:
		var a control.SlotArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.revokeSlot(peer, a.Slot)
	case control.VerbDigitalKey:
		var a control.SwitchArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.setSwitch(peer, func(s *keystore.Settings) (string, error) {
			s.DigitalKeyDisabled, s.DisabledReason = !a.Enabled, ""
			if !a.Enabled {
				s.DisabledReason = a.Reason
				return "digital_key_off", nil
			}
			return "digital_key_on", nil
		})
	case control.VerbReaderEnable:
		var a control.ReaderEnableArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		if d.loop(a.Reader) == nil {
			return nil, control.Errorf(control.CodeUnknownKey, "no reader named "+a.Reader)
		}
		return d.setSwitch(peer, func(s *keystore.Settings) (string, error) {
			var keep []string
			for _, n := range s.DisabledReaders {
				if n != a.Reader {
					keep = append(keep, n)
				}
			}
			s.DisabledReaders = keep
			if !a.Enabled {
				s.DisabledReaders = append(s.DisabledReaders, a.Reader)
				return "reader_disabled:" + a.Reader, nil
			}
			return "reader_enabled:" + a.Reader, nil
		})
	}
	if strings.HasPrefix(verb, "pairing.") {
		switch verb {
		case control.VerbPairingVerifier, control.VerbPairingStart, control.VerbPairingCancel, control.VerbPairingStatus:
			return d.pairingVerb(peer, verb, decode)
		}
	}
	if verb == control.VerbEnrolOwner {
		var a control.EnrolArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return d.enrolOwner(peer, a)
	}
	if strings.HasPrefix(verb, "sim.") {
		if d.sim == nil {
			return nil, control.Errorf(control.CodeSimulatorOff, "the simulator is not enabled in this daemon's configuration")
		}
		return d.sim.handle(ctx, peer, verb, decode)
	}
	return nil, control.Errorf(control.CodeUnknownVerb, fmt.Sprintf("unknown verb %q", verb))
}

func optTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339, s)
}

func hexString(b []byte) string { return hex.EncodeToString(b) }

func (d *Daemon) loop(name string) *readerLoop {
	for _, rl := range d.readers {
		if rl.name == name {
			return rl
		}
	}
	return nil
}

func (d *Daemon) status() (control.Status, error) {
	st := control.Status{
		Version: d.version, Uptime: control.Duration(time.Since(d.started)), Profile: d.vehicle.Profile.Name,
		VehicleIdentifier: hexString(d.vehicle.Identifier), Simulator: d.sim != nil,
	}
	d.mu.Lock()
	st.DigitalKeyEnabled, st.DisabledReason = !d.settings.DigitalKeyDisabled, d.settings.DisabledReason
	d.mu.Unlock()
	for _, rl := range d.readers {
		h := rl.r.Health()
		rl.mu.Lock()
		st.Readers = append(st.Readers, control.Reader{
			Name: rl.name, Role: string(rl.role), Backend: rl.backend, Enabled: d.readerEnabled(rl.name),
			OK: h.OK, Detail: h.Detail, Firmware: h.Firmware, ECP: h.ECP, Since: h.Since, Errors: h.Errors,
			Recoveries: h.Recoveries, Taps: rl.taps, LastTap: rl.lastTap, CardPresent: rl.present,
		})
		rl.mu.Unlock()
	}
	stats, err := d.store.Stats()
	if err != nil {
		return st, err
	}
	st.Store = control.StoreStats{Path: d.store.Path(), Endpoints: stats.Endpoints, Active: stats.Active, Slots: stats.Slots,
		IssuedSlots: stats.IssuedSlots, AuditEntries: stats.AuditEntries, FileBytes: stats.FileBytes}
	_ = d.store.View(func(tx *keystore.Tx) error {
		if o, ok := tx.Owner(); ok {
			st.Store.Owner = o.String()
		}
		return nil
	})
	if st.Pairing, err = d.pairingStatus(); err != nil {
		return st, err
	}
	a := d.act.State()
	st.Actuators = control.ActuatorState{Lock: string(a.Lock), EngineAuthorizedUntil: a.EngineAuthorizedUntil, DoorOpen: a.DoorOpen}
	return st, nil
}

// readerEnabled reports a reader's own switch, whatever the vehicle-wide one.
func (d *Daemon) readerEnabled(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.settings.DisabledReaders {
		if n == name {
			return false
		}
	}
	return true
}

func (d *Daemon) vehicleInfo() control.VehicleInfo {
	return control.VehicleInfo{
		Profile: d.vehicle.Profile.Name, VehicleIdentifier: hexString(d.vehicle.Identifier), VehiclePublicKey: hexString(d.vehPK),
		CertificateSHA256: d.certHash, OEMRootSHA256: d.rootHash, SlotIDLen: d.vehicle.Layout.SlotIDLen,
		ImmobilizerTokenLen: d.vehicle.Layout.TokenLen,
	}
}

func (d *Daemon) keyView(tx *keystore.Tx, e *keystore.Endpoint, detail bool) control.Key {
	k := control.Key{
		KeyID: e.KeyID.String(), Role: string(e.Role), FriendlyName: e.FriendlyName, Profile: e.Profile,
		State: string(e.State), NotBefore: e.NotBefore, NotAfter: e.NotAfter, Created: e.Created,
		LastUsed: e.LastUsed, HasKpersistent: len(e.Kpersistent) > 0,
	}
	if p, ok := d.vehicle.Profiles.Get(e.Profile); ok {
		k.ProfileName = p.Name
	}
	if e.SlotID != nil {
		k.Slot = hexString(e.SlotID)
		if s, err := tx.Slot(e.SlotID); err == nil {
			k.SlotState = string(s.State)
		}
	}
	if detail {
		k.PublicKey = hexString(e.PublicKey)
	}
	return k
}

func (d *Daemon) listKeys() ([]control.Key, error) {
	out := []control.Key{}
	err := d.store.View(func(tx *keystore.Tx) error {
		eps, err := tx.Endpoints()
		for _, e := range eps {
			out = append(out, d.keyView(tx, e, false))
		}
		return err
	})
	return out, err
}

func (d *Daemon) listSlots() ([]control.Slot, error) {
	out := []control.Slot{}
	err := d.store.View(func(tx *keystore.Tx) error {
		slots, err := tx.Slots()
		for _, s := range slots {
			v := control.Slot{Slot: hexString(s.ID), Entry: s.Entry, IssuedTo: s.IssuedTo.String(), State: string(s.State)}
			if s.BoundEndpoint != nil {
				v.BoundEndpoint = s.BoundEndpoint.String()
			}
			out = append(out, v)
		}
		return err
	})
	return out, err
}

// findKey resolves a key identifier or a unique prefix of at least 8 digits.
func findKey(tx *keystore.Tx, id string) (*keystore.Endpoint, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < 8 {
		return nil, control.Errorf(control.CodeBadRequest, "give at least 8 hex digits of the key identifier")
	}
	eps, err := tx.Endpoints()
	if err != nil {
		return nil, err
	}
	var found *keystore.Endpoint
	for _, e := range eps {
		if strings.HasPrefix(e.KeyID.String(), id) {
			if found != nil {
				return nil, control.Errorf(control.CodeBadRequest, "key identifier "+id+" is ambiguous: give more digits")
			}
			found = e
		}
	}
	if found == nil {
		return nil, control.Errorf(control.CodeUnknownKey, "no key "+id)
	}
	return found, nil
}

func (d *Daemon) keyVerb(peer control.Peer, verb, id string) (control.Key, error) {
	switch verb {
	case control.VerbKeysShow:
		var k control.Key
		err := d.store.View(func(tx *keystore.Tx) error {
			e, err := findKey(tx, id)
			if err == nil {
				k = d.keyView(tx, e, true)
			}
			return err
		})
		return k, err
	case control.VerbKeysRevoke:
		var k control.Key
		err := d.store.Update(func(tx *keystore.Tx) error {
			e, err := findKey(tx, id)
			if err != nil {
				return err
			}
			if e.State == keystore.StateTerminated {
				return control.Errorf(control.CodeNotPermitted, "key "+e.KeyID.String()+" is already revoked")
			}
			if err := immobilizer.RevokeEndpoint(tx, e.KeyID); err != nil {
				return err
			}
			e, err = tx.Endpoint(e.KeyID)
			if err == nil {
				k = d.keyView(tx, e, false)
			}
			return err
		})
		if err == nil {
			d.keyEvent(peer, "revoke", k)
		}
		return k, err
	case control.VerbKeysSuspend:
		return d.changeKey(peer, "suspend", id, func(e *keystore.Endpoint) error {
			if e.State != keystore.StateActive {
				return control.Errorf(control.CodeNotPermitted, "key "+e.KeyID.String()+" is "+string(e.State))
			}
			e.State = keystore.StateSuspended
			return nil
		})
	default: // resume
		return d.changeKey(peer, "resume", id, func(e *keystore.Endpoint) error {
			if e.State != keystore.StateSuspended {
				return control.Errorf(control.CodeNotPermitted, "key "+e.KeyID.String()+" is "+string(e.State)+", not suspended")
			}
			e.State = keystore.StateActive
			return nil
		})
	}
}

// changeKey applies change to one key in one store transaction and
// publishes the key event.
func (d *Daemon) changeKey(peer control.Peer, action, id string, change func(*keystore.Endpoint) error) (control.Key, error) {
	var k control.Key
	err := d.store.Update(func(tx *keystore.Tx) error {
		e, err := findKey(tx, id)
		if err != nil {
			return err
		}
		if err := change(e); err != nil {
			return err
		}
		if err := tx.PutEndpoint(e); err != nil {
			return err
		}
		k = d.keyView(tx, e, false)
		return nil
	})
	if err == nil {
		d.keyEvent(peer, action, k)
	}
	return k, err
}

func (d *Daemon) keyEvent(peer control.Peer, action string, k control.Key) {
	uid := peer.UID
	d.emit(control.Event{Type: "key", Action: action, KeyID: k.KeyID, Slot: k.Slot, KeyRole: k.Role, FriendlyName: k.FriendlyName, By: &uid})
}

func (d *Daemon) revokeSlot(peer control.Peer, slot string) (control.Slot, error) {
	id, err := hex.DecodeString(slot)
	if err != nil || len(id) == 0 {
		return control.Slot{}, control.Errorf(control.CodeBadRequest, "a slot is given in hex")
	}
	var out control.Slot
	err = d.store.Update(func(tx *keystore.Tx) error {
		if err := immobilizer.RevokeSlot(tx, id); err != nil {
			if errors.Is(err, keystore.ErrNotFound) {
				return control.Errorf(control.CodeUnknownKey, "no slot "+slot)
			}
			if errors.Is(err, immobilizer.ErrNotIssued) {
				return control.Errorf(control.CodeNotPermitted, err.Error())
			}
			return err
		}
		s, err := tx.Slot(id)
		if err == nil {
			out = control.Slot{Slot: slot, Entry: s.Entry, IssuedTo: s.IssuedTo.String(), State: string(s.State)}
		}
		return err
	})
	if err == nil {
		uid := peer.UID
		d.emit(control.Event{Type: "key", Action: "revoke_slot", Slot: slot, By: &uid})
	}
	return out, err
}

// setSwitch changes the persistent settings and publishes a vehicle event.
func (d *Daemon) setSwitch(peer control.Peer, change func(*keystore.Settings) (string, error)) (control.Status, error) {
	d.mu.Lock()
	s := d.settings
	s.DisabledReaders = append([]string(nil), s.DisabledReaders...)
	action, err := change(&s)
	if err == nil {
		err = d.store.Update(func(tx *keystore.Tx) error { return tx.PutSettings(s) })
	}
	if err == nil {
		d.settings = s
	}
	d.mu.Unlock()
	if err != nil {
		return control.Status{}, err
	}
	uid := peer.UID
	d.emit(control.Event{Type: "vehicle", Action: action, Detail: s.DisabledReason, By: &uid})
	return d.status()
}

// checkStore runs the store's consistency check.
func (d *Daemon) checkStore() (control.StoreCheck, error) {
	r, err := d.store.Check()
	out := control.StoreCheck{Path: d.store.Path(), Keys: r.Endpoints, Slots: r.Slots, Problems: []string{}}
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, p.Error())
	}
	return out, err
}

func (d *Daemon) audit(limit int) ([]control.AuditEntry, error) {
	if limit <= 0 {
		limit = 50
	}
	out := []control.AuditEntry{}
	err := d.store.View(func(tx *keystore.Tx) error {
		recs, err := tx.Audit(limit)
		for _, r := range recs {
			var ev control.Event
			if err := json.Unmarshal(r.Data, &ev); err != nil {
				return fmt.Errorf("audit entry %d: %w", r.Seq, err)
			}
			out = append(out, control.AuditEntry{Seq: r.Seq, Event: ev})
		}
		return err
	})
	return out, err
}

func (d *Daemon) metricsText() string {
	gauges := map[string]gaugeFamily{}
	up := gaugeFamily{help: "1 when the reader is healthy."}
	errs := gaugeFamily{typ: "counter", help: "Reader failures: those the backend recovered from itself and those the reader loop saw."}
	recs := gaugeFamily{typ: "counter", help: "Reader recoveries after failures."}
	d.metrics.mu.Lock()
	loopErrs := map[string]uint64{}
	for k, v := range d.metrics.readerErrors {
		loopErrs[k] = v
	}
	d.metrics.mu.Unlock()
	for _, rl := range d.readers {
		h := rl.r.Health()
		v := 0.0
		if h.OK {
			v = 1
		}
		l := labels("reader", rl.name, "backend", rl.backend)
		up.values = append(up.values, gauge{labels: l, value: v})
		errs.values = append(errs.values, gauge{labels: l, value: float64(h.Errors + loopErrs[rl.name])})
		recs.values = append(recs.values, gauge{labels: l, value: float64(h.Recoveries)})
	}
	gauges["dkvehicled_reader_up"] = up
	gauges["dkvehicled_reader_errors_total"] = errs
	gauges["dkvehicled_reader_recoveries_total"] = recs
	if st, err := d.store.Stats(); err == nil {
		gauges["dkvehicled_keys"] = gaugeFamily{help: "Stored keys.", values: []gauge{
			{labels: labels("state", "active"), value: float64(st.Active)},
			{labels: labels("state", "all"), value: float64(st.Endpoints)},
		}}
	}
	enabled, _ := d.enabled("")
	v := 0.0
	if enabled {
		v = 1
	}
	gauges["dkvehicled_digital_key_enabled"] = gaugeFamily{help: "1 when the vehicle-wide digital-key switch is on.", values: []gauge{{labels: "", value: v}}}
	return d.metrics.text(gauges)
}

// enrolOwner is direct enrolment for bench rigs: the phone's public key
// becomes the owner, as pairing would leave the vehicle (PROTOCOL.md 6.3).
func (d *Daemon) enrolOwner(peer control.Peer, a control.EnrolArgs) (control.Enrolment, error) {
	if !d.cfg.Bench.DirectEnrolment {
		return control.Enrolment{}, control.Errorf(control.CodeDisabled, "direct enrolment is off: set bench.direct_enrolment = true on a bench rig")
	}
	pk, err := hex.DecodeString(a.PublicKey)
	if err == nil {
		_, err = keys.ParseVerifyingKey(pk)
	}
	if err != nil {
		return control.Enrolment{}, control.Errorf(control.CodeBadRequest, "public_key: want a 65-byte uncompressed P-256 point in hex")
	}
	if len(a.Name) > attestation.MaxFriendlyName || !utf8.ValidString(a.Name) {
		return control.Enrolment{}, control.Errorf(control.CodeBadRequest, fmt.Sprintf("a friendly name is at most %d bytes of UTF-8", attestation.MaxFriendlyName))
	}
	var out control.Enrolment
	var view control.Key
	err = d.store.Update(func(tx *keystore.Tx) error {
		if _, err := tx.Endpoint(keys.KeyIDOf(pk)); err == nil {
			return control.Errorf(control.CodeNotPermitted, "that key is already stored")
		}
		slot, err := enrol.Owner(tx, d.rand, d.now(), d.vehicle.Layout, enrol.OwnerRecord{PublicKey: pk, Profile: d.cfg.Vehicle.OwnerProfile, FriendlyName: a.Name})
		if err != nil {
			return err
		}
		e, err := tx.Endpoint(keys.KeyIDOf(pk))
		if err != nil {
			return err
		}
		view = d.keyView(tx, e, false)
		out = control.Enrolment{KeyID: e.KeyID.String(), VehicleIdentifier: hexString(d.vehicle.Identifier),
			VehiclePublicKey: hexString(d.vehPK), Slot: hexString(slot.ID), Profile: d.vehicle.Profile.Name}
		return nil
	})
	if err != nil {
		return control.Enrolment{}, err
	}
	d.keyEvent(peer, "enrol_owner", view)
	return out, nil
}
