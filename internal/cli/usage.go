package cli

import "fmt"

// Exit codes shared by the commands: success, a failed run, a bad command line.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// UsageError is an error in the command line: the commands print it with a
// pointer to --help and exit with ExitUsage.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Usagef formats a UsageError.
func Usagef(format string, args ...any) error { return UsageError{fmt.Sprintf(format, args...)} }
