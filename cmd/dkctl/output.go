package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dkvehicled/dkvehicled/control"
)

// The human forms of the results; -json prints the daemon's JSON instead.

func showStatus(w io.Writer, s control.Status) {
	sw := "on"
	if !s.DigitalKeyEnabled {
		sw = "off"
		if s.DisabledReason != "" {
			sw += " (" + s.DisabledReason + ")"
		}
	}
	engine := "not authorized"
	if !s.Actuators.EngineAuthorizedUntil.IsZero() {
		engine = "authorized until " + when(s.Actuators.EngineAuthorizedUntil, dateTime)
	}
	door := "unknown"
	if d := s.Actuators.DoorOpen; d != nil {
		door = choose(*d, "open", "closed")
	}
	st := s.Store
	t := newTable(w)
	row(t, "version", s.Version)
	row(t, "uptime", uptime(s.Uptime))
	row(t, "profile", s.Profile)
	row(t, "vehicle", s.VehicleIdentifier)
	row(t, "digital key", sw)
	row(t, "simulator", choose(s.Simulator, "on", "off"))
	row(t, "lock", dash(s.Actuators.Lock))
	row(t, "engine", engine)
	row(t, "door", door)
	row(t, "store", fmt.Sprintf("%s (%s)", st.Path, size(st.FileBytes)))
	row(t, "owner", keyLabel(st.Owner, ""))
	row(t, "keys", fmt.Sprintf("%d (%d active)", st.Endpoints, st.Active))
	row(t, "slots", fmt.Sprintf("%d (%d issued)", st.Slots, st.IssuedSlots))
	row(t, "audit entries", strconv.Itoa(st.AuditEntries))
	row(t, "pairing", pairingLine(s.Pairing))
	t.Flush()

	fmt.Fprintln(w)
	t = newTable(w)
	row(t, "READER", "ROLE", "BACKEND", "ENABLED", "HEALTH", "SINCE", "TAPS", "ERRORS", "RECOVERIES", "LAST TAP", "FIRMWARE", "DETAIL")
	for _, r := range s.Readers {
		fw := dash(r.Firmware)
		if r.ECP {
			fw += " (ECP)"
		}
		row(t, r.Name, r.Role, r.Backend, choose(r.Enabled, "yes", "no"), choose(r.OK, "ok", "failing"), when(r.Since, dateTime),
			strconv.FormatUint(r.Taps, 10), strconv.FormatUint(r.Errors, 10), strconv.FormatUint(r.Recoveries, 10),
			when(r.LastTap, dateTime), fw, r.Detail)
	}
	t.Flush()
}

// pairingLine sums up owner pairing in one line.
func pairingLine(p control.PairingStatus) string {
	if !p.Available {
		return "not configured (vehicle.certificate and vehicle.oem_root)"
	}
	mode := "off"
	if p.Mode {
		mode = "ON until " + when(p.Until, dateTime)
	}
	verifier := "no verifier"
	if p.Verifier {
		verifier = fmt.Sprintf("verifier with %d attempt(s) left", p.AttemptsLeft)
	}
	return "mode " + mode + ", " + verifier
}

func showPairing(w io.Writer, p control.PairingStatus) {
	fmt.Fprintln(w, "pairing:", pairingLine(p))
}

func showVehicle(w io.Writer, v control.VehicleInfo) {
	t := newTable(w)
	row(t, "profile", v.Profile)
	row(t, "vehicle identifier", v.VehicleIdentifier)
	row(t, "vehicle public key", v.VehiclePublicKey)
	row(t, "certificate SHA-256", dash(v.CertificateSHA256))
	row(t, "OEM root SHA-256", dash(v.OEMRootSHA256))
	row(t, "slot id length", strconv.Itoa(v.SlotIDLen))
	row(t, "immobilizer token length", strconv.Itoa(v.ImmobilizerTokenLen))
	t.Flush()
}

func showKeys(w io.Writer, keys []control.Key) {
	t := newTable(w)
	row(t, "KEY", "ROLE", "NAME", "PROFILE", "STATE", "SLOT", "VALID", "LAST USED", "FAST PATH")
	for _, k := range keys {
		row(t, shortID(k.KeyID), k.Role, dash(k.FriendlyName), profileLabel(k), k.State, slotLabel(k),
			window(k.NotBefore, k.NotAfter), when(k.LastUsed, dateTime), choose(k.HasKpersistent, "yes", "no"))
	}
	t.Flush()
}

func showKey(w io.Writer, k control.Key) {
	t := newTable(w)
	row(t, "key", k.KeyID)
	row(t, "role", k.Role)
	row(t, "name", dash(k.FriendlyName))
	row(t, "profile", profileLabel(k))
	row(t, "state", k.State)
	row(t, "slot", slotLabel(k))
	row(t, "valid", window(k.NotBefore, k.NotAfter))
	row(t, "created", when(k.Created, dateTime))
	row(t, "last used", when(k.LastUsed, dateTime))
	row(t, "fast path", choose(k.HasKpersistent, "yes", "no"))
	if k.PublicKey != "" {
		row(t, "public key", k.PublicKey)
	}
	t.Flush()
}

func profileLabel(k control.Key) string {
	if k.ProfileName == "" {
		return strconv.Itoa(k.Profile)
	}
	return fmt.Sprintf("%d (%s)", k.Profile, k.ProfileName)
}

func slotLabel(k control.Key) string {
	if k.SlotState == "" {
		return dash(k.Slot)
	}
	return fmt.Sprintf("%s (%s)", dash(k.Slot), k.SlotState)
}

func showSlots(w io.Writer, slots []control.Slot) {
	t := newTable(w)
	row(t, "SLOT", "ENTRY", "STATE", "ISSUED TO", "BOUND TO")
	for _, s := range slots {
		row(t, s.Slot, strconv.Itoa(s.Entry), s.State, keyLabel(s.IssuedTo, ""), keyLabel(s.BoundEndpoint, ""))
	}
	t.Flush()
}

func showSlot(w io.Writer, s control.Slot) { showSlots(w, []control.Slot{s}) }

func showProfiles(w io.Writer, profiles []control.Profile) {
	t := newTable(w)
	row(t, "ID", "NAME", "ACCESS", "ENGINE", "SPEED LIMIT")
	for _, p := range profiles {
		limit := "-"
		if p.SpeedLimitKPH > 0 {
			limit = fmt.Sprintf("%d km/h", p.SpeedLimitKPH)
		}
		row(t, strconv.Itoa(p.ID), p.Name, choose(p.Access, "yes", "no"), choose(p.Engine, "yes", "no"), limit)
	}
	t.Flush()
}

func showAudit(w io.Writer, entries []control.AuditEntry) {
	t := newTable(w)
	row(t, append([]string{"SEQ"}, eventHeader...)...)
	for _, a := range entries {
		row(t, append([]string{strconv.FormatUint(a.Seq, 10)}, eventCells(a.Event, dateTime)...)...)
	}
	t.Flush()
}

func showMetrics(w io.Writer, m control.Metrics) {
	fmt.Fprint(w, m.Text)
	if m.Text != "" && !strings.HasSuffix(m.Text, "\n") {
		fmt.Fprintln(w)
	}
}

func showStoreCheck(w io.Writer, r control.StoreCheck) {
	for _, p := range r.Problems {
		fmt.Fprintln(w, p)
	}
	if len(r.Problems) == 0 {
		fmt.Fprintf(w, "store ok: %d keys, %d slots (%s)\n", r.Keys, r.Slots, r.Path)
	}
}

func showPhones(w io.Writer, phones []control.SimPhone) {
	t := newTable(w)
	row(t, "PHONE", "ON READER", "KEYS")
	for _, p := range phones {
		keys := make([]string, len(p.Keys))
		for i, k := range p.Keys {
			keys[i] = shortID(k)
		}
		row(t, p.Name, dash(p.Reader), dash(strings.Join(keys, ", ")))
	}
	t.Flush()
}

func showPhone(w io.Writer, p control.SimPhone) { showPhones(w, []control.SimPhone{p}) }

func showSimReader(w io.Writer, r control.SimReader) {
	if r.Phone == "" {
		fmt.Fprintf(w, "reader %s: no phone\n", r.Reader)
		return
	}
	fmt.Fprintf(w, "reader %s: phone %s\n", r.Reader, r.Phone)
}

func showShare(w io.Writer, s control.SimShare) {
	t := newTable(w)
	row(t, "from", s.From)
	row(t, "to", s.To)
	row(t, "friend key", s.FriendKey)
	row(t, "slot", dash(s.Slot))
	row(t, "moved entry", strconv.Itoa(s.MovedEntry))
	t.Flush()
}

func showEnrolment(w io.Writer, en control.Enrolment) {
	t := newTable(w)
	row(t, "owner key", en.KeyID)
	row(t, "vehicle", en.VehicleIdentifier)
	row(t, "vehicle key", en.VehiclePublicKey)
	row(t, "owner slot", en.Slot)
	row(t, "profile", en.Profile)
	t.Flush()
}
