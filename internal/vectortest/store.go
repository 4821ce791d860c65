package vectortest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/dkvehicled/dkvehicled/keystore"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
)

// Snapshot converts a semantic store of the vectors into a keystore snapshot.
func (s Store) Snapshot(t testing.TB) *keystore.Snapshot {
	t.Helper()
	out := &keystore.Snapshot{}
	if s.Owner != nil {
		o := keyID(t, *s.Owner)
		out.Owner = &o
	}
	for id, e := range s.Endpoints {
		ep := &keystore.Endpoint{
			KeyID: keyID(t, id), PublicKey: e.PublicKey, SlotID: e.SlotIdentifier,
			Role: keystore.Role(e.Role), Profile: e.Profile, State: keystore.State(e.State),
			Kpersistent: []byte(e.Kpersistent), FriendlyName: e.FriendlyName, LTSS: []byte(e.LTSS),
			StoreOrder: e.StoreOrder, Created: Time(t, e.Created),
		}
		ep.NotBefore = optTime(t, e.NotBefore)
		ep.NotAfter = optTime(t, e.NotAfter)
		ep.LastUsed = optTime(t, e.LastUsed)
		out.Endpoints = append(out.Endpoints, ep)
	}
	sort.Slice(out.Endpoints, func(i, j int) bool { return out.Endpoints[i].StoreOrder < out.Endpoints[j].StoreOrder })
	for id, sl := range s.Slots {
		b, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		st := &keystore.Slot{ID: b, Entry: sl.Entry, IssuedTo: keyID(t, sl.IssuedTo), Token: []byte(sl.ImmobilizerToken), State: keystore.SlotState(sl.State)}
		if sl.BoundEndpoint != nil {
			k := keyID(t, *sl.BoundEndpoint)
			st.BoundEndpoint = &k
		}
		out.Slots = append(out.Slots, st)
	}
	if v := s.Verifier; v != nil {
		out.Verifier = &keystore.Verifier{W0: []byte(v.W0), L: []byte(v.L), Salt: v.Salt, N: v.N, R: v.R, P: v.P, AttemptsLeft: v.AttemptsLeft}
	}
	return out
}

// FromSnapshot converts a keystore snapshot into the vectors' semantic store.
func FromSnapshot(s *keystore.Snapshot) Store {
	out := Store{Endpoints: map[string]Endpoint{}, Slots: map[string]Slot{}}
	if s.Owner != nil {
		o := s.Owner.String()
		out.Owner = &o
	}
	for _, e := range s.Endpoints {
		out.Endpoints[e.KeyID.String()] = Endpoint{
			PublicKey: e.PublicKey, SlotIdentifier: e.SlotID, Role: string(e.Role), Profile: e.Profile,
			State: string(e.State), Kpersistent: Hex(e.Kpersistent.Expose()), NotBefore: fmtTime(e.NotBefore),
			NotAfter: fmtTime(e.NotAfter), FriendlyName: e.FriendlyName, LTSS: Hex(e.LTSS.Expose()),
			StoreOrder: e.StoreOrder, Created: e.Created.UTC().Format(time.RFC3339), LastUsed: fmtTime(e.LastUsed),
		}
	}
	for _, sl := range s.Slots {
		v := Slot{Entry: sl.Entry, IssuedTo: sl.IssuedTo.String(), ImmobilizerToken: Hex(sl.Token.Expose()), State: string(sl.State)}
		if sl.BoundEndpoint != nil {
			b := sl.BoundEndpoint.String()
			v.BoundEndpoint = &b
		}
		out.Slots[hex.EncodeToString(sl.ID)] = v
	}
	if v := s.Verifier; v != nil {
		out.Verifier = &Verifier{W0: Hex(v.W0.Expose()), L: Hex(v.L.Expose()), Salt: v.Salt, N: v.N, R: v.R, P: v.P, AttemptsLeft: v.AttemptsLeft}
	}
	return out
}

// StoreDiff lists the differences between two semantic stores, ignoring the
// informative field created.
func StoreDiff(got, want Store) []string {
	norm := func(s Store) map[string]any {
		s2 := s
		s2.Endpoints = map[string]Endpoint{}
		for k, e := range s.Endpoints {
			e.Created = ""
			s2.Endpoints[k] = e
		}
		b, _ := json.Marshal(s2)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	var diffs []string
	diffMaps("", norm(got), norm(want), &diffs)
	return diffs
}

func diffMaps(path string, got, want any, out *[]string) {
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if !gok || !wok {
		if !reflect.DeepEqual(got, want) {
			*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, got, want))
		}
		return
	}
	keys := map[string]bool{}
	for k := range gm {
		keys[k] = true
	}
	for k := range wm {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		p := k
		if path != "" {
			p = path + "." + k
		}
		diffMaps(p, gm[k], wm[k], out)
	}
}

func keyID(t testing.TB, s string) keys.KeyID {
	k, err := keys.ParseKeyID(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func optTime(t testing.TB, s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	return Time(t, *s)
}

func fmtTime(tm time.Time) *string {
	if tm.IsZero() {
		return nil
	}
	s := tm.UTC().Format(time.RFC3339)
	return &s
}
