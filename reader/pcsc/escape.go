//go:build pcsc

package pcsc

import (
	"context"
	"errors"
	"fmt"

	"github.com/ebfe/scard"

	"github.com/dkvehicled/dkvehicled/reader"
)

// This file drives the ACR122U extras through PC/SC: firmware, LED and
// buzzer, ECP frames. NOT YET VERIFIED ON HARDWARE (see acr122u.go).

// escape sends a pseudo-APDU to the reader dev through a direct connection
// (SCARD_SHARE_DIRECT, no card needed) and the CCID escape. It uses a
// context of its own so that it never waits behind WaitCard.
func escape(dev string, command []byte) ([]byte, error) {
	sc, err := establish()
	if err != nil {
		return nil, err
	}
	defer sc.Release()
	h, err := sc.Connect(dev, scard.ShareDirect, scard.ProtocolUndefined)
	if err != nil {
		return nil, wrap("SCardConnect(direct)", err)
	}
	defer h.Disconnect(scard.LeaveCard)
	rsp, err := h.Control(escapeControlCode, command)
	return rsp, wrap("SCardControl(escape)", err)
}

// readFirmware reads an ACR122U's firmware version through the escape.
func readFirmware(dev string) (string, error) {
	rsp, err := escape(dev, firmwareAPDU)
	if err != nil {
		return "", err
	}
	return parseFirmware(rsp)
}

// Feedback shows s on an ACR122U's LED and buzzer when Options.Feedback is
// on; on other readers it does nothing. With a card present the
// pseudo-APDU goes through the card's connection, else through the escape.
func (r *pcscReader) Feedback(ctx context.Context, s reader.Signal) error {
	r.mu.Lock()
	on, dev, c := r.o.Feedback && r.acr, r.device, r.card
	r.mu.Unlock()
	if !on {
		return nil
	}
	command, err := feedbackAPDU(s)
	if err != nil {
		return err
	}
	if c != nil {
		rsp, err := c.Transceive(ctx, command)
		switch {
		case err == nil:
			return parseFeedback(rsp)
		case !errors.Is(err, reader.ErrCardGone) && !errors.Is(err, ErrClosed):
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if dev == "" {
		return fmt.Errorf("%w: no feedback while the reader is away", reader.ErrUnavailable)
	}
	rsp, err := escape(dev, command)
	if err != nil {
		return err
	}
	return parseFeedback(rsp)
}

// ecpSender sends the ECP frame through a direct connection held while
// WaitCard waits for a card.
type ecpSender struct {
	r       *pcscReader
	h       *scard.Card
	command []byte
}

// startECP opens the direct connection for ECP frames on the status context,
// or returns nil when ECP is off.
func (r *pcscReader) startECP(sc *scard.Context, dev string) *ecpSender {
	r.mu.Lock()
	on := r.ecp
	r.mu.Unlock()
	if !on {
		return nil
	}
	command, err := ecpCommand(r.o.ECPFrame)
	if err != nil {
		r.stopECP(err)
		return nil
	}
	h, err := sc.Connect(dev, scard.ShareDirect, scard.ProtocolUndefined)
	if err != nil {
		r.stopECP(wrap("SCardConnect(direct)", err))
		return nil
	}
	return &ecpSender{r: r, h: h, command: command}
}

// send sends one frame; after a failure ECP stays off until the reader is
// set up again.
func (e *ecpSender) send() {
	if e.h == nil {
		return
	}
	rsp, err := e.h.Control(escapeControlCode, e.command)
	if err = wrap("SCardControl(escape)", err); err == nil {
		err = parseECP(rsp)
	}
	if err != nil {
		e.r.stopECP(err)
		e.close()
	}
}

func (e *ecpSender) close() {
	if e.h != nil {
		e.h.Disconnect(scard.LeaveCard)
		e.h = nil
	}
}

// stopECP turns ECP off after err.
func (r *pcscReader) stopECP(err error) {
	r.mu.Lock()
	r.ecp = false
	r.mu.Unlock()
	r.health.noECP()
	r.log.Warn("ECP frames stopped", "err", err)
}
