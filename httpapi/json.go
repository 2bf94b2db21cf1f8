package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// status maps domain error codes to HTTP statuses.
var status = map[string]int{
	call.Invalid:      http.StatusBadRequest,
	call.Unauthorized: http.StatusUnauthorized,
	call.Forbidden:    http.StatusForbidden,
	call.NotFound:     http.StatusNotFound,
	call.Conflict:     http.StatusConflict,
	call.TooLarge:     http.StatusRequestEntityTooLarge,
	call.Overloaded:   http.StatusTooManyRequests,
	call.Unavailable:  http.StatusServiceUnavailable,
	call.Internal:     http.StatusInternalServerError,
}

// writeError answers with the error's code and message; internal errors
// are shown as "internal error" (the detail goes to the log by the caller).
func writeError(w http.ResponseWriter, err error) {
	code := call.ErrorCode(err)
	st, ok := status[code]
	if !ok {
		st, code = http.StatusInternalServerError, call.Internal
	}
	if (st == http.StatusServiceUnavailable || st == http.StatusTooManyRequests) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, st, errorBody{Error: errorDetail{Code: code, Message: call.ErrorMessage(err)}})
}

func writeJSON(w http.ResponseWriter, st int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(st)
	json.NewEncoder(w).Encode(v)
}

// fail logs an internal error with its detail and answers it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if call.ErrorCode(err) == call.Internal {
		s.log.Error("internal error", "route", r.Pattern, "err", err)
	}
	writeError(w, err)
}

// decode reads one JSON object of at most MaxBody bytes into v, rejecting
// unknown fields and trailing data, with messages naming the field.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return call.Errorf(call.Invalid, "Content-Type: must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return call.Errorf(call.TooLarge, "body: larger than %d bytes", s.cfg.MaxBody)
	}
	if err != nil {
		return call.Errorf(call.Invalid, "body: cannot read: %v", err)
	}
	return decodeJSON(body, v)
}

// decodeJSON is the strict decoder behind decode (fuzzed on its own).
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); err != io.EOF {
			return call.Errorf(call.Invalid, "body: must hold exactly one JSON object")
		}
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var fe *fieldError
	var te *time.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return call.Errorf(call.Invalid, "body: empty; expected a JSON object")
	case errors.As(err, &syn):
		return call.Errorf(call.Invalid, "body: invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &te):
		return call.Errorf(call.Invalid, "started_at, expires_at: times must be RFC 3339, such as 2026-11-26T09:30:00Z")
	case errors.As(err, &fe):
		return call.Errorf(call.Invalid, "%s", fe.msg)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return call.Errorf(call.Invalid, "body: must be a JSON object")
		}
		return call.Errorf(call.Invalid, "%s: must be %s", typ.Field, jsonType(typ.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if strings.ContainsAny(name, "0123456789") {
			// A body keyed by number would put a phone number here.
			return call.Errorf(call.Invalid, "unknown field (its name holds digits, so it is not repeated here)")
		}
		return call.Errorf(call.Invalid, "%s: unknown field", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return call.Errorf(call.Invalid, "body: truncated JSON")
	}
	return call.Errorf(call.Invalid, "body: %v", err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "float64", "int", "int64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	}
	return "an object"
}

// fieldError is returned by custom unmarshalers to name the field.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

// strings1 is a JSON string or array of strings.
type strings1 []string

func (s *strings1) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = strings1{v}
		return nil
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return &fieldError{"signalling: pai and identity must be a string or an array of strings"}
	}
	*s = v
	return nil
}
