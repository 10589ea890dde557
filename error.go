// Package fieldops is the domain of the fieldops service: its types, the
// permission matrix, plans, errors and the service interfaces that the
// store implements and the front ends (admin panel, bot, scheduler) call.
//
// It imports the standard library only.
package fieldops

import (
	"errors"
	"fmt"
)

// Error codes. Each front end maps them once: to an HTTP status in admin/,
// to a reply in bot/.
const (
	ECONFLICT     = "conflict"     // the action clashes with the current state
	EFORBIDDEN    = "forbidden"    // authenticated but not allowed
	EINTERNAL     = "internal"     // a fault of ours
	EINVALID      = "invalid"      // bad input; Message names the field
	ELIMIT        = "limit"        // a plan or rate limit was reached
	ENOTFOUND     = "not_found"    // no such thing in this organisation
	EUNAUTHORIZED = "unauthorized" // not signed in, or the session ended
	EUNAVAILABLE  = "unavailable"  // a backing service is down
)

// Error is the one error type of the domain. Message is written for the
// user and says what to change; Field names the input at fault, if any;
// Err is the cause, for the log only.
type Error struct {
	Code    string
	Field   string
	Message string
	Err     error
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Message != "":
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	case e.Err != nil:
		return fmt.Sprintf("%s: %v", e.Code, e.Err)
	default:
		return fmt.Sprintf("%s: %s", e.Code, e.Message)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted user message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error naming the field at fault.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected cause as EINTERNAL; the cause is kept for
// the log and never shown to the user.
func Internal(err error, during string) *Error {
	return &Error{Code: EINTERNAL, Message: "Something went wrong on our side; please try again.", Err: fmt.Errorf("%s: %w", during, err)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "Something went wrong on our side; please try again."
}

// ErrorField returns the input field err names, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
