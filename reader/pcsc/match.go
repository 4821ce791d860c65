package pcsc

import "path"

// Match reports whether the PC/SC reader name matches pattern: either the
// name itself, or a glob in path.Match syntax (* any run of characters but /,
// ? one character, [a-z] a class, \ escapes the next character). Reader
// names often contain brackets ("... [CCID Interface] 00 00"), so an exact
// name always matches itself even where it would be a different glob.
func Match(pattern, name string) bool {
	if pattern == name {
		return true
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// pick chooses the reader for pattern among names, in their order: an exact
// name first, else the first glob match that taken does not reject (taken
// keeps two configured readers off the same device).
func pick(pattern string, names []string, taken func(string) bool) (string, bool) {
	for _, n := range names {
		if n == pattern && !taken(n) {
			return n, true
		}
	}
	for _, n := range names {
		if Match(pattern, n) && !taken(n) {
			return n, true
		}
	}
	return "", false
}
