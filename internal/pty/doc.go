// Package pty opens Linux pseudo-terminal pairs, so that tests can put a
// simulated serial device (such as a PN532 in HSU mode) behind a real
// /dev/pts/N that another program opens as its serial port. It is Linux
// only.
package pty
