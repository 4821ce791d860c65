package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dkvehicled/dkvehicled/endpoint"
)

// The files of the bench layout. The vehicle certificate has no key file:
// its key is the daemon's own vehicle.private_key.
const (
	RootCertFile       = "vehicle-oem-root.crt"
	RootKeyFile        = "vehicle-oem-root.key"
	VehicleCertFile    = "vehicle.crt"
	DeviceCACertFile   = "device-oem-ca.crt"
	DeviceCAKeyFile    = "device-oem-ca.key"
	InstanceCACertFile = "instance-ca.crt"
	InstanceCAKeyFile  = "instance-ca.key"
)

// The subjects' common names Init gives.
const (
	rootName     = "dkvehicled bench vehicle OEM root"
	vehicleName  = "dkvehicled bench vehicle"
	deviceName   = "dkvehicled bench device OEM CA"
	instanceName = "dkvehicled bench instance CA"
	endpointName = "endpoint"
)

// Init makes a bench PKI in dir (created with mode 0700 if missing): a vehicle
// OEM root, the vehicle certificate for vehicleKey signed by it, a device OEM
// CA cross-signed by the vehicle OEM root, and an instance CA signed by the
// device OEM CA. Keys are written as PKCS#8 PEM with mode 0600, certificates
// as PEM with mode 0644. Init never overwrites a file; when it fails it
// removes the files it wrote.
func Init(dir string, rand io.Reader, vehicleKey *ecdsa.PublicKey, now time.Time) error {
	if vehicleKey == nil || vehicleKey.Curve != elliptic.P256() {
		return errors.New("pki: the vehicle key must be a P-256 key")
	}
	root, err := NewRoot(rand, rootName, now)
	if err != nil {
		return err
	}
	vehicle, err := root.IssueLeaf(rand, vehicleKey, vehicleName, now)
	if err != nil {
		return err
	}
	device, err := root.IssueCA(rand, deviceName, now)
	if err != nil {
		return err
	}
	instance, err := device.IssueCA(rand, instanceName, now)
	if err != nil {
		return err
	}
	type file struct {
		name string
		data []byte
		mode os.FileMode
	}
	files := []file{
		{RootCertFile, certPEM(root.Cert.Raw), 0o644},
		{VehicleCertFile, certPEM(vehicle), 0o644},
		{DeviceCACertFile, certPEM(device.Cert.Raw), 0o644},
		{InstanceCACertFile, certPEM(instance.Cert.Raw), 0o644},
	}
	for _, k := range []struct {
		name string
		ca   *CA
	}{{RootKeyFile, root}, {DeviceCAKeyFile, device}, {InstanceCAKeyFile, instance}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.ca.Key)
		if err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		files = append(files, file{k.name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600})
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.name)); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pki: %s exists: not overwriting a PKI", filepath.Join(dir, f.name))
		}
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeNew(path, f.data, f.mode); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return fmt.Errorf("pki: %w", err)
		}
		written = append(written, path)
	}
	return nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// writeNew writes a file that must not exist yet; a failed write leaves none.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(path)
	}
	return err
}

// Bench is a bench PKI that Init made, loaded back.
type Bench struct {
	Root       *CA // the vehicle OEM root
	DeviceCA   *CA // the device OEM CA, signed by Root
	InstanceCA *CA // the phone's instance CA, signed by DeviceCA
	// Vehicle is the vehicle certificate, signed by Root.
	Vehicle *x509.Certificate
}

// LoadBench loads the bench PKI in dir. It checks that each key belongs to
// its certificate and that each certificate is signed by its issuer.
func LoadBench(dir string) (*Bench, error) {
	var b Bench
	var err error
	if b.Root, err = loadCA(dir, RootCertFile, RootKeyFile); err != nil {
		return nil, err
	}
	if b.DeviceCA, err = loadCA(dir, DeviceCACertFile, DeviceCAKeyFile); err != nil {
		return nil, err
	}
	if b.InstanceCA, err = loadCA(dir, InstanceCACertFile, InstanceCAKeyFile); err != nil {
		return nil, err
	}
	if b.Vehicle, err = readCert(filepath.Join(dir, VehicleCertFile)); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		name, issuer string
		c, parent    *x509.Certificate
	}{
		{RootCertFile, RootCertFile, b.Root.Cert, b.Root.Cert},
		{VehicleCertFile, RootCertFile, b.Vehicle, b.Root.Cert},
		{DeviceCACertFile, RootCertFile, b.DeviceCA.Cert, b.Root.Cert},
		{InstanceCACertFile, DeviceCACertFile, b.InstanceCA.Cert, b.DeviceCA.Cert},
	} {
		if err := s.c.CheckSignatureFrom(s.parent); err != nil {
			return nil, fmt.Errorf("pki: %s is not signed by %s: %v", filepath.Join(dir, s.name), s.issuer, err)
		}
	}
	return &b, nil
}

func loadCA(dir, certFile, keyFile string) (*CA, error) {
	cert, err := readCert(filepath.Join(dir, certFile))
	if err != nil {
		return nil, err
	}
	key, err := readKey(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s is not the key of %s", filepath.Join(dir, keyFile), certFile)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// readPEM returns the DER of the first PEM block of a file, of type typ.
func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("pki: %s: no PEM %q block", path, typ)
	}
	return blk.Bytes, nil
}

func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %v", path, err)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pki: %s: not a P-256 key", path)
	}
	return c, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %v", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pki: %s: not a P-256 key", path)
	}
	return key, nil
}

// DevicePKI is the phone's side of the bench PKI: the instance CA, which
// certifies each key the phone creates at pairing (drawing from rand, valid
// from the time of issue), and the device OEM CA above it.
func (b *Bench) DevicePKI(rand io.Reader) *endpoint.DevicePKI {
	ca := b.InstanceCA
	return &endpoint.DevicePKI{
		InstanceCA: ca.Key, InstanceCACert: ca.Cert.Raw, DeviceCACert: b.DeviceCA.Cert.Raw,
		Issue: func(pub *ecdsa.PublicKey) ([]byte, error) { return ca.IssueLeaf(rand, pub, endpointName, time.Now()) },
	}
}
