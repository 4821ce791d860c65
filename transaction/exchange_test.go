package transaction_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/dkvehicled/dkvehicled/apdu"
	"github.com/dkvehicled/dkvehicled/internal/vectortest"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/securechannel"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// TestVectorExchange reproduces the scripted EXCHANGE session of
// ccc_exchange.json on the vehicle side: SELECT and AUTH0 through the engine,
// the fast-path session keys from the stored Kpersistent, then every
// EXCHANGE command byte for byte, every channel trace, and the decoded
// statuses and reads of every answer.
func TestVectorExchange(t *testing.T) {
	var f struct {
		Vehicle            vectortest.Vehicle      `json:"vehicle"`
		Reader             string                  `json:"reader"`
		Now                string                  `json:"now"`
		VehicleState       vectortest.VehicleState `json:"vehicle_state"`
		VehicleStoreBefore vectortest.Store        `json:"vehicle_store_before"`
		InjectedRandomness vectortest.Randomness   `json:"injected_randomness"`
		Session            vectortest.Session      `json:"session"`
		SelectAuth0        []vectortest.Step       `json:"select_auth0"`
		Cases              []struct {
			Name     string           `json:"name"`
			Exchange vectortest.Step  `json:"exchange"`
			Status   vectortest.Hex   `json:"status"`
			Reads    []vectortest.Hex `json:"reads"`
		} `json:"cases"`
		FinalControlFlow vectortest.Step   `json:"final_control_flow"`
		APDUSequence     []vectortest.APDU `json:"apdu_sequence"`
	}
	vectortest.Load(t, "ccc_exchange.json", &f)
	rec := &vectortest.Record{Reader: f.Reader, Now: f.Now, VehicleState: f.VehicleState, VehicleStoreBefore: f.VehicleStoreBefore, InjectedRandomness: f.InjectedRandomness}
	if len(f.Cases) != 12 || len(f.SelectAuth0) != 2 {
		t.Fatalf("%d cases, %d opening steps", len(f.Cases), len(f.SelectAuth0))
	}

	// SELECT and AUTH0 as the engine sends them.
	st := newStore(t, f.VehicleStoreBefore)
	var steps []transaction.Step
	v := vehicleOf(t, f.Vehicle)
	e, err := transaction.New(transaction.Config{Vehicle: v, Store: st, Rand: vectortest.NewRand(f.InjectedRandomness.Vehicle), Now: fixedNow(t, f.Now),
		Trace: func(s transaction.Step) { steps = append(steps, s) }})
	if err != nil {
		t.Fatal(err)
	}
	a := &answers{seq: f.APDUSequence}
	e.Run(context.Background(), a, request(rec))
	for i := range 2 {
		if !bytes.Equal(a.sent[i], f.APDUSequence[i].C) {
			t.Fatalf("opening command %d:\n got  %x\n want %x", i, a.sent[i], []byte(f.APDUSequence[i].C))
		}
	}
	var fast *transaction.Step
	for i := range steps {
		if steps[i].Command == "FAST" {
			fast = &steps[i]
		}
	}
	if fast == nil || fast.FastSession == nil {
		t.Fatal("the session did not open on the fast path")
	}
	c := cmp{t, "session:"}
	c.eq("Kenc", fast.FastSession.Enc.Expose(), f.Session.Kenc)
	c.eq("Kmac", fast.FastSession.Mac.Expose(), f.Session.Kmac)
	c.eq("Krmac", fast.FastSession.Rmac.Expose(), f.Session.Krmac)

	// The scripted EXCHANGEs on that session.
	ch, err := securechannel.New(*fast.FastSession, f.Session.CounterStart)
	if err != nil {
		t.Fatal(err)
	}
	var traces []securechannel.Trace
	ch.Trace = func(x securechannel.Trace) { traces = append(traces, x) }
	for _, cs := range f.Cases {
		t.Run(cs.Name, func(t *testing.T) {
			x := cs.Exchange
			c := cmp{t, cs.Name + ":"}
			var ops []wire.Op
			for _, o := range x.Operations {
				decoded, err := wire.DecodeExchange(append([]byte{0, o.Tag[0], byte(len(o.Value))}, o.Value...))
				if err != nil || len(decoded) != 1 {
					t.Fatalf("operation %x: %v", []byte(o.Tag), err)
				}
				ops = append(ops, decoded[0])
			}
			plain := []byte(x.Plaintext)
			if len(ops) > 0 || bytes.Equal(plain, []byte{0}) {
				c.eq("plaintext", wire.EncodeExchange(ops), x.Plaintext)
			}
			traces = nil
			data, err := ch.WrapCommand(plain)
			if err != nil {
				t.Fatal(err)
			}
			cmd, _ := apdu.Command{CLA: wire.CLASecure, INS: wire.INSExchange, Data: data, Ne: 256}.Bytes()
			c.eq("command", cmd, x.APDUs[0].C)
			resp, err := apdu.ParseResponse(x.APDUs[0].R)
			if err != nil || !resp.OK() {
				t.Fatalf("response %x", []byte(x.APDUs[0].R))
			}
			p, err := ch.UnwrapResponse(resp.Data)
			if err != nil {
				t.Fatal(err)
			}
			c.channel("command_channel", channelOp(traces, 0), x.CommandChannel)
			c.channel("response_channel", channelOp(traces, 1), x.ResponseChan)
			c.eq("response_plaintext", p, x.ResponsePlaintext)
			status, reads, err := wire.DecodeExchangeResponse(p)
			if err != nil {
				t.Fatal(err)
			}
			c.eq("status", []byte{byte(status >> 8), byte(status)}, cs.Status)
			if len(reads) != len(cs.Reads) {
				t.Fatalf("%d reads, want %d", len(reads), len(cs.Reads))
			}
			for i := range reads {
				c.eq(fmt.Sprintf("read %d", i), reads[i], cs.Reads[i])
			}
		})
	}
	// Any status but 0000 is a protocol error for the vehicle.
	if want := wire.ControlFlow(false, wire.ReasonProtocol); !bytes.Equal(want, f.FinalControlFlow.APDUs[0].C) {
		t.Fatalf("final CONTROL FLOW %x, want %x", want, []byte(f.FinalControlFlow.APDUs[0].C))
	}
}
