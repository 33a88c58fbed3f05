package match

// SingleError is singleError, for the external tests: the error a one-row import's problems
// make when they are one recording's.
var SingleError = singleError

// TimeLedgerInput is timeLedgerInput, for the test that holds the import's set-based posting to
// the entry a single recording would post.
var TimeLedgerInput = timeLedgerInput

// ExpLedgerInput is expLedgerInput, for the test that writes a credit note as the rules before
// M4's per-line cap let one be written.
var ExpLedgerInput = expLedgerInput

// SetLaneLockTimeout sets how long s's waiting lane waits for an officer's lock (PostgreSQL's
// lock_timeout syntax), for the tests that need it to run out.
func SetLaneLockTimeout(s *Service, d string) { s.laneLockTimeout = d }
