package backup

// ClearDeadTemps is clearDeadTemps, for the tests.
var ClearDeadTemps = clearDeadTemps
