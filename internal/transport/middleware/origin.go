package middleware

import (
	"fmt"
	"net/http"
)

// BrowserWrite refuses a request that a web page made a browser send, when it could
// change the server's state: any method but GET, HEAD and OPTIONS, carrying an Origin
// header. Browsers put Origin on every such request; Ferry's own clients, tritonclient,
// the SDKs and curl send none. Comparing Origin with Host would stop a page of another
// site (CSRF) but not one that reached a loopback port through DNS rebinding, where the
// two agree; refusing every browser write stops both (the Ray dashboard's
// CVE-2026-27482 let DELETE through such a check). A console served by Ferry itself
// will need a list of allowed origins here. nil: the request may go on.
func BrowserWrite(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	origin, sent := r.Header["Origin"]
	if !sent {
		return nil
	}
	return fmt.Errorf("%s from a web page (Origin %q) is refused: a browser may not change this server's state", r.Method, origin[0])
}

// RefuseBrowserWrites answers 403 to the requests BrowserWrite refuses.
func RefuseBrowserWrites() Layer {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := BrowserWrite(r); err != nil {
				WriteError(w, http.StatusForbidden, err.Error())
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
