package match

// SingleError is singleError, for the external tests: the error a one-row import's problems
// make when they are one recording's.
var SingleError = singleError
