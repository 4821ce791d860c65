package daemon

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/endpoint"
	"github.com/dkvehicled/dkvehicled/enrol"
	"github.com/dkvehicled/dkvehicled/internal/pki"
	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/reader/sim"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// tapWait bounds how long sim.tap waits for the reader loop's event.
const tapWait = 10 * time.Second

// simulator holds the simulated phones and readers of a daemon started with
// the simulator enabled. Phones are kept in a file beside the store, so the
// same phones can tap again after a restart.
type simulator struct {
	d       *Daemon
	file    string
	readers map[string]*sim.Reader

	// devicePKI, when configured, is given to every simulated phone so it
	// can be paired.
	devicePKI *endpoint.DevicePKI

	mu     sync.Mutex
	phones map[string]*endpoint.Phone
}

func newSimulator(d *Daemon) (*simulator, error) {
	s := &simulator{d: d, file: d.cfg.Path(d.cfg.Simulator.PhonesFile), readers: map[string]*sim.Reader{}, phones: map[string]*endpoint.Phone{}}
	if dir := d.cfg.Simulator.DevicePKI; dir != "" {
		b, err := pki.LoadBench(d.cfg.Path(dir))
		if err != nil {
			return nil, fmt.Errorf("simulator: device_pki: %w", err)
		}
		s.devicePKI = b.DevicePKI(rand.Reader)
	}
	b, err := os.ReadFile(s.file)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	var saved map[string]json.RawMessage
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("simulator: %s: %w", s.file, err)
	}
	for name, raw := range saved {
		p, err := endpoint.Load(raw, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("simulator: phone %s: %w", name, err)
		}
		if s.devicePKI != nil {
			p.SetDevicePKI(s.devicePKI)
		}
		s.phones[name] = p
	}
	return s, nil
}

// save writes every phone to the phones file (mode 0600: it holds keys).
func (s *simulator) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]json.RawMessage{}
	for name, p := range s.phones {
		b, err := p.Save()
		if err != nil {
			return err
		}
		out[name] = b
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	return os.Rename(tmp, s.file)
}

func (s *simulator) phone(name string) (*endpoint.Phone, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.phones[name]
	if p == nil {
		return nil, control.Errorf(control.CodeUnknownKey, "no simulated phone "+name)
	}
	return p, nil
}

func (s *simulator) reader(name string) (*sim.Reader, error) {
	r := s.readers[name]
	if r == nil {
		return nil, control.Errorf(control.CodeUnknownKey, "no simulated reader "+name)
	}
	return r, nil
}

func (s *simulator) view(name string, p *endpoint.Phone) control.SimPhone {
	v := control.SimPhone{Name: name, Keys: []string{}}
	for _, k := range p.Keys() {
		v.Keys = append(v.Keys, k.KeyID().String())
	}
	for rn, r := range s.readers {
		on := r.Phone()
		if f, ok := on.(*endpoint.Faulty); ok {
			on = f.Card
		}
		if slow, ok := on.(*slowPhone); ok {
			on = slow.Phone
		}
		if on == apdu.Transceiver(p) {
			v.Reader = rn
		}
	}
	return v
}

func (s *simulator) handle(ctx context.Context, peer control.Peer, verb string, decode func(any) error) (any, error) {
	switch verb {
	case control.VerbSimPhones:
		s.mu.Lock()
		names := make([]string, 0, len(s.phones))
		for n := range s.phones {
			names = append(names, n)
		}
		s.mu.Unlock()
		sort.Strings(names)
		out := []control.SimPhone{}
		for _, n := range names {
			p, _ := s.phone(n)
			out = append(out, s.view(n, p))
		}
		return out, nil
	case control.VerbSimNewPhone:
		var a control.SimPhoneArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		if a.Phone == "" {
			return nil, control.Errorf(control.CodeBadRequest, "a phone needs a name")
		}
		s.mu.Lock()
		if s.phones[a.Phone] != nil {
			s.mu.Unlock()
			return nil, control.Errorf(control.CodeBadRequest, "a phone named "+a.Phone+" exists")
		}
		p := endpoint.New(s.d.vehicle.Profile, s.d.vehicle.Profile.Versions, s.d.vehicle.Layout, rand.Reader)
		if s.devicePKI != nil {
			p.SetDevicePKI(s.devicePKI)
		}
		s.phones[a.Phone] = p
		s.mu.Unlock()
		return s.view(a.Phone, p), s.save()
	case control.VerbSimPassword:
		var a control.SimPasswordArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		p, err := s.phone(a.Phone)
		if err != nil {
			return nil, err
		}
		if s.devicePKI == nil {
			return nil, control.Errorf(control.CodeNotPermitted, "simulated phones have no Digital Key framework: set simulator.device_pki (dkpki init makes one)")
		}
		p.SetPairingPassword(a.Password)
		return s.view(a.Phone, p), s.save()
	case control.VerbSimEnrolOwner:
		var a control.SimPhoneArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return s.enrolOwner(peer, a.Phone)
	case control.VerbSimPlace, control.VerbSimTap:
		var a control.SimPlaceArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		p, err := s.phone(a.Phone)
		if err != nil {
			return nil, err
		}
		r, err := s.reader(a.Reader)
		if err != nil {
			return nil, err
		}
		var card apdu.Transceiver = p
		if a.LatencyMS > 0 {
			card = &slowPhone{Phone: p, delay: time.Duration(a.LatencyMS) * time.Millisecond}
		}
		if a.DropAt != nil {
			if *a.DropAt < 0 {
				return nil, control.Errorf(control.CodeBadRequest, "drop_at counts commands from 0")
			}
			card = &endpoint.Faulty{Card: card, DropAt: *a.DropAt}
		}
		if verb == control.VerbSimPlace {
			if err := r.Place(card); err != nil {
				return nil, control.Errorf(control.CodeNotPermitted, err.Error())
			}
			return control.SimReader{Reader: a.Reader, Phone: a.Phone}, nil
		}
		return s.tap(ctx, r, card)
	case control.VerbSimRemove:
		var a control.SimReaderArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		r, err := s.reader(a.Reader)
		if err != nil {
			return nil, err
		}
		r.Remove()
		return control.SimReader{Reader: a.Reader}, s.save()
	case control.VerbSimShare:
		var a control.SimShareArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return s.share(a)
	}
	return nil, control.Errorf(control.CodeUnknownVerb, fmt.Sprintf("unknown verb %q", verb))
}

// tap places the phone, waits for the reader loop's event of that tap, and
// removes the phone again.
func (s *simulator) tap(ctx context.Context, r *sim.Reader, p apdu.Transceiver) (control.Event, error) {
	sub := s.d.bus.subscribe()
	defer sub.Stop()
	if err := r.Place(p); err != nil {
		return control.Event{}, control.Errorf(control.CodeNotPermitted, err.Error())
	}
	defer func() {
		r.Remove()
		if err := s.save(); err != nil {
			s.d.log.Warn("saving simulated phones", "err", err)
		}
	}()
	timeout := time.NewTimer(tapWait)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return control.Event{}, control.Errorf(control.CodeInternal, "the daemon is shutting down")
			}
			if (ev.Type == "tap" || ev.Type == "pairing") && ev.Reader == r.Name() {
				return ev, nil
			}
		case <-timeout.C:
			return control.Event{}, control.Errorf(control.CodeTimeout, "no tap seen at "+r.Name()+" within "+tapWait.String())
		case <-ctx.Done():
			return control.Event{}, ctx.Err()
		}
	}
}

// enrolOwner enrols a simulated phone as the owner directly, as owner
// pairing would leave both sides (PROTOCOL.md 6.3).
func (s *simulator) enrolOwner(peer control.Peer, name string) (control.Key, error) {
	p, err := s.phone(name)
	if err != nil {
		return control.Key{}, err
	}
	d := s.d
	l := d.vehicle.Layout
	slotID := make([]byte, l.SlotIDLen)
	token := make([]byte, l.TokenLen)
	if _, err := io.ReadFull(d.rand, slotID); err != nil {
		return control.Key{}, err
	}
	if _, err := io.ReadFull(d.rand, token); err != nil {
		return control.Key{}, err
	}
	k, err := p.NewOwnerKey(d.vehicle.Identifier, d.vehPK, nil, slotID)
	if err != nil {
		return control.Key{}, err
	}
	var out control.Key
	err = d.store.Update(func(tx *keystore.Tx) error {
		if _, err := enrol.Owner(tx, d.rand, d.now(), l, enrol.OwnerRecord{
			PublicKey: k.PK(), Profile: d.cfg.Vehicle.OwnerProfile, FriendlyName: name, SlotID: slotID, Token: token,
		}); err != nil {
			return err
		}
		e, err := tx.Endpoint(keys.KeyIDOf(k.PK()))
		if err == nil {
			out = d.keyView(tx, e, false)
		}
		return err
	})
	if err != nil {
		return control.Key{}, err
	}
	d.keyEvent(peer, "enrol_owner", out)
	return out, s.save()
}

// share has one phone (an owner) share a key with another offline.
func (s *simulator) share(a control.SimShareArgs) (control.SimShare, error) {
	from, err := s.phone(a.From)
	if err != nil {
		return control.SimShare{}, err
	}
	to, err := s.phone(a.To)
	if err != nil {
		return control.SimShare{}, err
	}
	now := s.d.now()
	nb, err1 := optTime(a.NotBefore)
	na, err2 := optTime(a.NotAfter)
	if err := errors.Join(err1, err2); err != nil {
		return control.SimShare{}, control.Errorf(control.CodeBadRequest, "times are RFC 3339: "+err.Error())
	}
	if nb.IsZero() {
		nb = now.Add(-time.Minute).Truncate(time.Second)
	}
	if na.IsZero() {
		na = nb.Add(30 * 24 * time.Hour)
	}
	inv, err := to.Invite(s.d.vehicle.Identifier)
	if err != nil {
		return control.SimShare{}, err
	}
	sh, err := from.Share(inv, endpoint.ShareTerms{Profile: a.Profile, NotBefore: nb, NotAfter: na, FriendlyName: a.Name})
	if err != nil {
		return control.SimShare{}, control.Errorf(control.CodeNotPermitted, err.Error())
	}
	if err := to.Accept(sh); err != nil {
		return control.SimShare{}, err
	}
	return control.SimShare{From: a.From, To: a.To, FriendKey: keys.KeyIDOf(inv.PublicKey).String(), Slot: hexString(sh.SlotIdentifier), MovedEntry: sh.MovedEntry}, s.save()
}

// slowPhone answers like its phone, late.
type slowPhone struct {
	*endpoint.Phone
	delay time.Duration
}

func (s *slowPhone) Transceive(ctx context.Context, c []byte) ([]byte, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Phone.Transceive(ctx, c)
}
