package main

import (
	"testing"

	"github.com/ccr-infuse/infuse/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }
