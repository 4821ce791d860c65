package keystore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// AuditRecord is one entry of the audit log: an opaque JSON document with
// its sequence number.
type AuditRecord struct {
	Seq  uint64
	Data []byte
}

// AppendAudit adds an entry to the audit log and drops the oldest entries
// beyond the store's limit. It returns the entry's sequence number.
func (t *Tx) AppendAudit(data []byte) (uint64, error) {
	if !t.writable {
		return 0, errReadOnly
	}
	b := t.tx.Bucket(bucketAudit)
	seq := uint64(1)
	if v := t.meta().Get(keyAuditSeq); len(v) == 8 {
		seq = binary.BigEndian.Uint64(v) + 1
	}
	if err := t.meta().Put(keyAuditSeq, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return 0, err
	}
	if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), data); err != nil {
		return 0, err
	}
	// Sequence numbers are contiguous from the oldest kept entry.
	c := b.Cursor()
	for k, _ := c.First(); k != nil && seq-binary.BigEndian.Uint64(k)+1 > uint64(t.s.auditLimit); k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// Audit returns the newest limit entries, oldest first.
func (t *Tx) Audit(limit int) ([]AuditRecord, error) {
	var out []AuditRecord
	c := t.tx.Bucket(bucketAudit).Cursor()
	for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
		if len(k) != 8 {
			return nil, fmt.Errorf("%w: audit key %x", ErrCorrupt, k)
		}
		out = append(out, AuditRecord{Seq: binary.BigEndian.Uint64(k), Data: append([]byte(nil), v...)})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Settings are the vehicle's switches that survive a restart.
type Settings struct {
	// DigitalKeyDisabled is the vehicle-wide switch (valet, service).
	DigitalKeyDisabled bool   `json:"digital_key_disabled,omitempty"`
	DisabledReason     string `json:"disabled_reason,omitempty"`
	// DisabledReaders lists readers turned off from the control socket.
	DisabledReaders []string `json:"disabled_readers,omitempty"`
}

var keySettings = []byte("settings")

// Settings returns the stored settings (zero when none were stored).
func (t *Tx) Settings() (Settings, error) {
	var s Settings
	v := t.meta().Get(keySettings)
	if v == nil {
		return s, nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return s, fmt.Errorf("%w: settings: %v", ErrCorrupt, err)
	}
	return s, nil
}

// PutSettings stores the settings.
func (t *Tx) PutSettings(s Settings) error {
	if !t.writable {
		return errReadOnly
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return t.meta().Put(keySettings, b)
}
