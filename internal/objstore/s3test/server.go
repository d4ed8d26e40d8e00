package s3test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is an S3-compatible store on 127.0.0.1, addressed path-style (URL/bucket/key).
// Its methods are safe for concurrent use.
type Server struct {
	URL    string // http://127.0.0.1:port, the endpoint to give clients
	Bucket string

	backend *s3mem.Backend
	srv     *httptest.Server

	mu        sync.Mutex
	accessKey string          // when set, requests must be signed with it
	corrupt   map[string]bool // keys whose GET bodies get one byte flipped
	cut       map[string]bool // keys whose GET bodies stop half way, connection dropped
	fail      map[string]int  // keys whose GETs answer this status (a 500: the store failing)
	hang      map[string]bool // keys whose GETs never answer (until the client gives up)
	gets      map[string]int  // GETs answered, by key
}

// New starts a server with one empty bucket; it stops when the test ends.
func New(t testing.TB, bucket string) *Server {
	t.Helper()
	s := &Server{Bucket: bucket, backend: s3mem.New(),
		corrupt: map[string]bool{}, cut: map[string]bool{}, fail: map[string]int{}, hang: map[string]bool{}, gets: map[string]int{}}
	if err := s.backend.CreateBucket(bucket); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	fake := gofakes3.New(s.backend).Server()
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(fake, w, r) }))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// RequireAccessKey refuses (403) requests not signed with this access key ID.
func (s *Server) RequireAccessKey(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessKey = id
}

// Put stores an object as an upload would; the store's ETag is the MD5 of data.
func (s *Server) Put(t testing.TB, key string, data []byte) {
	t.Helper()
	s.put(t, key, data, map[string]string{})
}

// PutWithSHA256 stores data but has the store report sum (base64 SHA-256) as the
// object's x-amz-checksum-sha256, as a store whose copy rotted at rest would.
func (s *Server) PutWithSHA256(t testing.TB, key string, data []byte, sum string) {
	t.Helper()
	s.put(t, key, data, map[string]string{"X-Amz-Checksum-Sha256": sum})
}

// SHA256 is the base64 SHA-256 that S3 reports for data.
func SHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (s *Server) put(t testing.TB, key string, data []byte, meta map[string]string) {
	t.Helper()
	if _, err := s.backend.PutObject(s.Bucket, key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatalf("s3test: put %s: %v", key, err)
	}
}

// Delete removes an object.
func (s *Server) Delete(t testing.TB, key string) {
	t.Helper()
	if _, err := s.backend.DeleteObject(s.Bucket, key); err != nil {
		t.Fatalf("s3test: delete %s: %v", key, err)
	}
}

// Corrupt turns on or off flipping a byte of the key's GET bodies in transit (the
// store's ETag and Content-Length stay right, the bytes do not).
func (s *Server) Corrupt(key string, on bool) { s.set(s.corrupt, key, on) }

// Cut turns on or off ending the key's GET bodies half way by dropping the connection.
func (s *Server) Cut(key string, on bool) { s.set(s.cut, key, on) }

func (s *Server) set(m map[string]bool, key string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m[key] = on
}

// Fail makes GETs of key answer status with an S3 error body (0: normal again).
func (s *Server) Fail(key string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[key] = status
}

// Hang makes GETs of key never answer, until the client gives up (a store that stalls).
func (s *Server) Hang(key string, on bool) { s.set(s.hang, key, on) }

// Gets reports how many GETs of the key were answered.
func (s *Server) Gets(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[key]
}

func (s *Server) serve(fake http.Handler, w http.ResponseWriter, r *http.Request) {
	key, isObject := strings.CutPrefix(r.URL.Path, "/"+s.Bucket+"/")
	s.mu.Lock()
	need, corrupt, cut, fail, hang := s.accessKey, s.corrupt[key], s.cut[key], s.fail[key], s.hang[key]
	if isObject && r.Method == http.MethodGet {
		s.gets[key]++
	}
	s.mu.Unlock()
	if isObject && r.Method == http.MethodGet {
		switch {
		case hang:
			<-r.Context().Done()
			return
		case fail != 0:
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(fail)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>` +
				`<Message>We encountered an internal error. Please try again.</Message></Error>`))
			return
		}
	}
	if need != "" && !strings.Contains(r.Header.Get("Authorization"), "Credential="+need+"/") {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code>` +
			`<Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>`))
		return
	}
	if !isObject || r.Method != http.MethodGet || !corrupt && !cut {
		fake.ServeHTTP(w, r)
		return
	}
	fw := &faultWriter{ResponseWriter: w, corrupt: corrupt, cut: cut}
	fake.ServeHTTP(fw, r)
	if fw.dropped {
		panic(http.ErrAbortHandler) // the server closes the connection mid-body
	}
}

// faultWriter damages a response body on its way out.
type faultWriter struct {
	http.ResponseWriter
	corrupt, cut bool
	status       int
	written      int
	dropped      bool
}

func (f *faultWriter) WriteHeader(code int) {
	f.status = code
	f.ResponseWriter.WriteHeader(code)
}

func (f *faultWriter) Write(p []byte) (int, error) {
	if f.status != 0 && f.status != http.StatusOK || len(p) == 0 {
		return f.ResponseWriter.Write(p)
	}
	if f.cut {
		half := max(len(p)/2, 1)
		n, _ := f.ResponseWriter.Write(p[:half])
		if fl, ok := f.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		f.dropped = true
		return n, http.ErrAbortHandler
	}
	if f.corrupt && f.written == 0 {
		q := bytes.Clone(p)
		q[len(q)/2] ^= 0xff
		p = q
	}
	n, err := f.ResponseWriter.Write(p)
	f.written += n
	return n, err
}

// Close stops the server, as an outage would; later requests fail to connect.
func (s *Server) Close() { s.srv.Close() }
