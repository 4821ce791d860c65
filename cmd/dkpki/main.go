// Command dkpki makes what owner pairing needs on a bench: the PKI that the
// vehicle OEM and the phone maker would run, and the pairing verifier file the
// OEM's back end would give the vehicle (PROTOCOL.md 6).
//
//	dkpki init     -dir pki -vehicle-key /var/lib/dkvehicled/vehicle.key
//	dkpki show     -dir pki
//	dkpki verifier -password 12345678 -out verifier.json
//	echo 12345678 | dkpki verifier -password - -n 16384 -out verifier.json
//
// init writes, in a new directory, the vehicle OEM root, the vehicle
// certificate for the daemon's own key, the device OEM CA cross-signed by the
// vehicle OEM root, and a phone's instance CA, with their private keys (mode
// 0600). The daemon's configuration names the vehicle certificate and the
// root; a simulated phone takes the instance CA (dkendpoint new -pki DIR).
// dkpki never overwrites a file and never prints a private key.
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"github.com/dkvehicled/dkvehicled/config"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dkvehicled/dkvehicled/internal/pki"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// stdin is where "-password -" reads the password (tests replace it).
var stdin io.Reader = os.Stdin

const usage = `usage: dkpki COMMAND [flags]

The bench PKI for owner pairing, and pairing verifier files.

Commands:
  init     -dir DIR -vehicle-key FILE     make the bench PKI in DIR: the vehicle OEM root,
                                          the vehicle certificate for the daemon's key FILE,
                                          the device OEM CA and a phone's instance CA
  show     -dir DIR                       the certificates of a bench PKI (no private keys)
  verifier -password P [-n N] -out FILE   write the pairing verifier of the 8-digit password P
                                          (- reads it from standard input); N is the scrypt cost
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("dkpki "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var err error
	switch cmd {
	case "init":
		dir := fs.String("dir", "", "`directory` to make the PKI in (created if missing)")
		key := fs.String("vehicle-key", "", "the daemon's vehicle private key `file` (PEM, vehicle.private_key)")
		if fs.Parse(args) != nil || *dir == "" || *key == "" || fs.NArg() > 0 {
			return usageError(stderr, fs)
		}
		err = initPKI(*dir, *key, stdout)
	case "show":
		dir := fs.String("dir", "", "`directory` of the PKI")
		if fs.Parse(args) != nil || *dir == "" || fs.NArg() > 0 {
			return usageError(stderr, fs)
		}
		err = show(*dir, stdout)
	case "verifier":
		password := fs.String("password", "", "the 8-digit pairing `password`, or - to read it from standard input")
		n := fs.Int("n", pki.MinScryptN, "scrypt cost `N`: a power of two from 4096 to 1048576")
		out := fs.String("out", "", "verifier `file` to write (must not exist)")
		if fs.Parse(args) != nil || *password == "" || *out == "" || fs.NArg() > 0 {
			return usageError(stderr, fs)
		}
		err = writeVerifier(*password, *n, *out, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "dkpki:", err)
		return 1
	}
	return 0
}

func usageError(w io.Writer, fs *flag.FlagSet) int {
	fmt.Fprintf(w, "usage of %s:\n", fs.Name())
	fs.PrintDefaults()
	return 2
}

func initPKI(dir, keyFile string, w io.Writer) error {
	key, err := config.ReadVehicleKey(keyFile)
	if err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if err := pki.Init(dir, rand.Reader, &key.PublicKey, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(w, "made the bench PKI in %s:\n", dir)
	for _, f := range [][2]string{
		{pki.RootCertFile, "vehicle OEM root"},
		{pki.RootKeyFile, "its private key"},
		{pki.VehicleCertFile, "vehicle certificate, for the key in " + keyFile},
		{pki.DeviceCACertFile, "device OEM CA, cross-signed by the vehicle OEM root"},
		{pki.DeviceCAKeyFile, "its private key"},
		{pki.InstanceCACertFile, "a phone's instance CA, signed by the device OEM CA"},
		{pki.InstanceCAKeyFile, "its private key"},
	} {
		fmt.Fprintf(w, "  %-22s %s\n", f[0], f[1])
	}
	fmt.Fprintf(w, "\nAdd to the daemon's configuration, under [vehicle]:\n  certificate = %s\n  oem_root = %s\n",
		strconv.Quote(filepath.Join(dir, pki.VehicleCertFile)), strconv.Quote(filepath.Join(dir, pki.RootCertFile)))
	fmt.Fprintf(w, "\nA simulated phone with this PKI: dkendpoint new -state FILE -pki %s\n", dir)
	return nil
}

func show(dir string, w io.Writer) error {
	b, err := pki.LoadBench(dir)
	if err != nil {
		return err
	}
	for i, c := range []struct {
		file string
		cert *x509.Certificate
	}{
		{pki.RootCertFile, b.Root.Cert},
		{pki.VehicleCertFile, b.Vehicle},
		{pki.DeviceCACertFile, b.DeviceCA.Cert},
		{pki.InstanceCACertFile, b.InstanceCA.Cert},
	} {
		if i > 0 {
			fmt.Fprintln(w)
		}
		h := sha256.Sum256(c.cert.Raw)
		fmt.Fprintf(w, "%s\n  subject  %s\n  issuer   %s\n  valid    %s to %s\n  CA       %v\n  SHA-256  %s\n",
			filepath.Join(dir, c.file), c.cert.Subject, c.cert.Issuer,
			c.cert.NotBefore.UTC().Format(time.RFC3339), c.cert.NotAfter.UTC().Format(time.RFC3339),
			c.cert.IsCA, hex.EncodeToString(h[:]))
	}
	return nil
}

func writeVerifier(password string, n int, out string, w io.Writer) error {
	if password == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	v, err := pki.NewVerifier(rand.Reader, password, n)
	if err != nil {
		return err
	}
	if err := pki.WriteVerifier(out, v); err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote the pairing verifier %s (scrypt N=%d, r=%d, p=%d)\n", out, v.N, v.R, v.P)
	fmt.Fprintf(w, "give it to the vehicle: dkctl pairing verifier --file %s\n", out)
	return nil
}
