package reports

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The pack of a quarter with 100,000 officer-time lines must be written in at most 10 s with
// peak memory at most 300 MB (issue acceptance, make bench).
const (
	benchLines     = 100_000
	benchMaxMemMB  = 300
	benchMaxTimeMs = 10_000
)

// BenchmarkPack100k renders the whole pack (claim.pdf, claim.xlsx and manifest.json, as
// WriteDir does) of a quarter with 100,000 officer-time lines. Besides ns/op it reports:
//   - peak-heap-MB: the highest HeapInuse+StackInuse sampled every 2 ms while rendering, the
//     pack itself included, as it is live;
//   - peak-rss-MB (Linux): the process's resident high-water mark over the same span;
//   - cpu-s/op: the CPU time a pack costs, which unlike ns/op does not grow when other
//     processes compete for the CPU.
//
// Run with: go test ./reports -run '^$' -bench Pack100k -benchtime 1x
func BenchmarkPack100k(b *testing.B) {
	p := testPack(b, benchLines)
	debug.FreeOSMemory() // the fixture's garbage is not the renderer's
	resetRSSPeak()
	peak := sampleHeap(2 * time.Millisecond)
	var bytes int64
	cpu0, cpuOK := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		files, _, err := Build(p)
		if err != nil {
			b.Fatal(err)
		}
		bytes = 0
		for _, f := range files {
			bytes += int64(len(f.Data))
		}
	}
	elapsed := time.Since(start) / time.Duration(max(b.N, 1))
	b.StopTimer()
	if cpu1, ok := cpuTime(); ok && cpuOK {
		// CPU seconds a pack costs, all threads, GC included: comparable on a busy machine,
		// where ns/op is not.
		b.ReportMetric((cpu1-cpu0).Seconds()/float64(max(b.N, 1)), "cpu-s/op")
	}
	heapMB := float64(peak()) / (1 << 20)
	b.ReportMetric(heapMB, "peak-heap-MB")
	b.ReportMetric(float64(bytes)/(1<<20), "pack-MB")
	if rss, ok := rssPeak(); ok {
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
	}
	if heapMB > benchMaxMemMB {
		b.Errorf("peak heap %.0f MB, over the %d MB target", heapMB, benchMaxMemMB)
	}
	if elapsed > benchMaxTimeMs*time.Millisecond && !raceEnabled() {
		b.Errorf("%v per pack, over the %d s target", elapsed, benchMaxTimeMs/1000)
	}
}

// sampleHeap samples HeapInuse+StackInuse until the returned function is called, which
// returns the highest value seen.
func sampleHeap(every time.Duration) func() uint64 {
	var (
		mu   sync.Mutex
		high uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	read := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		high = max(high, ms.HeapInuse+ms.StackInuse)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		mu.Lock()
		defer mu.Unlock()
		return high
	}
}

// resetRSSPeak resets the kernel's resident high-water mark of this process (Linux).
func resetRSSPeak() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// rssPeak returns the process's resident high-water mark (VmHWM) in bytes, on Linux.
func rssPeak() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
