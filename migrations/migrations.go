// Package migrations holds the database schema as numbered SQL files, embedded in the binary.
// Each file NNNN_name.sql is applied once, in order, in its own transaction.
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS
