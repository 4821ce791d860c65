package endpoint

import (
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"time"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/pairing/message"
	"github.com/dkvehicled/dkvehicled/pairing/spake2plus"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/securechannel"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// DevicePKI is the phone maker's PKI on the phone: the instance CA that
// certifies the keys this phone creates, and the device OEM CA above it
// (cross-signed by the vehicle OEM).
type DevicePKI struct {
	InstanceCA     *ecdsa.PrivateKey
	InstanceCACert []byte // DER
	DeviceCACert   []byte // DER
	// Issue, when set, makes the endpoint certificate of a new key, signed
	// by the instance CA. When nil, the phone makes it itself (see issue).
	Issue func(pub *ecdsa.PublicKey) ([]byte, error)
}

// endpointValidity is how long the phone's own endpoint certificates are
// valid (from an hour before they are made, and never past the instance CA).
const endpointValidity = 10 * 365 * 24 * time.Hour

// issue makes the endpoint certificate of a new key: with Issue when set,
// otherwise signed here with the instance CA (subject CN "endpoint", not a
// CA, KeyUsage digitalSignature), drawing from rand.
func (d *DevicePKI) issue(rand io.Reader, pub *ecdsa.PublicKey) ([]byte, error) {
	if d.Issue != nil {
		return d.Issue(pub)
	}
	ca, err := x509.ParseCertificate(d.InstanceCACert)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(endpointValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "endpoint"},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	return x509.CreateCertificate(rand, tmpl, ca, pub, d.InstanceCA)
}

// maxScryptN bounds the work a vehicle can ask of the phone; PROTOCOL.md 6
// fixes r = 8 and p = 1, which bound the rest.
const maxScryptN = 1 << 20

// SetDevicePKI gives the phone its framework, so it can be paired.
func (p *Phone) SetDevicePKI(d *DevicePKI) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pki = d
}

// DevicePKI returns the phone's framework (nil: the phone cannot pair).
func (p *Phone) DevicePKI() *DevicePKI {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pki
}

// SetPairingPassword is the owner typing the one-time pairing password: the
// phone is ready for pairing until it pairs or the password is cleared ("").
func (p *Phone) SetPairingPassword(password string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.password = password
}

// pairingSession is the state of one pairing on the phone's side.
type pairingSession struct {
	prover  *spake2plus.Prover
	result  *spake2plus.Result
	ch      *securechannel.Channel
	kc      *message.KeyCreation
	vehPK   []byte
	sk      *ecdsa.PrivateKey
	created []byte // GET DATA's plaintext
	done    bool   // GET DATA answered
}

func (p *Phone) selectFramework() apdu.Response {
	p.s = session{}
	if p.pki == nil {
		return status(apdu.SWFileNotFound)
	}
	p.s.fw = &pairingSession{}
	ready := byte(0x00)
	if p.password != "" {
		ready = wire.PairingReady
	}
	sel := message.Select{FrameworkVersions: []wire.Version{wire.FrameworkVersion}, AppletVersions: wire.EncodeVersions(p.Versions), Ready: ready}
	return apdu.Response{Data: sel.Encode(), SW: apdu.SWOK}
}

// framework answers the commands of owner pairing (PROTOCOL.md 6).
func (p *Phone) framework(c apdu.Command) apdu.Response {
	fw := p.s.fw
	switch {
	case c.CLA == wire.CLAProp && c.INS == wire.INSSpakeRequest:
		if fw.prover != nil || fw.result != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		if p.password == "" {
			return status(apdu.SWNotReadyForPairing)
		}
		req, err := message.ParseRequest(c.Data)
		if err != nil || req.Version != wire.FrameworkVersion || req.Scrypt.N > maxScryptN ||
			req.Scrypt.R != 8 || req.Scrypt.P != 1 {
			return status(apdu.SWReferencedDataNF)
		}
		w0, w1, _, err := spake2plus.Password([]byte(p.password), req.Scrypt.Salt, req.Scrypt.N, req.Scrypt.R, req.Scrypt.P)
		if err != nil {
			return status(apdu.SWReferencedDataNF)
		}
		x, err := spake2plus.DrawScalar(p.Rand)
		if err != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		ctx := append(append([]byte(nil), wire.PairingContextLabel...), apdu.EncodeTLV(wire.TagSpakeVersion, req.Version.Bytes())...)
		ctx = apdu.AppendTLV(ctx, wire.TagVersions, req.AppletVersions)
		if fw.prover, err = spake2plus.NewProver(spake2plus.Params{Context: ctx, MAC: spake2plus.CMAC}, w0, w1, x); err != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		return apdu.Response{Data: apdu.EncodeTLV(wire.TagShareX, fw.prover.Share()), SW: apdu.SWOK}

	case c.CLA == wire.CLAProp && c.INS == wire.INSSpakeVerify:
		if fw.prover == nil || fw.result != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		v, err := message.ParseVerify(c.Data)
		if err != nil {
			return status(apdu.SWReferencedDataNF)
		}
		res, err := fw.prover.Finish(v.ShareY)
		if err != nil || res.CheckConfirmV(v.ConfirmV) != nil {
			// Another password, or changed messages: this pairing is over,
			// and the vehicle's OP CONTROL FLOW still gets its answer.
			fw.prover = nil
			return status(apdu.SWReferencedDataNF)
		}
		sys, err := hkdf.Key(sha256.New, res.KShared, nil, string(wire.LabelSystemKeys), 64)
		if err != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		if fw.ch, err = securechannel.New(keys.SessionKeys{Enc: sys[0:16], Mac: sys[16:32], Rmac: sys[32:48]}, 1); err != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		fw.result = res
		return apdu.Response{Data: apdu.EncodeTLV(wire.TagConfirmP, res.ConfirmP), SW: apdu.SWOK}

	case c.CLA == wire.CLASecure && c.INS == wire.INSWriteData:
		if fw.ch == nil || fw.kc != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		plain, err := fw.ch.UnwrapCommand(c.Data)
		if err != nil {
			p.s = session{}
			return status(apdu.SWSecurityNotSatisf)
		}
		kc, err := message.ParseKeyCreation(plain)
		if err != nil {
			return status(apdu.SWReferencedDataNF)
		}
		vehPK, err := checkVehicleCert(kc)
		if err != nil {
			return status(apdu.SWSecurityNotSatisf)
		}
		sk, err := keys.NewSigningKey(p.Rand)
		if err != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		cert, err := p.pki.issue(p.Rand, &sk.PublicKey)
		if err != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		sig, err := keys.Sign(sk, append(append([]byte(nil), plain...), keys.EncodePoint(&sk.PublicKey)...))
		if err != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		fw.kc, fw.vehPK, fw.sk = kc, vehPK, sk
		fw.created = message.Created{EndpointCert: cert, InstanceCA: p.pki.InstanceCACert, DeviceCA: p.pki.DeviceCACert, Signature: sig}.Encode()
		data, err := fw.ch.WrapResponse(nil)
		if err != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		return apdu.Response{Data: data, SW: apdu.SWOK}

	case c.CLA == wire.CLASecure && c.INS == wire.INSGetData && c.P1 == wire.GetDataP1 && c.P2 == wire.GetDataP2:
		if fw.kc == nil || fw.done {
			return status(apdu.SWConditionsNotSatis)
		}
		if _, err := fw.ch.UnwrapCommand(c.Data); err != nil {
			p.s = session{}
			return status(apdu.SWSecurityNotSatisf)
		}
		data, err := fw.ch.WrapResponse(fw.created)
		if err != nil {
			return status(apdu.SWConditionsNotSatis)
		}
		fw.done = true
		return apdu.Response{Data: data, SW: apdu.SWOK}

	case c.CLA == wire.CLAProp && c.INS == wire.INSControl:
		if c.P1 == 0x01 && fw.done {
			p.installOwnerKey(fw.kc.VehicleIdentifier, fw.vehPK, fw.kc.AuthorizedPK, fw.kc.OwnerSlot, fw.sk)
			p.password = ""
		}
		p.s = session{}
		return status(apdu.SWOK)
	}
	return status(apdu.SWINSNotSupported)
}

// checkVehicleCert checks the vehicle certificate against authorized_PK,
// directly or through the intermediate, and returns the vehicle's key.
func checkVehicleCert(kc *message.KeyCreation) ([]byte, error) {
	root, err := keys.ParseVerifyingKey(kc.AuthorizedPK)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(kc.VehicleCert)
	if err != nil {
		return nil, err
	}
	signer := root
	if kc.Intermediate != nil {
		inter, err := x509.ParseCertificate(kc.Intermediate)
		if err != nil {
			return nil, err
		}
		if err := checkSignedBy(inter, root); err != nil {
			return nil, err
		}
		var ok bool
		if signer, ok = inter.PublicKey.(*ecdsa.PublicKey); !ok {
			return nil, errors.New("intermediate without an ECDSA key")
		}
	}
	if err := checkSignedBy(cert, signer); err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("vehicle certificate without an ECDSA key")
	}
	b := keys.EncodePoint(pub)
	if _, err := keys.ParseVerifyingKey(b); err != nil {
		return nil, err
	}
	return b, nil
}

// checkSignedBy checks a certificate's ECDSA-SHA256 signature against key.
func checkSignedBy(c *x509.Certificate, key *ecdsa.PublicKey) error {
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		return errors.New("not ECDSA with SHA-256")
	}
	d := sha256.Sum256(c.RawTBSCertificate)
	if !ecdsa.VerifyASN1(key, d[:], c.Signature) {
		return errors.New("signature does not verify")
	}
	return nil
}
