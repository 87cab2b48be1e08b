package netbus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// testPKI makes a CA and a server and client certificate signed by it.
func testPKI(t *testing.T) (server, client tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	leaf := func(serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "node"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	return leaf(2, x509.ExtKeyUsageServerAuth), leaf(3, x509.ExtKeyUsageClientAuth), pool
}

func TestMutualTLS(t *testing.T) {
	srvCert, cliCert, pool := testPKI(t)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	t.Run("with client cert", func(t *testing.T) {
		cliTLS := &tls.Config{Certificates: []tls.Certificate{cliCert}, RootCAs: pool, MinVersion: tls.VersionTLS13}
		_, cli, _, _, l := pair(t, "tcp://127.0.0.1:0", Config{TLS: srvTLS}, Config{TLS: cliTLS})
		if _, ok := l.(*link).conns[0].nc.(*tls.Conn); !ok {
			t.Fatal("link is not over TLS")
		}
		if got, err := cli.ask(context.Background(), l, "echo", "over tls"); err != nil || got != "over tls" {
			t.Fatal(got, err)
		}
	})
	t.Run("without client cert", func(t *testing.T) {
		srv, cli := newTestHost(t), newTestHost(t)
		srvT := startTransport(t, srv, Config{Listen: []string{"tcp://127.0.0.1:0"}, TLS: srvTLS})
		cliT := startTransport(t, cli, Config{TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cliT.Dial(ctx, srvT.Addrs()[0]); !errors.Is(err, bus.ErrRefused) || ctx.Err() != nil {
			t.Fatalf("dial without a client certificate: %v, want bus.ErrRefused at once", err)
		}
		srvT.Close(context.Background())
		if ups, _, delivered, _ := srv.counts(); ups != 0 || delivered != 0 {
			t.Fatalf("server: %d links, %d messages", ups, delivered)
		}
	})
}

// A server whose certificate the dialer does not trust is refused at once,
// and the error says so.
func TestUntrustedServerRefused(t *testing.T) {
	srvCert, _, _ := testPKI(t)
	_, _, otherPool := testPKI(t)
	srvT := startTransport(t, newTestHost(t), Config{Listen: []string{"tcp://127.0.0.1:0"},
		TLS: &tls.Config{Certificates: []tls.Certificate{srvCert}, MinVersion: tls.VersionTLS13}})
	cliT := startTransport(t, newTestHost(t), Config{TLS: &tls.Config{RootCAs: otherPool, MinVersion: tls.VersionTLS13}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := cliT.Dial(ctx, srvT.Addrs()[0])
	var unknown x509.UnknownAuthorityError
	if !errors.Is(err, bus.ErrRefused) || !errors.As(err, &unknown) || ctx.Err() != nil {
		t.Fatalf("dial to an untrusted server: %v, want bus.ErrRefused for an unknown authority", err)
	}
}
