package middleware

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDotSegmentsAre400: a mux answers /v2/repository/models/../x/load with a 307 to
// the cleaned path; in front of it, RejectDotSegments answers 400 naming the segment.
func TestDotSegmentsAre400(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/repository/models/{m}/load", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /v2/", func(w http.ResponseWriter, r *http.Request) {})
	bad := []string{"/v2/repository/models/../x/load", "/v2/repository/models/./x/load", "/v2//repository/models/x/load", "/v2/repository/models/%2e%2e/x/load"}
	for _, p := range bad {
		if rec := serve(mux, "POST", p, nil); rec.Code != http.StatusTemporaryRedirect {
			t.Logf("without the layer, %s answers %d", p, rec.Code) // the hole as it was: 307
		}
		rec := serve(RejectDotSegments(mux), "POST", p, nil)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "segment") {
			t.Errorf("POST %s: %d %s, want 400 naming the segment", p, rec.Code, rec.Body)
		}
	}
	for _, p := range []string{"/v2/repository/models/x/load", "/v2/", "/v2/models/a.b..c"} {
		method := map[bool]string{true: "POST", false: "GET"}[strings.HasSuffix(p, "/load")]
		if rec := serve(RejectDotSegments(mux), method, p, nil); rec.Code != http.StatusOK {
			t.Errorf("%s %s: %d %s, want 200", method, p, rec.Code, rec.Body)
		}
	}
}

// TestBodyBudgetRefusesBeforeReading: with one large body held by a handler, a second
// that does not fit is answered 503 with Retry-After, unread; once the first is done a
// request fits again.
func TestBodyBudgetRefusesBeforeReading(t *testing.T) {
	hold, entered := make(chan struct{}), make(chan struct{}, 4)
	h := BodyBudget(1000, 2*time.Second)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		entered <- struct{}{}
		if string(b) == "hold" || len(b) == 600 {
			<-hold
		}
		fmt.Fprintf(w, "%d", len(b))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(body io.Reader) (*http.Response, string) {
		resp, err := http.Post(srv.URL, "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); post(strings.NewReader(strings.Repeat("x", 600))) }()
	<-entered
	resp, body := post(strings.NewReader(strings.Repeat("y", 500)))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" || !strings.Contains(body, "in-flight body budget of 1000 bytes") {
		t.Errorf("second body over the budget: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, body := post(strings.NewReader(strings.Repeat("z", 300))); resp.StatusCode != 200 || body != "300" {
		t.Errorf("a body that fits beside the held one: %d %s", resp.StatusCode, body)
	}
	<-entered
	// A chunked body (no length) is reserved as read and fails past the budget.
	resp, body = post(io.MultiReader(strings.NewReader(strings.Repeat("c", 600))))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "budget") {
		t.Errorf("chunked body over the budget: %d %s", resp.StatusCode, body)
	}
	close(hold)
	wg.Wait()
	if resp, body := post(strings.NewReader(strings.Repeat("y", 900))); resp.StatusCode != 200 || body != "900" {
		t.Errorf("after the held body was released: %d %s", resp.StatusCode, body)
	}
}

// TestSlowBodyTimesOut: a client announcing 100 KB and sending a byte a second is cut
// off after the grace period with an error naming the rate, while a fast body of the
// same size passes and the server stays healthy.
func TestSlowBodyTimesOut(t *testing.T) {
	h := ReadDeadline(BodyRate{Grace: 300 * time.Millisecond, MinRate: 1 << 20})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			WriteError(w, http.StatusRequestTimeout, err.Error())
			return
		}
		time.Sleep(500 * time.Millisecond) // past the deadline: it must have been cleared
		if err := r.Context().Err(); err != nil {
			WriteError(w, http.StatusInternalServerError, "context ended after the body was read: "+err.Error())
			return
		}
		fmt.Fprintf(w, "%d", len(b))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	start := time.Now()
	go func() {
		for i := 0; i < 20; i++ {
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "slower than the minimum") {
		t.Errorf("slow body: %d %s", resp.StatusCode, b)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow body answered after %s, want about the 300ms grace", d)
	}
	resp2, err := http.Post(srv.URL, "application/octet-stream", strings.NewReader(strings.Repeat("f", 100000)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != 200 || string(b) != "100000" {
		t.Errorf("fast body after the slow one: %d %s", resp2.StatusCode, b)
	}
}

// FuzzDotSegment: a path RejectDotSegments lets through is one the mux would not
// redirect for cleaning: path.Clean leaves it as it is (but for a trailing slash).
func FuzzDotSegment(f *testing.F) {
	for _, s := range []string{"/v2/models/x/infer", "/v2/../x", "/v2//x", "/./", "/v2/", "/a/.b/..c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			return
		}
		if _, bad := dotSegment(p); bad {
			return
		}
		clean := path.Clean(p)
		if strings.HasSuffix(p, "/") && clean != "/" {
			clean += "/"
		}
		if clean != p {
			t.Fatalf("dotSegment accepted %q, which a mux would redirect to %q", p, clean)
		}
	})
}
