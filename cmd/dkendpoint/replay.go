package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// transcript is what 'tap -record' writes and 'replay' plays back: a tap's
// commands and the phone's answers, in order, in hex.
type transcript struct {
	Exchanges []exchange `json:"exchanges"`
}

// exchange is one command and its answer (data and status word).
type exchange struct {
	Command string `json:"command"`
	Answer  string `json:"answer"`
}

func (t *transcript) add(command, answer []byte) {
	t.Exchanges = append(t.Exchanges, exchange{Command: hex.EncodeToString(command), Answer: hex.EncodeToString(answer)})
}

// write saves the transcript, readable by its owner only.
func (t *transcript) write(path string) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// readTranscript loads a transcript and decodes its answers.
func readTranscript(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t transcript
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(t.Exchanges) == 0 {
		return nil, fmt.Errorf("%s: no exchanges recorded", path)
	}
	answers := make([][]byte, len(t.Exchanges))
	for i, e := range t.Exchanges {
		a, err := hex.DecodeString(e.Answer)
		if err != nil || len(a) < 2 {
			return nil, fmt.Errorf("%s: exchange %d: the answer is not hex with a status word", path, i)
		}
		answers[i] = a
	}
	return answers, nil
}

// replay lays on the reader a card that answers command i with the recorded
// answer i, whatever the command, as an attacker who recorded a real tap
// would; past the recorded answers it answers 6F 00.
func replay(file, addr string, asJSON bool, w io.Writer) error {
	answers, err := readTranscript(file)
	if err != nil {
		return err
	}
	i := 0
	return present(presence{addr: addr, json: asJSON, answer: func(context.Context, []byte) []byte {
		i++
		if i > len(answers) {
			return []byte{0x6F, 0x00}
		}
		return answers[i-1]
	}}, w)
}
