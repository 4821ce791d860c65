package wire

// The Digital Key framework of owner pairing (PROTOCOL.md 6).

// FrameworkAID is the AID of the framework ("...CCCDKFv1").
var FrameworkAID = []byte{0xA0, 0x00, 0x00, 0x08, 0x09, 0x43, 0x43, 0x43, 0x44, 0x4B, 0x46, 0x76, 0x31}

// FrameworkVersion is the framework version the vehicle speaks (5A, 5B).
const FrameworkVersion Version = 0x0100

// Framework instruction codes.
const (
	INSSpakeRequest byte = 0x30
	INSSpakeVerify  byte = 0x32
	INSWriteData    byte = 0xD4
	INSGetData      byte = 0xCA
)

// GET DATA's P1 P2: the key creation response object 7F20.
const (
	GetDataP1 byte = 0x7F
	GetDataP2 byte = 0x20
)

// Framework tags.
const (
	TagFrameworkVersions uint16 = 0x5A   // SELECT: framework versions
	TagPairingReady      uint16 = 0xD4   // SELECT: 00 not ready, 02 ready
	TagSpakeVersion      uint16 = 0x5B   // REQUEST: the framework version used
	TagScryptParams      uint16 = 0x7F50 // REQUEST: C0 salt, C1 N, C2 r, C3 p
	TagScryptSalt        uint16 = 0xC0
	TagScryptN           uint16 = 0xC1
	TagScryptR           uint16 = 0xC2
	TagScryptP           uint16 = 0xC3
	TagBrand             uint16 = 0xD6
	TagShareX            uint16 = 0x50 // REQUEST response: the prover's share
	TagShareY            uint16 = 0x52 // VERIFY: the verifier's share
	TagConfirmV          uint16 = 0x57 // VERIFY: the vehicle's confirmation
	TagConfirmP          uint16 = 0x58 // VERIFY response: the phone's confirmation
	TagVehicleCert       uint16 = 0x7F21
	TagVehicleInterCert  uint16 = 0x7F22
	TagAuthorizedPK      uint16 = 0x81
	TagOwnerSlot         uint16 = 0x4E
	TagLayout            uint16 = 0xA1 // 80 SLOT_ID_LEN, 81 IMMO_TOKEN_LEN, 82 OEM_DATA_LEN, 83 ATTESTATION_LEN
	TagKeyCreation       uint16 = 0x7F20
	TagEndpointCert      uint16 = 0x7F21
	TagInstanceCACert    uint16 = 0x7F22
	TagDeviceCACert      uint16 = 0x7F23
)

// PairingReady is the D4 value of a phone ready for pairing.
const PairingReady byte = 0x02

// PairingContextLabel starts the SPAKE2+ Context (PROTOCOL.md 6.2).
var PairingContextLabel = []byte("CCC-DK-OWNER-PAIRING")

// LabelSystemKeys derives Kenc‖Kmac‖Krmac‖LTSS from K_shared.
var LabelSystemKeys = []byte("SystemKeys")

// OP CONTROL FLOW reasons of pairing (PROTOCOL.md 6.3).
const (
	ReasonBadPoint      Reason = 0x0C
	ReasonNoVerifier    Reason = 0x0D
	ReasonNoVersion     Reason = 0x0E
	ReasonConfirmation  Reason = 0x0F
	ReasonChainRejected Reason = 0x10
)
