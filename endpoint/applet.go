package endpoint

import (
	"crypto/ecdh"
	"io"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/securechannel"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// session is the state of one tap on the phone's side.
type session struct {
	selected   bool
	versions   []byte // the 5C value sent at SELECT
	key        *Key
	eSK        *ecdh.PrivateKey
	tr         keys.Transcript
	fast       *securechannel.Channel // keys from the fast path, if P1 = 01 and a Kpersistent exists
	ch         *securechannel.Channel // the channel in use after AUTH1 or the first EXCHANGE
	chained    []byte
	pendingOut []byte
	pendingSW  uint16
	fw         *pairingSession // the framework is selected
}

func status(sw uint16) apdu.Response { return apdu.Response{SW: sw} }

func (p *Phone) process(c apdu.Command) apdu.Response {
	switch {
	case c.CLA == wire.CLAISO && c.INS == wire.INSSelect && c.P1 == wire.P1SelectName && string(c.Data) == string(wire.FrameworkAID):
		return p.selectFramework()
	case c.CLA == wire.CLAISO && c.INS == wire.INSSelect:
		return p.selectApplet(c)
	case p.s.fw != nil:
		return p.framework(c)
	case !p.s.selected:
		return status(apdu.SWConditionsNotSatis)
	case c.CLA == wire.CLAProp && c.INS == wire.INSAuth0:
		return p.auth0(c)
	case c.CLA == wire.CLAProp && c.INS == wire.INSAuth1:
		return p.auth1(c)
	case c.CLA == wire.CLASecure && c.INS == wire.INSExchange:
		return p.exchange(c)
	case c.CLA == wire.CLAProp && c.INS == wire.INSControl:
		p.s = session{}
		return status(apdu.SWOK)
	}
	return status(apdu.SWINSNotSupported)
}

func (p *Phone) selectApplet(c apdu.Command) apdu.Response {
	p.s = session{}
	if c.P1 != wire.P1SelectName || string(c.Data) != string(p.Profile.AppletAID) {
		return status(apdu.SWFileNotFound)
	}
	p.s.selected = true
	p.s.versions = wire.EncodeVersions(p.Versions)
	return apdu.Response{Data: apdu.EncodeTLV(wire.TagVersions, p.s.versions), SW: apdu.SWOK}
}

func (p *Phone) auth0(c apdu.Command) apdu.Response {
	f, err := apdu.Fields(c.Data, wire.TagVersions, wire.TagVehicleEPK, wire.TagTxID, wire.TagVehicleID)
	if err != nil || len(f) != 4 || len(f[wire.TagVersions]) != 2 || len(f[wire.TagTxID]) != wire.TxIDLen ||
		len(f[wire.TagVehicleID]) != p.Profile.IdentifierLen || (c.P1 != wire.P1Standard && c.P1 != wire.P1Fast) {
		return status(apdu.SWWrongData)
	}
	if _, err := keys.ParsePoint(f[wire.TagVehicleEPK]); err != nil {
		return status(apdu.SWWrongData)
	}
	ver := wire.Version(uint16(f[wire.TagVersions][0])<<8 | uint16(f[wire.TagVersions][1]))
	if !p.offers(ver) {
		return status(apdu.SWWrongData)
	}
	k := p.keyFor(f[wire.TagVehicleID])
	if k == nil {
		return status(apdu.SWReferencedDataNF)
	}
	eSK, err := keys.NewEphemeral(p.Rand)
	if err != nil {
		return status(apdu.SWConditionsNotSatis)
	}
	ePK := eSK.PublicKey().Bytes()
	p.s.key, p.s.eSK = k, eSK
	p.s.tr = keys.Transcript{
		Profile: p.Profile, Version: ver, EndpointVersions: p.s.versions,
		VehicleEPK: f[wire.TagVehicleEPK], EndpointEPK: ePK, TxID: f[wire.TagTxID], P1: c.P1, P2: c.P2,
	}
	out := apdu.EncodeTLV(wire.TagEndpointEPK, ePK)
	if c.P1 == wire.P1Fast {
		var crypt []byte
		if len(k.Kpersistent) > 0 {
			info := p.s.tr.FastInfo(k.VehiclePK, k.VehicleIdentifier, k.PK())
			okm := keys.NewFastKey(k.Kpersistent).OKM(info)
			crypt = okm[:wire.CryptogramLen]
			if p.s.fast, err = securechannel.New(keys.SessionFromOKM(okm), 0); err != nil {
				return status(apdu.SWConditionsNotSatis)
			}
		} else {
			crypt = make([]byte, wire.CryptogramLen)
			if _, err := io.ReadFull(p.Rand, crypt); err != nil {
				return status(apdu.SWConditionsNotSatis)
			}
		}
		out = apdu.AppendTLV(out, wire.TagCryptogram, crypt)
	}
	return apdu.Response{Data: out, SW: apdu.SWOK}
}

func (p *Phone) offers(v wire.Version) bool {
	for _, o := range p.Versions {
		if o == v {
			return true
		}
	}
	return false
}

func (p *Phone) auth1(c apdu.Command) apdu.Response {
	if p.s.eSK == nil || p.s.ch != nil {
		return status(apdu.SWConditionsNotSatis)
	}
	f, err := apdu.Fields(c.Data, wire.TagSignature)
	if err != nil || len(f[wire.TagSignature]) != wire.SignatureLen || c.P1 != 0 || c.P2 != 0 {
		return status(apdu.SWWrongData)
	}
	k, tr := p.s.key, &p.s.tr
	vpk, err := keys.ParseVerifyingKey(k.VehiclePK)
	if err != nil {
		return status(apdu.SWSecurityNotSatisf)
	}
	vtbs := keys.TBS(k.VehicleIdentifier, tr.EndpointEPK, tr.VehicleEPK, tr.TxID, wire.UsageVehicle)
	if !keys.Verify(vpk, vtbs, f[wire.TagSignature]) {
		p.s = session{}
		return status(apdu.SWSecurityNotSatisf)
	}
	vePK, _ := keys.ParsePoint(tr.VehicleEPK)
	z, err := keys.ECDH(p.s.eSK, vePK)
	if err != nil {
		return status(apdu.SWSecurityNotSatisf)
	}
	session, kp := tr.DeriveStandard(keys.X963(z, tr.TxID))
	ch, err := securechannel.New(session, 0)
	if err != nil {
		return status(apdu.SWConditionsNotSatis)
	}
	etbs := keys.TBS(k.VehicleIdentifier, tr.EndpointEPK, tr.VehicleEPK, tr.TxID, wire.UsageEndpoint)
	sig, err := keys.Sign(k.SK, etbs)
	if err != nil {
		return status(apdu.SWConditionsNotSatis)
	}
	var ident []byte
	if p.Profile.EndpointIDIn4E {
		id := k.KeyID()
		ident = id[:wire.HomeKeyEndpointIDLen]
	} else {
		off := p.Layout.SlotEntry(0)
		ident = k.Private[off : off+p.Layout.SlotIDLen]
	}
	plain := apdu.EncodeTLV(wire.TagIdentifier, ident)
	plain = apdu.AppendTLV(plain, wire.TagSignature, sig)
	data, err := ch.WrapResponse(plain)
	if err != nil {
		return status(apdu.SWConditionsNotSatis)
	}
	k.Kpersistent = kp
	p.s.ch, p.s.fast = ch, nil
	return apdu.Response{Data: data, SW: apdu.SWOK}
}

func (p *Phone) exchange(c apdu.Command) apdu.Response {
	if p.s.ch == nil {
		p.s.ch, p.s.fast = p.s.fast, nil
	}
	if p.s.ch == nil || p.Profile.EndpointIDIn4E {
		return status(apdu.SWConditionsNotSatis)
	}
	plain, err := p.s.ch.UnwrapCommand(c.Data)
	if err != nil {
		p.s = session{}
		return status(apdu.SWSecurityNotSatisf)
	}
	out := p.applyExchange(p.s.key, plain)
	data, err := p.s.ch.WrapResponse(out)
	if err != nil {
		return status(apdu.SWConditionsNotSatis)
	}
	return apdu.Response{Data: data, SW: apdu.SWOK}
}

// applyExchange runs the operations of one EXCHANGE on copies of the
// mailboxes and keeps the copies only if every operation succeeded.
func (p *Phone) applyExchange(k *Key, plain []byte) []byte {
	ops, err := wire.DecodeExchange(plain)
	if err != nil {
		return wire.EncodeExchangeResponse(nil, wire.StatusMalformed)
	}
	priv := append([]byte(nil), k.Private...)
	conf := append([]byte(nil), k.Confidential...)
	var reads [][]byte
	for _, o := range ops {
		box := priv
		if o.Confidential() {
			box = conf
		}
		n := o.Length
		if o.Tag == wire.OpWritePrivate || o.Tag == wire.OpWriteConfidential {
			n = len(o.Data)
		}
		if o.Offset+n > len(box) {
			return wire.EncodeExchangeResponse(nil, wire.StatusOutOfBounds)
		}
		switch o.Tag {
		case wire.OpReadPrivate, wire.OpReadConfidential:
			reads = append(reads, append([]byte(nil), box[o.Offset:o.Offset+n]...))
		case wire.OpWritePrivate, wire.OpWriteConfidential:
			copy(box[o.Offset:], o.Data)
		case wire.OpFillPrivate:
			for i := o.Offset; i < o.Offset+n; i++ {
				box[i] = o.Fill
			}
		}
	}
	k.Private, k.Confidential = priv, conf
	return wire.EncodeExchangeResponse(reads, wire.StatusDone)
}
