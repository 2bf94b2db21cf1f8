package call

import (
	"errors"
	"fmt"
)

// Error codes. Each front end maps them to its own status table.
const (
	Invalid      = "invalid"      // the request is wrong; the message names the field
	Unauthorized = "unauthorized" // no or bad credentials
	Forbidden    = "forbidden"    // credentials lack the role
	NotFound     = "not_found"    // no such object for this tenant
	Conflict     = "conflict"     // the object exists or changed
	TooLarge     = "too_large"    // body or batch over its limit
	Overloaded   = "overloaded"   // over a rate or concurrency budget; retry later
	Unavailable  = "unavailable"  // a dependency is down; retry later
	Internal     = "internal"     // a bug or an unexpected failure; details only in logs
)

// Error is ringfence's one domain error: a code and a message a user can act
// on. Messages never contain phone numbers or secrets.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, Internal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// "internal error" for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
