package mgmt

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/registry"
)

func (h *Handler) listVersions(w http.ResponseWriter, r *http.Request, p params) error {
	vs, err := h.svc.Store().Versions(r.Context(), p["name"])
	if err != nil {
		return err
	}
	if len(vs) == 0 { // an unknown model, or one without versions yet
		if _, err := h.svc.Store().Model(r.Context(), p["name"]); err != nil {
			return err
		}
		vs = []registry.ModelVersion{}
	}
	writeJSON(w, http.StatusOK, vs)
	return nil
}

// version resolves the {v} segment: a version number, or an alias (or "latest").
func (h *Handler) version(r *http.Request, p params) (int64, error) {
	s := p["v"]
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return 0, badRequest("version %d: versions are numbered from 1", n)
		}
		return n, nil
	}
	return h.svc.Store().ResolveAlias(r.Context(), p["name"], s)
}

func (h *Handler) getVersion(w http.ResponseWriter, r *http.Request, p params) error {
	n, err := h.version(r, p)
	if err != nil {
		return err
	}
	v, err := h.svc.Store().Version(r.Context(), p["name"], n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (h *Handler) stageVersion(w http.ResponseWriter, r *http.Request, p params) error {
	n, err := h.version(r, p)
	if err != nil {
		return err
	}
	var req mgmtapi.StageRequest
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	if req.Reason != "" {
		ctx = registry.WithActor(ctx, actorName(r), req.Reason)
	}
	v, err := h.svc.Store().TransitionStage(ctx, p["name"], n, req.Stage, req.ArchiveExisting)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// pushVersion takes a version folder as a tar, in one of two forms (query parameters
// may add to the metadata of either, see pushQuery):
//   - Content-Type application/x-tar: the body is the tar, the metadata (VersionMeta
//     JSON) is in the X-Ferry-Version-Meta header (the form the CLI uses: it streams);
//   - multipart/form-data: a part "meta" (VersionMeta JSON) first, then a part
//     "artifact" (the tar), for HTML forms and curl -F.
func (h *Handler) pushVersion(w http.ResponseWriter, r *http.Request, p params) error {
	body := &limitedReader{r: r.Body, left: h.o.MaxArtifactBytes}
	r.Body = struct {
		io.Reader
		io.Closer
	}{body, r.Body}
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var meta mgmtapi.VersionMeta
	var artifact io.Reader
	var err error
	switch ct {
	case mgmtapi.ContentTar:
		meta, err = mgmtapi.ParseVersionMeta([]byte(r.Header.Get(mgmtapi.HeaderVersionMeta)))
		if err != nil {
			return badRequest("%s header: %v", mgmtapi.HeaderVersionMeta, err)
		}
		artifact = r.Body
	case mgmtapi.ContentMultipart:
		meta, artifact, err = multipartPush(multipart.NewReader(r.Body, ctParams["boundary"]))
		if err != nil {
			return h.pushErr(body, err)
		}
	default:
		return badRequest("Content-Type %q: a push is %s (metadata in the %s header) or %s (parts meta and artifact)",
			r.Header.Get("Content-Type"), mgmtapi.ContentTar, mgmtapi.HeaderVersionMeta, mgmtapi.ContentMultipart)
	}
	if err := pushQuery(r.URL.Query(), &meta); err != nil {
		return err
	}
	v, err := h.svc.PushVersion(r.Context(), meta.Version(p["name"]), artifact)
	if err != nil {
		return h.pushErr(body, err)
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// pushErr names the artifact limit when the body ran past it, whoever read it and
// however they wrapped (or flattened) the reader's error.
func (h *Handler) pushErr(body *limitedReader, err error) error {
	if body.over {
		return &tooLargeError{what: "the artifact", limit: h.o.MaxArtifactBytes}
	}
	return err
}

// limitedReader fails a read past left bytes and remembers that it did.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
}

var errArtifactTooLarge = errors.New("artifact over the size limit")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		if n, err := l.r.Read(one[:]); n == 0 {
			return 0, err // io.EOF at the end; nil asks the caller to read again
		}
		l.over = true
		return 0, errArtifactTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// multipartPush reads the "meta" part, then returns the "artifact" part to stream.
func multipartPush(mr *multipart.Reader) (mgmtapi.VersionMeta, io.Reader, error) {
	var meta mgmtapi.VersionMeta
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return meta, nil, badRequest("multipart push: no part named \"artifact\"")
		}
		if err != nil {
			return meta, nil, badRequest("multipart push: %v", err)
		}
		switch part.FormName() {
		case "meta":
			b, err := io.ReadAll(io.LimitReader(part, mgmtapi.MaxMetaBytes+1))
			if err != nil {
				return meta, nil, badRequest("multipart push: part meta: %v", err)
			}
			if meta, err = mgmtapi.ParseVersionMeta(b); err != nil {
				return meta, nil, badRequest("multipart push: part meta: %v", err)
			}
		case "artifact":
			return meta, part, nil
		default:
			return meta, nil, badRequest("multipart push: unknown part %q (want meta, then artifact)", part.FormName())
		}
	}
}
