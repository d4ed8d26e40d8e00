package llm

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error a client sees, in OpenAI's vocabulary: the edge writes it as
// {"error": {"message", "type", "param", "code"}} with Status.
type Error struct {
	Status  int    // HTTP status
	Type    string // invalid_request_error, authentication_error, permission_error, not_found_error, rate_limit_error, insufficient_quota, server_error, api_error
	Code    string // e.g. context_length_exceeded, model_not_found, invalid_api_key, rate_limit_exceeded
	Param   string // the request field at fault, "" for none
	Message string
	// RetryAfter, when positive, is sent as Retry-After (seconds) on a 429 or 503.
	RetryAfter int
}

func (e *Error) Error() string { return e.Message }

// AsError returns err's *Error, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// BadRequest is a 400 about param.
func BadRequest(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

// ContextLengthExceeded is the 400 for a prompt (plus max_tokens) past the model's
// context window: never a silent truncation.
func ContextLengthExceeded(model string, limit, prompt, maxTokens int) *Error {
	e := BadRequest("messages", "This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the messages, %d in the completion). Please reduce the length of the messages or completion.", limit, prompt+maxTokens, prompt, maxTokens)
	e.Code = "context_length_exceeded"
	return e
}

// ModelNotFound is the 404 for a model no backend serves (or the key may not use).
func ModelNotFound(model string) *Error {
	return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: "model",
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model)}
}

// VersionNotFound is the 404 for a version of a model that is not served (not
// loaded, or unloaded since).
func VersionNotFound(model, version string) *Error {
	return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: "model",
		Message: fmt.Sprintf("The model `%s` has no version %s served.", model, version)}
}

// InvalidKey is the 401 for a missing or unknown API key.
func InvalidKey() *Error {
	return &Error{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
		Message: "Incorrect API key provided."}
}

// RateLimited is the 429 for a key over its requests, tokens or concurrency limit.
func RateLimited(retryAfter int, format string, args ...any) *Error {
	return &Error{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "rate_limit_exceeded", RetryAfter: retryAfter, Message: fmt.Sprintf(format, args...)}
}

// BudgetExceeded is the 429 for a key or team whose budget for the period is spent.
func BudgetExceeded(format string, args ...any) *Error {
	return &Error{Status: http.StatusTooManyRequests, Type: "insufficient_quota", Code: "insufficient_quota", Message: fmt.Sprintf(format, args...)}
}

// Unavailable is the 503 when no upstream or engine can take the request now.
func Unavailable(retryAfter int, format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "service_unavailable", RetryAfter: retryAfter, Message: fmt.Sprintf(format, args...)}
}
