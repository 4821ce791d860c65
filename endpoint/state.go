package endpoint

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// The saved form of a phone: everything it holds, private keys included, so
// the same simulated phone can be tapped again later. Files holding it must
// be private (mode 0600).

type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

func (h *hexBytes) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	*h = d
	return err
}

type savedKey struct {
	VehicleIdentifier hexBytes `json:"vehicle_identifier"`
	VehiclePK         hexBytes `json:"vehicle_pk,omitempty"`
	SK                hexBytes `json:"sk"`
	Role              string   `json:"role"`
	Kpersistent       hexBytes `json:"kpersistent,omitempty"`
	AuthorizedPK      hexBytes `json:"authorized_pk,omitempty"`
	Private           hexBytes `json:"private_mailbox"`
	Confidential      hexBytes `json:"confidential_mailbox"`
}

// savedPKI is the device PKI without Issue: a loaded phone issues its
// endpoint certificates itself.
type savedPKI struct {
	InstanceCASK   hexBytes `json:"instance_ca_sk"`
	InstanceCACert hexBytes `json:"instance_ca_certificate"`
	DeviceCACert   hexBytes `json:"device_oem_ca_certificate"`
}

type savedPhone struct {
	Profile         string      `json:"profile"`
	Versions        []string    `json:"versions"`
	Layout          wire.Layout `json:"layout"`
	Keys            []savedKey  `json:"keys"`
	Pending         []savedKey  `json:"pending,omitempty"`
	DevicePKI       *savedPKI   `json:"device_pki,omitempty"`
	PairingPassword string      `json:"pairing_password,omitempty"`
}

func saveKeys(ks []*Key) []savedKey {
	out := make([]savedKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, savedKey{
			VehicleIdentifier: k.VehicleIdentifier, VehiclePK: k.VehiclePK, SK: hexBytes(keys.Scalar(k.SK).Expose()),
			Role: k.Role, Kpersistent: hexBytes(k.Kpersistent.Expose()), AuthorizedPK: k.AuthorizedPK,
			Private: k.Private, Confidential: k.Confidential,
		})
	}
	return out
}

// Save returns the phone's whole state as JSON, private keys, the device PKI
// and the pairing password included. A DevicePKI's Issue is not saved: the
// loaded phone issues its endpoint certificates itself.
func (p *Phone) Save() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := savedPhone{Profile: p.Profile.Name, Layout: p.Layout, Keys: saveKeys(p.keys), Pending: saveKeys(p.pending), PairingPassword: p.password}
	if d := p.pki; d != nil {
		if d.InstanceCA == nil {
			return nil, errors.New("endpoint: the device PKI has no instance CA key")
		}
		s.DevicePKI = &savedPKI{InstanceCASK: hexBytes(keys.Scalar(d.InstanceCA).Expose()), InstanceCACert: d.InstanceCACert, DeviceCACert: d.DeviceCACert}
	}
	for _, v := range p.Versions {
		s.Versions = append(s.Versions, v.String())
	}
	return json.MarshalIndent(s, "", "  ")
}

// Load rebuilds a phone saved by Save; rand becomes its randomness.
func Load(b []byte, rand io.Reader) (*Phone, error) {
	var s savedPhone
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("endpoint: phone state: %w", err)
	}
	prof, err := wire.ProfileByName(s.Profile)
	if err != nil {
		return nil, fmt.Errorf("endpoint: phone state: %w", err)
	}
	if err := s.Layout.Validate(); err != nil {
		return nil, fmt.Errorf("endpoint: phone state: %w", err)
	}
	var vs []wire.Version
	for _, v := range s.Versions {
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != 2 {
			return nil, fmt.Errorf("endpoint: phone state: version %q", v)
		}
		vs = append(vs, wire.Version(uint16(b[0])<<8|uint16(b[1])))
	}
	if len(vs) == 0 {
		return nil, errors.New("endpoint: phone state: no applet versions")
	}
	p := New(prof, vs, s.Layout, rand)
	load := func(sk []savedKey) ([]*Key, error) {
		var out []*Key
		for i, k := range sk {
			priv, err := keys.SigningKey(k.SK)
			if err != nil {
				return nil, fmt.Errorf("endpoint: phone state: key %d: %w", i, err)
			}
			if len(k.Private) != s.Layout.PrivateLen() || len(k.Confidential) != s.Layout.ConfidentialLen() {
				return nil, fmt.Errorf("endpoint: phone state: key %d: mailboxes do not match the layout", i)
			}
			out = append(out, &Key{
				VehicleIdentifier: k.VehicleIdentifier, VehiclePK: k.VehiclePK, SK: priv, Role: k.Role,
				Kpersistent: []byte(k.Kpersistent), AuthorizedPK: k.AuthorizedPK, Private: k.Private, Confidential: k.Confidential,
			})
		}
		return out, nil
	}
	if p.keys, err = load(s.Keys); err != nil {
		return nil, err
	}
	if p.pending, err = load(s.Pending); err != nil {
		return nil, err
	}
	if s.DevicePKI != nil {
		if p.pki, err = loadPKI(s.DevicePKI); err != nil {
			return nil, fmt.Errorf("endpoint: phone state: device PKI: %w", err)
		}
	}
	p.password = s.PairingPassword
	return p, nil
}

// loadPKI checks a saved device PKI: the instance CA key and its
// certificate, which must match, and the device OEM CA certificate.
func loadPKI(s *savedPKI) (*DevicePKI, error) {
	ca, err := keys.SigningKey(s.InstanceCASK)
	if err != nil {
		return nil, errors.New("instance CA key is not a P-256 scalar")
	}
	cert, err := x509.ParseCertificate(s.InstanceCACert)
	if err != nil {
		return nil, fmt.Errorf("instance CA certificate: %w", err)
	}
	if !ca.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the instance CA key is not the instance CA certificate's")
	}
	if _, err := x509.ParseCertificate(s.DeviceCACert); err != nil {
		return nil, fmt.Errorf("device OEM CA certificate: %w", err)
	}
	return &DevicePKI{InstanceCA: ca, InstanceCACert: s.InstanceCACert, DeviceCACert: s.DeviceCACert}, nil
}
