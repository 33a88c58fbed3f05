package pgserver

import (
	"slices"
	"testing"
)

func TestDurableClusterIsSizedForTheMachine(t *testing.T) {
	const gb = 1 << 30
	for memory, want := range map[uint64]string{0: "128MB", gb / 2: "128MB", 4 * gb: "512MB", 24 * gb: "1024MB"} {
		if got := sharedBuffers(memory); got != want {
			t.Errorf("sharedBuffers(%d) = %s, want %s", memory, got, want)
		}
	}
	durable, err := serverSettings(Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "shared_buffers=" + sharedBuffers(totalMemory())
	if !slices.Contains(durable, want) || !slices.Contains(durable, "wal_buffers=16MB") {
		t.Errorf("durable settings %v; want %s and wal_buffers=16MB", durable, want)
	}
	// A setting given by the caller still wins.
	mine, err := serverSettings(Options{Durable: true, Settings: map[string]string{"shared_buffers": "256MB"}})
	if err != nil || !slices.Contains(mine, "shared_buffers=256MB") {
		t.Errorf("settings %v, %v; want shared_buffers=256MB", mine, err)
	}
}

// MallocTunables is mallocTunables, for the lifecycle test's look at the postmaster.
const MallocTunables = mallocTunables
