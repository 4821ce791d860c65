package transaction

import (
	"github.com/dkvehicled/dkvehicled/internal/secret"
	"github.com/dkvehicled/dkvehicled/transaction/keys"
	"github.com/dkvehicled/dkvehicled/transaction/securechannel"
	"github.com/dkvehicled/dkvehicled/transaction/wire"
)

// Step carries the intermediates of one protocol step to Config.Trace, so
// tests can compare them with the vectors. Only the fields of the step's
// Command are set. Production code never sets Config.Trace.
type Step struct {
	Command string // SELECT, AUTH0, AUTH1, EXCHANGE, CONTROL FLOW

	// SELECT
	EndpointVersions []byte
	SelectedVersion  wire.Version

	// AUTH0
	VehicleESK  secret.Bytes
	VehicleEPK  []byte
	TxID        []byte
	P1, P2      byte
	EndpointEPK []byte
	Cryptogram  []byte
	Ignored9D   [][]byte
	FastTried   []FastTry
	FastSession *keys.SessionKeys

	// AUTH1
	Z, Kdh            secret.Bytes
	InfoVolatile      []byte
	InfoPersistent    []byte
	Session           keys.SessionKeys
	Kpersistent       secret.Bytes
	VehicleTBS        []byte
	VehicleSignature  []byte
	ResponsePlaintext []byte
	Identifier        []byte
	EndpointSignature []byte
	EndpointTBS       []byte

	// EXCHANGE
	Plaintext []byte
	Ops       []wire.Op
	Timeout   int // milliseconds
	Status    wire.Status

	// Channels holds the secure-channel operations of the step in order.
	Channels []securechannel.Trace
}

// FastTry is one fast-path candidate tried.
type FastTry struct {
	KeyID    keys.KeyID
	Info     []byte
	OKM      secret.Bytes
	Expected []byte
	Match    bool
}
