package control

import (
	"fmt"
	"slices"
)

// peerCreds is what the kernel says about a connected client.
type peerCreds struct {
	Peer
	groups []uint32 // supplementary groups, when the kernel reports them
}

// allows reports whether the configuration admits the peer: root, a listed
// uid, or a listed primary or supplementary gid.
func (cfg *ServerConfig) allows(p peerCreds) bool {
	if p.UID == 0 || slices.Contains(cfg.AllowedUIDs, p.UID) || slices.Contains(cfg.AllowedGIDs, p.GID) {
		return true
	}
	for _, g := range p.groups {
		if slices.Contains(cfg.AllowedGIDs, g) {
			return true
		}
	}
	return false
}

// refusal is the answer to a refused peer.
func refusal(uid uint32) *Error {
	return Errorf(CodePermissionDenied, fmt.Sprintf("uid %d is not allowed to use dkvehicled's control socket", uid))
}
