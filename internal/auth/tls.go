package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles names a server's certificate, key and optional client CA bundle (PEM).
type TLSFiles struct {
	Cert, Key string
	// ClientCA: client certificates are verified against it; RequireClientCert refuses
	// a handshake without one, else a certificate is verified only when given.
	ClientCA          string
	RequireClientCert bool
}

// tlsCheckEvery is how often a handshake may look at the files' modification times:
// a rewritten certificate is served within this long after the rewrite.
const tlsCheckEvery = time.Second

// ServerTLS returns a TLS config whose certificate and client CAs are read again when
// their files change (checked at most every second, on handshakes); a rewrite that
// fails to parse keeps the previous ones and is reported by the next Reload error.
func ServerTLS(f TLSFiles) (*tls.Config, *TLSReloader, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, nil, errors.New("tls: both a certificate and a key are required (--tls-cert, --tls-key)")
	}
	r := &TLSReloader{files: f}
	if err := r.load(); err != nil {
		return nil, nil, err
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.config(base), nil }
	return cfg, r, nil
}

// TLSReloader keeps the files' current contents.
type TLSReloader struct {
	files TLSFiles

	mu      sync.Mutex
	cert    *tls.Certificate
	pool    *x509.CertPool
	mtimes  [3]time.Time
	checked time.Time
	lastErr error
}

// Err is the last failed reload's error (nil once a reload succeeds).
func (r *TLSReloader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

func (r *TLSReloader) config(base *tls.Config) *tls.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= tlsCheckEvery {
		r.checked = time.Now()
		if r.mtimesNow() != r.mtimes {
			r.lastErr = r.loadLocked()
		}
	}
	c := base.Clone()
	c.Certificates = []tls.Certificate{*r.cert}
	if r.pool != nil {
		c.ClientCAs = r.pool
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if r.files.RequireClientCert {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return c
}

func (r *TLSReloader) mtimesNow() [3]time.Time {
	var out [3]time.Time
	for i, f := range []string{r.files.Cert, r.files.Key, r.files.ClientCA} {
		if f == "" {
			continue
		}
		if st, err := os.Stat(f); err == nil {
			out[i] = st.ModTime()
		}
	}
	return out
}

func (r *TLSReloader) load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked()
}

func (r *TLSReloader) loadLocked() error {
	mt := r.mtimesNow()
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return fmt.Errorf("tls: certificate %s and key %s: %w", r.files.Cert, r.files.Key, err)
	}
	var pool *x509.CertPool
	if r.files.ClientCA != "" {
		b, err := os.ReadFile(r.files.ClientCA)
		if err != nil {
			return fmt.Errorf("tls: client CA: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("tls: client CA %s: no PEM certificate in it", r.files.ClientCA)
		}
	}
	r.cert, r.pool, r.mtimes = &cert, pool, mt
	return nil
}
