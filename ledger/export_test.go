package ledger

// CopyThreshold is copyThreshold, for tests of the COPY path.
const CopyThreshold = copyThreshold

// TxidGap is txidGap, for the test of a ledger restored into a younger cluster.
var TxidGap = txidGap

// SealBatchSize is sealBatchSize, for the test of a transaction sealed in several runs.
const SealBatchSize = sealBatchSize
