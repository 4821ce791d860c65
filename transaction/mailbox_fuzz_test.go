package transaction_test

import (
	"bytes"
	"errors"
	"math/bits"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction/attestation"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// The mailboxes are the phone's to fill: after the secure channel opens,
// the vehicle reads the friend's attestation package (EXCHANGE, in parts),
// the owner's SigBmp and SlotIdentBmp (provisioning) and the immobilizer
// token (engine start) from them. FuzzMailbox hands the vehicle arbitrary
// mailbox contents through an honest phone, so every byte arrives
// authenticated and only the vehicle's parsing and checks stand between
// them and an action.

// mailboxState is a vehicle with an owner (slots provisioned) and a friend
// whose key was shared but not used yet, and the two phones, saved.
type mailboxState struct {
	store         *keystore.Snapshot
	owner, friend []byte
	pkgTBS        []byte // the content of the genuine attestation package
	ownerToken    []byte // the owner's immobilizer token (entry 0)
	ownerSlot     []byte // the owner's slot identifier (entry 0), which AUTH1 names
}

func newMailboxState(tb testing.TB) *mailboxState {
	w := newWorld(tb, tb.TempDir(), 11)
	owner, friend := w.phone(12), w.phone(13)
	w.enrolOwner(owner)
	if o := w.tap(owner, policy.RoleDashboard, true); !o.Allowed() || o.Provisioned != 7 {
		tb.Fatalf("owner's first engine start: %s (%s), %d provisioned", o.Result, o.Detail, o.Provisioned)
	}
	w.share(owner, friend, 1, "Alice")
	st := &mailboxState{}
	if err := w.store.View(func(tx *keystore.Tx) (err error) { st.store, err = tx.Snapshot(); return err }); err != nil {
		tb.Fatal(err)
	}
	var err error
	if st.owner, err = owner.Save(); err != nil {
		tb.Fatal(err)
	}
	if st.friend, err = friend.Save(); err != nil {
		tb.Fatal(err)
	}
	l := w.vehicle.Layout
	priv := friend.Key(w.vehicle.Identifier).Private
	pkg, err := attestation.Parse(packageAt(priv[l.Attestation():]))
	if err != nil {
		tb.Fatalf("the friend's mailbox holds no package: %v", err)
	}
	st.pkgTBS = pkg.TBS
	st.ownerToken = bytes.Clone(owner.Key(w.vehicle.Identifier).Confidential[:l.TokenLen])
	st.ownerSlot = bytes.Clone(owner.Key(w.vehicle.Identifier).Private[l.SlotEntry(0):l.SlotEntry(1)])
	return st
}

// packageAt returns the DER element at the start of area, or area itself
// when its header does not parse.
func packageAt(area []byte) []byte {
	h, n, err := apdu.HeaderLen(area)
	if err != nil || h+n > len(area) {
		return area
	}
	return area[:h+n]
}

// overlay returns a copy of box with its first bytes replaced by patch.
func overlay(box, patch []byte) []byte {
	out := bytes.Clone(box)
	copy(out, patch)
	return out
}

// FuzzMailbox runs a friend's first tap at the door (flow 0) or the owner's
// engine start at the dashboard (flow 1) with the phone's private and
// confidential mailboxes overwritten from their start by the fuzzed bytes,
// and checks: the store stays consistent; a friend is stored exactly when
// the tap is allowed, and only with an attestation package whose signed
// content is the owner's genuine one; the owner's engine start (naming the
// owner's slot, without provisioning) is allowed exactly with the genuine
// immobilizer token, and refused with a token mismatch otherwise;
// provisioning writes exactly the entries the SlotIdentBmp marks free, and
// the owner's token to entry 0.
func FuzzMailbox(f *testing.F) {
	st := newMailboxState(f)
	vehicleID := []byte("VEHICLE1")
	ownerPhone, _ := endpoint.Load(st.owner, seeded(1))
	friendPhone, _ := endpoint.Load(st.friend, seeded(1))
	op, oc := ownerPhone.Key(vehicleID).Private, ownerPhone.Key(vehicleID).Confidential
	fp, fc := friendPhone.Key(vehicleID).Private, friendPhone.Key(vehicleID).Confidential
	l := wire.DefaultLayout
	f.Add(byte(0), fp, fc)
	f.Add(byte(0), overlay(fp, []byte{0x00}), fc)
	f.Add(byte(0), fp[:l.Attestation()+1], fc)
	noLen := bytes.Clone(fp)
	noLen[l.Attestation()+1] = 0x84
	f.Add(byte(0), noLen, fc)
	f.Add(byte(1), op, oc)
	f.Add(byte(1), overlay(op, []byte{0x01, 0x0F}), oc)
	f.Add(byte(1), overlay(op, []byte{0x00, 0xFF}), overlay(oc, make([]byte, 16)))
	f.Add(byte(1), overlay(op, []byte{0x00, 0xFF}), oc)
	f.Fuzz(func(t *testing.T, flow byte, private, confidential []byte) {
		w := newWorld(t, t.TempDir(), 11)
		if err := w.store.Update(func(tx *keystore.Tx) error { return tx.Restore(st.store) }); err != nil {
			t.Fatal(err)
		}
		w.now = w.now.Add(time.Hour)
		saved, role := st.friend, policy.RoleDoor
		if flow%2 == 1 {
			saved, role = st.owner, policy.RoleDashboard
		}
		p, err := endpoint.Load(saved, seeded(99))
		if err != nil {
			t.Fatal(err)
		}
		k := p.Key(w.vehicle.Identifier)
		k.Private, k.Confidential = overlay(k.Private, private), overlay(k.Confidential, confidential)
		mp, mc := bytes.Clone(k.Private), bytes.Clone(k.Confidential)

		o := w.tap(p, role, true) // checks the store's consistency too
		if o.Allowed() && o.Err != nil || !o.Allowed() && o.Err == nil {
			t.Fatalf("outcome %s with err %v", o.Result, o.Err)
		}

		if flow%2 == 0 {
			friendID := k.KeyID()
			stored := true
			err := w.store.View(func(tx *keystore.Tx) error { _, err := tx.Endpoint(friendID); return err })
			if errors.Is(err, keystore.ErrNotFound) {
				stored = false
			} else if err != nil {
				t.Fatal(err)
			}
			if stored != o.Allowed() || stored != o.FirstUse {
				t.Fatalf("friend stored %v, outcome %s first use %v (%s)", stored, o.Result, o.FirstUse, o.Detail)
			}
			if !o.Allowed() {
				return
			}
			if mp[wire.OffsetSigBmp]&wire.SigAttestation == 0 {
				t.Fatal("first use without the attestation bit")
			}
			pkg, err := attestation.Parse(packageAt(mp[l.Attestation() : l.Attestation()+l.AttestationLen]))
			if err != nil || !bytes.Equal(pkg.TBS, st.pkgTBS) {
				t.Fatalf("friend stored with a package that is not the owner's (%v)", err)
			}
			return
		}

		sigBmp, bmp := mp[wire.OffsetSigBmp], mp[wire.OffsetSlotIdentBmp]
		provisions := sigBmp&wire.SigRefill != 0 || bmp != 0xFF
		ownSlot := bytes.Equal(mp[l.SlotEntry(0):l.SlotEntry(1)], st.ownerSlot)
		if !ownSlot && o.Allowed() {
			t.Fatalf("the owner's phone naming slot %x instead of its own was allowed", mp[l.SlotEntry(0):l.SlotEntry(1)])
		}
		if !provisions && ownSlot {
			genuine := bytes.Equal(mc[:l.TokenLen], st.ownerToken)
			if o.Allowed() != genuine {
				t.Fatalf("engine start %s with the genuine token %v (%s)", o.Result, genuine, o.Detail)
			}
			if !genuine && o.Reason != wire.ReasonTokenMismatch {
				t.Fatalf("a wrong token refused with %s", o.Reason)
			}
			if o.Provisioned != 0 {
				t.Fatalf("%d entries provisioned with nothing to provision", o.Provisioned)
			}
			return
		}
		if o.Allowed() {
			if want := bits.OnesCount8(^bmp); o.Provisioned != want {
				t.Fatalf("SlotIdentBmp %08b: %d entries provisioned, want %d", bmp, o.Provisioned, want)
			}
			if after := k.Private[wire.OffsetSlotIdentBmp]; after != 0xFF || k.Private[wire.OffsetSigBmp]&wire.SigRefill != 0 {
				t.Fatalf("after provisioning SigBmp %02X SlotIdentBmp %02X", k.Private[wire.OffsetSigBmp], after)
			}
			if !bytes.Equal(k.Confidential[:l.TokenLen], st.ownerToken) {
				t.Fatal("provisioning did not write the owner's token to entry 0")
			}
		}
	})
}
