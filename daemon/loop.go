package daemon

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/dkvehicled/dkvehicled/control"
	"github.com/dkvehicled/dkvehicled/hal"
	"github.com/dkvehicled/dkvehicled/pairing"
	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/reader"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// readerLoop is one reader and its goroutine's counters.
type readerLoop struct {
	name    string
	role    policy.Role
	backend string
	r       reader.Reader

	mu      sync.Mutex
	taps    uint64
	lastTap time.Time
	present bool
}

func (rl *readerLoop) setPresent(p bool) {
	rl.mu.Lock()
	rl.present = p
	rl.mu.Unlock()
}

// retryPause is the wait after a reader failure that the backend did not
// absorb itself, so a broken reader cannot spin.
const retryPause = time.Second

// runReader waits for a card, runs the transaction, applies the outcome,
// publishes the event and waits for the card to leave, until ctx ends. A
// reader's failure never stops the other readers or the daemon.
func (d *Daemon) runReader(ctx context.Context, rl *readerLoop) {
	log := d.log.With("reader", rl.name)
	for ctx.Err() == nil {
		card, err := rl.r.WaitCard(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.metrics.readerError(rl.name)
			log.Warn("reader failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryPause):
			}
			continue
		}
		rl.setPresent(true)
		// A tap in progress finishes even when the daemon is told to stop.
		err = d.tap(context.WithoutCancel(ctx), rl, card)
		// A phone that left mid-transaction is gone already: the reader may
		// hold a new one before it ever reports the old one's removal.
		if !errors.Is(err, reader.ErrCardGone) {
			if err := card.WaitRemoved(ctx); err != nil && ctx.Err() == nil {
				log.Debug("waiting for the card to leave", "err", err)
			}
		}
		card.Close()
		rl.setPresent(false)
	}
}

// tap runs one pairing attempt (in pairing mode at the dashboard) or one
// transaction, and acts on its outcome. It returns the outcome's error.
func (d *Daemon) tap(ctx context.Context, rl *readerLoop, card reader.Card) error {
	rl.mu.Lock()
	rl.taps++
	rl.lastTap = d.now()
	rl.mu.Unlock()
	d.feedback(ctx, rl, hal.PatternSeen)
	var note string
	if d.pairs(rl) {
		var po *pairing.Outcome
		if po, note = d.pair(ctx, rl, card); po != nil {
			return po.Err
		}
	}
	enabled, why := d.enabled(rl.name)
	req := transaction.Request{Role: rl.role, Locked: d.act.State().Lock != hal.Unlocked, Disabled: !enabled}
	o := d.engine.Run(ctx, card, req)
	actuated, actErr := false, error(nil)
	if o.Allowed() {
		actErr = d.actuate(ctx, o.Action)
		actuated = actErr == nil
		d.metrics.actuation(string(o.Action), actuated)
	}
	switch {
	case actuated:
		d.feedback(ctx, rl, hal.PatternAllowed)
	case o.Result == transaction.ResultDenied:
		d.feedback(ctx, rl, hal.PatternDenied)
	default:
		d.feedback(ctx, rl, hal.PatternError)
	}
	if err := d.engine.Prepare(); err != nil {
		d.log.Warn("preparing the next ephemeral key", "err", err)
	}
	ev := tapEvent(rl, o)
	ev.Actuated = actuated
	if !enabled && o.Reason == wire.ReasonDisabled {
		ev.Detail = why
	}
	if actErr != nil {
		ev.Detail = "allowed, but actuation failed: " + actErr.Error()
		ev.Result = string(transaction.ResultError)
	}
	if note != "" {
		ev.Detail = strings.TrimSuffix(note+"; "+ev.Detail, "; ")
	}
	phases := map[string]time.Duration{}
	for _, p := range o.Phases {
		phases[p.Name] = p.Duration
	}
	d.metrics.tap(rl.name, ev.Result, string(o.Path), o.Total, phases)
	d.emit(ev)
	return o.Err
}

// actuate does what an allowed tap asked for.
func (d *Daemon) actuate(ctx context.Context, a policy.Action) error {
	switch a {
	case policy.ActionUnlock:
		return d.act.Unlock(ctx)
	case policy.ActionLock:
		return d.act.Lock(ctx)
	case policy.ActionEngineStart:
		return d.act.AuthorizeEngineStart(ctx)
	}
	return errors.New("unknown action " + string(a))
}

var signals = map[hal.Pattern]reader.Signal{
	hal.PatternSeen: reader.SignalSeen, hal.PatternAllowed: reader.SignalAllowed,
	hal.PatternDenied: reader.SignalDenied, hal.PatternError: reader.SignalError,
}

// feedback plays a pattern on the vehicle's LED and buzzer and, when the
// reader has its own, on the reader. Feedback is best effort.
func (d *Daemon) feedback(ctx context.Context, rl *readerLoop, p hal.Pattern) {
	if err := d.act.Feedback(ctx, p); err != nil {
		d.log.Debug("feedback", "pattern", p, "err", err)
	}
	if f, ok := rl.r.(reader.Feedbacker); ok {
		if err := f.Feedback(ctx, signals[p]); err != nil {
			d.log.Debug("reader feedback", "reader", rl.name, "pattern", p, "err", err)
		}
	}
}

// tapEvent describes an outcome; it never carries secrets.
func tapEvent(rl *readerLoop, o *transaction.Outcome) control.Event {
	ev := control.Event{
		Type: "tap", Reader: rl.name, Role: string(rl.role), Result: string(o.Result), Path: string(o.Path),
		KeyRole: o.Role, FriendlyName: o.FriendlyName, Action: string(o.Action), Detail: o.Detail,
		SpeedLimitKPH: o.SpeedLimitKPH, FirstUse: o.FirstUse, Provisioned: o.Provisioned, Total: control.Duration(o.Total),
	}
	if o.KeyID != nil {
		ev.KeyID = o.KeyID.String()
	}
	if o.SlotID != nil {
		ev.Slot = hexString(o.SlotID)
	}
	if o.ControlFlow != nil && !o.Allowed() {
		ev.Reason = o.Reason.String()
	}
	for _, p := range o.Phases {
		ev.Phases = append(ev.Phases, control.Phase{Name: p.Name, Time: control.Duration(p.Duration)})
	}
	return ev
}

// emit publishes an event and logs it in one line with stable keys.
func (d *Daemon) emit(ev control.Event) control.Event {
	ev, err := d.bus.publish(ev)
	if err != nil {
		d.log.Error("recording an event in the audit log", "err", err)
	}
	attrs := []any{"seq", ev.Seq, "type", ev.Type}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, k, v)
		}
	}
	add("reader", ev.Reader)
	add("outcome", ev.Result)
	add("action", ev.Action)
	add("key_id", ev.KeyID)
	add("slot", ev.Slot)
	add("path", ev.Path)
	add("reason", ev.Reason)
	add("detail", ev.Detail)
	if ev.Type == "tap" {
		attrs = append(attrs, "ms", float64(time.Duration(ev.Total).Microseconds())/1000, "actuated", ev.Actuated)
	}
	if ev.By != nil {
		attrs = append(attrs, "by_uid", *ev.By)
	}
	d.log.Info("event", attrs...)
	return ev
}
