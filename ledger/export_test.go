package ledger

// CopyThreshold is copyThreshold, for tests of the COPY path.
const CopyThreshold = copyThreshold
