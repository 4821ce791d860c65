package transaction_test

import (
	"errors"
	"testing"

	"github.com/dkvehicled/dkvehicled/policy"
	"github.com/dkvehicled/dkvehicled/transaction"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// TestStory is the whole life of a car key, in process: the owner enrolled
// directly unlocks with a standard then a fast transaction, starts the engine
// at the dashboard (which provisions the owner's slots and tokens first),
// shares a key offline, the friend's first tap stores the friend and unlocks,
// the friend's access-only profile cannot start the engine, the vehicle
// revokes the friend, the friend is refused, and the owner still unlocks on
// the fast path.
func TestStory(t *testing.T) {
	w := newWorld(t, t.TempDir(), 1)
	owner, friend := w.phone(2), w.phone(3)
	w.enrolOwner(owner)

	type step struct {
		name   string
		phone  interface{ Reset() }
		role   policy.Role
		locked bool
		check  func(*transaction.Outcome) error
	}
	allowed := func(path transaction.Path, action policy.Action) func(*transaction.Outcome) error {
		return func(o *transaction.Outcome) error {
			if !o.Allowed() || o.Path != path || o.Action != action {
				return errors.New("want allowed " + string(action) + " on the " + string(path) + " path")
			}
			return nil
		}
	}
	denied := func(r wire.Reason) func(*transaction.Outcome) error {
		return func(o *transaction.Outcome) error {
			if o.Allowed() || o.Reason != r || o.ControlFlow == nil || o.ControlFlow[3] != byte(r) {
				return errors.New("want denied with " + r.String())
			}
			return nil
		}
	}
	steps := []step{
		{"owner unlocks, standard", owner, policy.RoleDoor, true, allowed(transaction.PathStandard, policy.ActionUnlock)},
		{"owner locks, fast", owner, policy.RoleDoor, false, allowed(transaction.PathFast, policy.ActionLock)},
		{"owner unlocks, fast", owner, policy.RoleDoor, true, allowed(transaction.PathFast, policy.ActionUnlock)},
		{"owner starts the engine, provisioning first", owner, policy.RoleDashboard, false, func(o *transaction.Outcome) error {
			if err := allowed(transaction.PathStandard, policy.ActionEngineStart)(o); err != nil {
				return err
			}
			if o.Provisioned != 7 {
				return errors.New("want 7 entries provisioned")
			}
			return nil
		}},
		{"owner starts again, nothing to provision", owner, policy.RoleDashboard, false, func(o *transaction.Outcome) error {
			if err := allowed(transaction.PathStandard, policy.ActionEngineStart)(o); err != nil || o.Provisioned != 0 {
				return errors.New("want a plain engine start")
			}
			return nil
		}},
	}
	run := func(steps []step) {
		t.Helper()
		for _, s := range steps {
			o := w.tap(s.phone.(transactionCard), s.role, s.locked)
			if err := s.check(o); err != nil {
				t.Fatalf("%s: %v; got %s %s %s reason %s (%s)", s.name, err, o.Result, o.Path, o.Action, o.Reason, o.Detail)
			}
		}
	}
	run(steps)

	w.share(owner, friend, 1, "Alice")
	run([]step{
		{"friend's first tap stores her and unlocks", friend, policy.RoleDoor, true, func(o *transaction.Outcome) error {
			if err := allowed(transaction.PathFriendFirstUse, policy.ActionUnlock)(o); err != nil {
				return err
			}
			if !o.FirstUse || o.FriendlyName != "Alice" || o.Role != "friend" {
				return errors.New("want Alice stored on first use")
			}
			return nil
		}},
		{"friend locks on the fast path", friend, policy.RoleDoor, false, allowed(transaction.PathFast, policy.ActionLock)},
		{"friend may not start the engine", friend, policy.RoleDashboard, true, denied(wire.ReasonNotPermitted)},
		{"owner refills the shared entry at the dashboard", owner, policy.RoleDashboard, true, func(o *transaction.Outcome) error {
			if err := allowed(transaction.PathStandard, policy.ActionEngineStart)(o); err != nil || o.Provisioned != 1 {
				return errors.New("want one entry refilled")
			}
			return nil
		}},
	})
	w.revoke(friend)
	run([]step{
		{"revoked friend is refused", friend, policy.RoleDoor, true, denied(wire.ReasonKeyNotValid)},
		{"owner still unlocks on the fast path", owner, policy.RoleDoor, true, allowed(transaction.PathFast, policy.ActionUnlock)},
	})
}
