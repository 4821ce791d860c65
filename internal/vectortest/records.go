package vectortest

import "encoding/json"

// AccessProfile is one entry of vehicle.access_profiles.
type AccessProfile struct {
	ID            int    `json:"id"`
	Name          string `json:"name"`
	Access        bool   `json:"access"`
	Engine        bool   `json:"engine"`
	SpeedLimitKPH *int   `json:"speed_limit_kph"`
}

// Vehicle is a file's vehicle configuration.
type Vehicle struct {
	Profile                        string          `json:"profile"`
	AppletAID                      Hex             `json:"applet_AID"`
	FrameworkAID                   Hex             `json:"framework_AID"`
	VehicleIdentifier              Hex             `json:"vehicle_identifier"`
	VehicleSK                      Hex             `json:"vehicle_SK"`
	VehiclePK                      Hex             `json:"vehicle_PK"`
	VehicleCertificate             Hex             `json:"vehicle_certificate"`
	VehicleIntermediateCertificate Hex             `json:"vehicle_intermediate_certificate"`
	OEMRootCertificate             Hex             `json:"oem_root_certificate"`
	OEMRootPK                      Hex             `json:"oem_root_PK"`
	SupportedVersions              []Hex           `json:"supported_versions"`
	Brand                          Hex             `json:"brand"`
	OwnerProfile                   int             `json:"owner_profile"`
	AccessProfiles                 []AccessProfile `json:"access_profiles"`
	SlotIDLen                      int             `json:"SLOT_ID_LEN"`
	ImmoTokenLen                   int             `json:"IMMO_TOKEN_LEN"`
	OEMDataLen                     int             `json:"OEM_DATA_LEN"`
	AttestationLen                 int             `json:"ATTESTATION_LEN"`
	PrivateMailboxLayout           map[string]int  `json:"private_mailbox_layout"`
	ConfidentialMailboxLen         int             `json:"confidential_mailbox_len"`
}

// VehicleState is a record's vehicle_state.
type VehicleState struct {
	DigitalKeyEnabled bool `json:"digital_key_enabled"`
	ReaderEnabled     bool `json:"reader_enabled"`
	PairingMode       bool `json:"pairing_mode"`
}

// EndpointSetup is a record's endpoint_setup.
type EndpointSetup struct {
	Profile         string          `json:"profile"`
	Versions        []Hex           `json:"versions"`
	PairingPassword *string         `json:"pairing_password"`
	Framework       json.RawMessage `json:"framework"`
}

// EndpointKeys is one entry of endpoint_keys_before / _after.
type EndpointKeys struct {
	VehicleIdentifier   Hex    `json:"vehicle_identifier"`
	VehiclePK           Hex    `json:"vehicle_PK"`
	EndpointSK          Hex    `json:"endpoint_SK"`
	EndpointPK          Hex    `json:"endpoint_PK"`
	KeyID               Hex    `json:"keyID"`
	Role                string `json:"role"`
	Kpersistent         Hex    `json:"Kpersistent"`
	AuthorizedPK        Hex    `json:"authorized_PK"`
	PrivateMailbox      Hex    `json:"private_mailbox"`
	ConfidentialMailbox Hex    `json:"confidential_mailbox"`
}

// ChannelTrace is a secure-channel trace.
type ChannelTrace struct {
	Op           string `json:"op"`
	Counter      int    `json:"counter"`
	ChainBefore  Hex    `json:"chain_before"`
	Plaintext    Hex    `json:"plaintext"`
	Padded       Hex    `json:"padded"`
	ICV          Hex    `json:"icv"`
	Ciphertext   Hex    `json:"ciphertext"`
	MACFull      Hex    `json:"mac_full"`
	MAC          Hex    `json:"mac"`
	ChainAfter   Hex    `json:"chain_after"`
	CounterAfter int    `json:"counter_after"`
}

// Operation is one EXCHANGE operation as a step lists it.
type Operation struct {
	Tag   Hex `json:"tag"`
	Value Hex `json:"value"`
}

// Step is one protocol step with every key any command uses.
type Step struct {
	Step    string `json:"step"`
	Command string `json:"command"`
	APDUs   []APDU `json:"apdus"`
	// SELECT
	EndpointVersions Hex `json:"endpoint_versions"`
	SelectedVersion  Hex `json:"selected_version"`
	// AUTH0
	VehicleESK            Hex   `json:"vehicle_eSK"`
	VehicleEPK            Hex   `json:"vehicle_ePK"`
	TransactionIdentifier Hex   `json:"transaction_identifier"`
	P1                    Hex   `json:"p1"`
	P2                    Hex   `json:"p2"`
	EndpointEPK           Hex   `json:"endpoint_ePK"`
	Cryptogram            Hex   `json:"cryptogram"`
	Ignored9D             []Hex `json:"ignored_9D"`
	// AUTH1
	Z                 Hex           `json:"Z"`
	Kdh               Hex           `json:"Kdh"`
	InfoVolatile      Hex           `json:"info_volatile"`
	InfoPersistent    Hex           `json:"info_persistent"`
	Kenc              Hex           `json:"Kenc"`
	Kmac              Hex           `json:"Kmac"`
	Krmac             Hex           `json:"Krmac"`
	Kpersistent       Hex           `json:"Kpersistent"`
	VehicleTBS        Hex           `json:"vehicle_TBS"`
	VehicleSignature  Hex           `json:"vehicle_signature"`
	SecureChannel     *ChannelTrace `json:"secure_channel"`
	ResponsePlaintext Hex           `json:"response_plaintext"`
	Identifier        Hex           `json:"identifier"`
	EndpointSignature Hex           `json:"endpoint_signature"`
	EndpointTBS       Hex           `json:"endpoint_TBS"`
	// EXCHANGE, WRITE DATA, GET DATA
	Plaintext      Hex           `json:"plaintext"`
	Operations     []Operation   `json:"operations"`
	CommandChannel *ChannelTrace `json:"command_channel"`
	TimeoutMS      int           `json:"timeout_ms"`
	ResponseChan   *ChannelTrace `json:"response_channel"`
	Status         Hex           `json:"status"`
	// SELECT framework
	Ready Hex `json:"ready"`
	// WRITE DATA
	OwnerSlotIdentifier   Hex `json:"owner_slot_identifier"`
	OwnerImmobilizerToken Hex `json:"owner_immobilizer_token"`
}

// FastCandidate is one entry of derived.fast_candidates.
type FastCandidate struct {
	KeyID              Hex  `json:"keyID"`
	Info               Hex  `json:"info"`
	OKM                Hex  `json:"okm"`
	ExpectedCryptogram Hex  `json:"expected_cryptogram"`
	Match              bool `json:"match"`
}

// Session is derived.session.
type Session struct {
	Kenc         Hex `json:"Kenc"`
	Kmac         Hex `json:"Kmac"`
	Krmac        Hex `json:"Krmac"`
	CounterStart int `json:"counter_start"`
}

// Derived is a record's derived values (the ones of ordinary transactions).
type Derived struct {
	Path              string          `json:"path"`
	Session           *Session        `json:"session"`
	FastCandidates    []FastCandidate `json:"fast_candidates"`
	OwnerSigBmp       Hex             `json:"owner_sigbmp"`
	OwnerSlotIdentBmp Hex             `json:"owner_slotidentbmp"`
	Provisioning      *struct {
		Needed       bool  `json:"needed"`
		ClearEntries []int `json:"clear_entries"`
		NewSlots     []struct {
			Entry            int `json:"entry"`
			SlotIdentifier   Hex `json:"slot_identifier"`
			ImmobilizerToken Hex `json:"immobilizer_token"`
		} `json:"new_slots"`
	} `json:"provisioning"`
	AttestationRead *struct {
		FirstRead    int      `json:"first_read"`
		PackageLen   int      `json:"package_len"`
		FurtherReads [][2]int `json:"further_reads"`
	} `json:"attestation_read"`
	Immobilizer *struct {
		Read     Hex `json:"read"`
		Expected Hex `json:"expected"`
	} `json:"immobilizer"`
	Raw json.RawMessage `json:"-"`
}

// Outcome is a record's outcome.
type Outcome struct {
	Result      string  `json:"result"`
	ControlFlow Hex     `json:"control_flow"`
	P1          Hex     `json:"p1"`
	P2          Hex     `json:"p2"`
	Reason      *string `json:"reason"`
	Path        string  `json:"path"`
}

// Record is a full transaction record.
type Record struct {
	Name               string         `json:"name"`
	Description        string         `json:"description"`
	Reader             string         `json:"reader"`
	Now                string         `json:"now"`
	VehicleState       VehicleState   `json:"vehicle_state"`
	EndpointSetup      EndpointSetup  `json:"endpoint_setup"`
	EndpointHonest     bool           `json:"endpoint_honest"`
	InjectedRandomness Randomness     `json:"injected_randomness"`
	VehicleStoreBefore Store          `json:"vehicle_store_before"`
	VehicleStoreAfter  Store          `json:"vehicle_store_after"`
	EndpointKeysBefore []EndpointKeys `json:"endpoint_keys_before"`
	EndpointKeysAfter  []EndpointKeys `json:"endpoint_keys_after"`
	APDUSequence       []APDU         `json:"apdu_sequence"`
	AlteredResponses   []struct {
		Index     int `json:"index"`
		EndpointR Hex `json:"endpoint_r"`
	} `json:"altered_responses"`
	Steps             []Step          `json:"steps"`
	Derived           Derived         `json:"derived"`
	EndpointGenerated json.RawMessage `json:"endpoint_generated"`
	Outcome           Outcome         `json:"outcome"`
	StoreChanges      []StoreChange   `json:"store_changes"`
}

// StoreChange is one entry of store_changes.
type StoreChange struct {
	Path   string          `json:"path"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Change string          `json:"change"`
}

// Store is the semantic vehicle store of the vectors.
type Store struct {
	Owner     *string             `json:"owner"`
	Endpoints map[string]Endpoint `json:"endpoints"`
	Slots     map[string]Slot     `json:"slots"`
	Verifier  *Verifier           `json:"verifier"`
}

// Endpoint is one stored endpoint of the semantic store.
type Endpoint struct {
	PublicKey      Hex     `json:"public_key"`
	SlotIdentifier Hex     `json:"slot_identifier"`
	Role           string  `json:"role"`
	Profile        int     `json:"profile"`
	State          string  `json:"state"`
	Kpersistent    Hex     `json:"Kpersistent"`
	NotBefore      *string `json:"not_before"`
	NotAfter       *string `json:"not_after"`
	FriendlyName   string  `json:"friendly_name"`
	LTSS           Hex     `json:"LTSS"`
	StoreOrder     int     `json:"store_order"`
	Created        string  `json:"created"`
	LastUsed       *string `json:"last_used"`
}

// Slot is one slot of the semantic store.
type Slot struct {
	Entry            int     `json:"entry"`
	IssuedTo         string  `json:"issued_to"`
	BoundEndpoint    *string `json:"bound_endpoint"`
	ImmobilizerToken Hex     `json:"immobilizer_token"`
	State            string  `json:"state"`
}

// Verifier is the pairing verifier of the semantic store.
type Verifier struct {
	W0           Hex `json:"w0"`
	L            Hex `json:"L"`
	Salt         Hex `json:"salt"`
	N            int `json:"N"`
	R            int `json:"r"`
	P            int `json:"p"`
	AttemptsLeft int `json:"attempts_left"`
}
