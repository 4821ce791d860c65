package transaction

import (
	"bytes"
	"errors"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/immobilizer"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction/attestation"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/securechannel"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// afterAuth runs the steps of PROTOCOL.md 3.11 once the endpoint is
// authenticated: friend first use or owner provisioning, the validity window,
// the policy, the immobilizer check, and the last-use time.
func (r *run) afterAuth() error {
	if r.first != nil {
		if err := r.friendFirstUse(); err != nil {
			return err
		}
	} else if r.req.Role == policy.RoleDashboard && !r.e.cfg.Vehicle.Profile.EndpointIDIn4E {
		if err := r.provisionIfOwner(); err != nil {
			return err
		}
	}
	ep := r.ep
	d := policy.Decide(r.e.cfg.Vehicle.Profiles, policy.Key{
		Profile: ep.Profile, Active: ep.State == keystore.StateActive, NotBefore: ep.NotBefore, NotAfter: ep.NotAfter,
	}, r.o.Action, r.now)
	r.phase("policy")
	if !d.Allowed {
		return fail(d.Reason, "%s", d.Detail)
	}
	r.o.SpeedLimitKPH = d.SpeedLimitKPH
	if r.o.Action == policy.ActionEngineStart && !r.e.cfg.Vehicle.Profile.EndpointIDIn4E {
		if err := r.checkImmobilizer(); err != nil {
			return err
		}
	}
	err := r.e.cfg.Store.Update(func(tx *keystore.Tx) error {
		cur, err := tx.Endpoint(ep.KeyID)
		if err != nil {
			return err
		}
		if cur.State != keystore.StateActive {
			return fail(wire.ReasonKeyNotValid, "key %s became %s during the tap", cur.KeyID, cur.State)
		}
		if r.kp != nil {
			cur.Kpersistent = r.kp
		}
		cur.LastUsed = r.now
		return tx.PutEndpoint(cur)
	})
	if err == nil {
		r.kp = nil
	}
	r.phase("store")
	return storeErr(err)
}

// exchange runs one EXCHANGE and returns the data of its reads.
func (r *run) exchange(ops []wire.Op, long bool) ([][]byte, error) {
	timeout := r.e.cfg.Timeouts.APDU
	if long {
		timeout = r.e.cfg.Timeouts.Long
	}
	st := r.trace("EXCHANGE")
	if st != nil {
		st.Ops, st.Timeout = ops, int(timeout.Milliseconds())
		defer r.emit()
	}
	if err := r.flushKp(); err != nil {
		return nil, err
	}
	if r.ch == nil {
		ch, err := securechannel.New(*r.session, 0)
		if err != nil {
			return nil, fail(wire.ReasonProtocol, "fast session: %v", err)
		}
		r.ch = ch
		r.traceChannel(ch)
	}
	plain := wire.EncodeExchange(ops)
	data, err := r.ch.WrapCommand(plain)
	if err != nil || len(data) > apdu.MaxShortData {
		return nil, fail(wire.ReasonProtocol, "EXCHANGE of %d bytes does not fit a short APDU", len(plain))
	}
	if st != nil {
		st.Plaintext = plain
	}
	resp, err := r.transmit(apdu.Command{CLA: wire.CLASecure, INS: wire.INSExchange, Data: data, Ne: 256}, timeout)
	if err != nil {
		return nil, err
	}
	if !resp.OK() {
		return nil, fail(wire.ReasonProtocol, "EXCHANGE answered %04X", resp.SW)
	}
	p, err := r.ch.UnwrapResponse(resp.Data)
	if err != nil {
		return nil, fail(wire.ReasonProtocol, "EXCHANGE response: %v", err)
	}
	if st != nil {
		st.ResponsePlaintext = p
	}
	status, reads, err := wire.DecodeExchangeResponse(p)
	if err != nil {
		return nil, fail(wire.ReasonProtocol, "EXCHANGE response: %v", err)
	}
	if st != nil {
		st.Status = status
	}
	if status != wire.StatusDone {
		return nil, fail(wire.ReasonProtocol, "EXCHANGE status %04x", uint16(status))
	}
	i := 0
	for _, o := range ops {
		if !o.IsRead() {
			continue
		}
		if i >= len(reads) || len(reads[i]) != o.Length {
			return nil, fail(wire.ReasonProtocol, "EXCHANGE response does not match the reads asked for")
		}
		i++
	}
	if i != len(reads) {
		return nil, fail(wire.ReasonProtocol, "EXCHANGE response has more data than asked for")
	}
	return reads, nil
}

// friendFirstUse is PROTOCOL.md 3.8 steps 1 to 5.
func (r *run) friendFirstUse() error {
	l := r.e.cfg.Vehicle.Layout
	fu := r.first
	reads, err := r.exchange([]wire.Op{wire.ReadPrivate(wire.OffsetSigBmp, 1)}, false)
	if err != nil {
		return err
	}
	sigBmp := reads[0][0]
	if sigBmp&wire.SigAttestation == 0 {
		return fail(wire.ReasonUnknownKey, "slot %x is unbound and the phone holds no attestation", fu.slot.ID)
	}
	pkgDER, err := r.readAttestation()
	r.phase("first_use")
	if err != nil {
		return err
	}
	friend, err := r.verifyAttestation(pkgDER)
	if err != nil {
		return err
	}
	r.identify(friend)
	err = r.e.cfg.Store.Update(func(tx *keystore.Tx) error {
		slot, err := tx.Slot(fu.slot.ID)
		if err != nil {
			return err
		}
		owner, _ := tx.Owner()
		if err := immobilizer.Bind(tx, slot, owner, friend.KeyID); err != nil {
			return fail(wire.ReasonAttestation, "%v", err)
		}
		return tx.PutEndpoint(friend)
	})
	r.phase("store")
	if err := storeErr(err); err != nil {
		return err
	}
	r.o.FirstUse = true
	_, err = r.exchange([]wire.Op{
		wire.FillPrivate(l.Attestation(), l.AttestationLen, 0x00),
		wire.WritePrivate(wire.OffsetSigBmp, []byte{sigBmp &^ wire.SigAttestation}),
	}, false)
	r.phase("first_use")
	return err
}

// readAttestation reads the package: the first 192 bytes of the area, then
// only the rest of its DER, 192 bytes per EXCHANGE.
func (r *run) readAttestation() ([]byte, error) {
	l := r.e.cfg.Vehicle.Layout
	area := l.Attestation()
	reads, err := r.exchange([]wire.Op{wire.ReadPrivate(area, min(wire.MaxRead, l.AttestationLen))}, true)
	if err != nil {
		return nil, err
	}
	buf := reads[0]
	if buf[0] != 0x30 {
		return nil, fail(wire.ReasonAttestation, "attestation area does not start with a SEQUENCE")
	}
	h, n, err := apdu.HeaderLen(buf)
	if err != nil {
		return nil, fail(wire.ReasonAttestation, "attestation package header: %v", err)
	}
	total := h + n
	if total > l.AttestationLen {
		return nil, fail(wire.ReasonAttestation, "package of %d bytes exceeds the %d-byte attestation area", total, l.AttestationLen)
	}
	for len(buf) < total {
		off := len(buf)
		reads, err := r.exchange([]wire.Op{wire.ReadPrivate(area+off, min(wire.MaxRead, total-off))}, true)
		if err != nil {
			return nil, err
		}
		buf = append(buf, reads[0]...)
	}
	return buf[:total], nil
}

// verifyAttestation is PROTOCOL.md 3.8 step 3, in its order. It returns the
// friend's endpoint record, ready to be stored.
func (r *run) verifyAttestation(der []byte) (*keystore.Endpoint, error) {
	v, fu := r.e.cfg.Vehicle, r.first
	pkg, err := attestation.Parse(der)
	if err != nil {
		return nil, fail(wire.ReasonAttestation, "%v", err)
	}
	var owner, existing *keystore.Endpoint
	var slot *keystore.Slot
	friendID := keys.KeyIDOf(pkg.FriendPublicKey)
	err = r.e.cfg.Store.View(func(tx *keystore.Tx) error {
		id, ok := tx.Owner()
		if !ok {
			return fail(wire.ReasonAttestation, "the vehicle has no owner")
		}
		var err error
		if owner, err = tx.Endpoint(id); err != nil {
			return err
		}
		if slot, err = tx.Slot(fu.slot.ID); err != nil {
			return err
		}
		if existing, err = tx.Endpoint(friendID); errors.Is(err, keystore.ErrNotFound) {
			existing, err = nil, nil
		}
		return err
	})
	if err := storeErr(err); err != nil {
		return nil, err
	}
	ownerPub, err := keys.ParseVerifyingKey(owner.PublicKey)
	if err != nil {
		return nil, fail(wire.ReasonAttestation, "stored owner key: %v", err)
	}
	friendPub, friendErr := keys.ParseVerifyingKey(pkg.FriendPublicKey)
	switch {
	case pkg.OwnerKeyID != owner.KeyID:
		return nil, fail(wire.ReasonAttestation, "package names owner %s, the owner is %s", pkg.OwnerKeyID, owner.KeyID)
	case !pkg.Verify(ownerPub):
		return nil, fail(wire.ReasonAttestation, "owner signature does not verify")
	case !bytes.Equal(pkg.VehicleIdentifier, v.Identifier):
		return nil, fail(wire.ReasonAttestation, "package is for vehicle %x", pkg.VehicleIdentifier)
	case !bytes.Equal(pkg.SlotIdentifier, fu.slot.ID):
		return nil, fail(wire.ReasonAttestation, "package names slot %x, AUTH1 named %x", pkg.SlotIdentifier, fu.slot.ID)
	case slot.State != keystore.SlotIssued || slot.BoundEndpoint != nil || slot.IssuedTo != owner.KeyID:
		return nil, fail(wire.ReasonAttestation, "slot %x is not an issued, unbound slot of the owner", slot.ID)
	case friendErr != nil || !keys.Verify(friendPub, fu.tbs, fu.signature):
		return nil, fail(wire.ReasonAttestation, "friend key does not verify the AUTH1 signature")
	}
	if _, ok := v.Profiles.Get(pkg.Profile); !ok {
		return nil, fail(wire.ReasonAttestation, "access profile %d is not configured", pkg.Profile)
	}
	if r.now.After(pkg.NotAfter) {
		return nil, fail(wire.ReasonAttestation, "shared key expired at %s", pkg.NotAfter.Format("2006-01-02T15:04:05Z"))
	}
	if existing != nil {
		return nil, fail(wire.ReasonAttestation, "key %s is already stored", friendID)
	}
	return &keystore.Endpoint{
		KeyID: friendID, PublicKey: pkg.FriendPublicKey, SlotID: fu.slot.ID, Role: keystore.RoleFriend,
		Profile: pkg.Profile, State: keystore.StateActive, Kpersistent: fu.kp, NotBefore: pkg.NotBefore,
		NotAfter: pkg.NotAfter, FriendlyName: pkg.FriendlyName, Created: r.now,
	}, nil
}

// provisionIfOwner is PROTOCOL.md 3.10 for the current owner at the dashboard.
func (r *run) provisionIfOwner() error {
	ep := r.ep
	var ownSlot *keystore.Slot
	isOwner := false
	err := r.e.cfg.Store.View(func(tx *keystore.Tx) (err error) {
		id, ok := tx.Owner()
		if !ok || id != ep.KeyID || ep.Role != keystore.RoleOwner || ep.SlotID == nil {
			return nil
		}
		isOwner = true
		ownSlot, err = tx.Slot(ep.SlotID)
		return err
	})
	if err := storeErr(err); err != nil || !isOwner {
		return err
	}
	reads, err := r.exchange([]wire.Op{wire.ReadPrivate(wire.OffsetSigBmp, 2)}, false)
	if err != nil {
		return err
	}
	sigBmp, bmp := reads[0][0], reads[0][1]
	if sigBmp&wire.SigRefill == 0 && bmp == 0xFF {
		r.phase("provisioning")
		return nil
	}
	l := r.e.cfg.Vehicle.Layout
	ids := make([][]byte, wire.Entries)
	toks := make([][]byte, wire.Entries)
	ids[0], toks[0] = ownSlot.ID, ownSlot.Token.Expose()
	var clearEntries []int
	for i := range wire.Entries {
		if bmp&(1<<i) == 0 {
			clearEntries = append(clearEntries, i)
		}
	}
	err = r.e.cfg.Store.Update(func(tx *keystore.Tx) error {
		for _, i := range clearEntries {
			if i == 0 {
				continue
			}
			s, err := immobilizer.Issue(tx, r.e.cfg.Rand, l.SlotIDLen, l.TokenLen, ep.KeyID, i)
			if err != nil {
				return err
			}
			ids[i], toks[i] = s.ID, s.Token.Expose()
		}
		return nil
	})
	r.phase("store")
	if err := storeErr(err); err != nil {
		return err
	}
	r.o.Provisioned = len(clearEntries)
	isClear := func(i int) bool { return bmp&(1<<i) == 0 }
	var ops []wire.Op
	for _, run := range runs(isClear) {
		ops = append(ops, wire.WritePrivate(l.SlotEntry(run[0]), bytes.Join(ids[run[0]:run[1]], nil)))
	}
	for _, run := range runs(func(i int) bool { return i == 0 || isClear(i) }) {
		ops = append(ops, wire.WriteConfidential(l.TokenEntry(run[0]), bytes.Join(toks[run[0]:run[1]], nil)))
	}
	ops = append(ops, wire.WritePrivate(wire.OffsetSlotIdentBmp, []byte{0xFF}), wire.WritePrivate(wire.OffsetSigBmp, []byte{sigBmp &^ wire.SigRefill}))
	_, err = r.exchange(ops, false)
	r.phase("provisioning")
	return err
}

// runs returns the [start, end) ranges of consecutive entries for which in is true.
func runs(in func(int) bool) [][2]int {
	var out [][2]int
	for i := 0; i < wire.Entries; i++ {
		if !in(i) {
			continue
		}
		j := i
		for j < wire.Entries && in(j) {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

// checkImmobilizer is PROTOCOL.md 3.9: the token in confidential entry 0
// must equal the one bound to the key's slot.
func (r *run) checkImmobilizer() error {
	l := r.e.cfg.Vehicle.Layout
	var slot *keystore.Slot
	err := r.e.cfg.Store.View(func(tx *keystore.Tx) (err error) {
		if r.ep.SlotID == nil {
			return fail(wire.ReasonTokenMismatch, "key %s has no slot", r.ep.KeyID)
		}
		slot, err = tx.Slot(r.ep.SlotID)
		return err
	})
	if err := storeErr(err); err != nil {
		return err
	}
	reads, err := r.exchange([]wire.Op{wire.ReadConfidential(l.TokenEntry(0), l.TokenLen)}, false)
	r.phase("immobilizer")
	if err != nil {
		return err
	}
	if !immobilizer.Check(slot, reads[0]) {
		return fail(wire.ReasonTokenMismatch, "immobilizer token of slot %x does not match", slot.ID)
	}
	return nil
}
