package match_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// tracer records where a benchmark's time goes, statement by statement (INFUSE_BENCH_TRACE=1).
type tracer struct {
	mu  sync.Mutex
	tot map[string]time.Duration
	n   map[string]int
}
type startKey struct{}
type sqlKey struct{}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(context.WithValue(ctx, startKey{}, time.Now()), sqlKey{}, d.SQL)
}
func (tr *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	s, ok := ctx.Value(sqlKey{}).(string)
	st, ok2 := ctx.Value(startKey{}).(time.Time)
	if !ok || !ok2 {
		return
	}
	tr.add(s, time.Since(st))
}
func (tr *tracer) add(s string, d time.Duration) {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 70 {
		s = s[:70]
	}
	tr.mu.Lock()
	tr.tot[s] += d
	tr.n[s]++
	tr.mu.Unlock()
}
func (tr *tracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return context.WithValue(context.WithValue(ctx, startKey{}, time.Now()), sqlKey{}, "COPY "+d.TableName.Sanitize())
}
func (tr *tracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromEndData) {
	s, _ := ctx.Value(sqlKey{}).(string)
	st, _ := ctx.Value(startKey{}).(time.Time)
	tr.add(s, time.Since(st))
}

// A batch's statements are timed from the end of the one before (or the batch's start).
type batchKey struct{}

func (tr *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	last := time.Now()
	return context.WithValue(ctx, batchKey{}, &last)
}
func (tr *tracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if last, ok := ctx.Value(batchKey{}).(*time.Time); ok {
		tr.add(d.SQL, time.Since(*last))
		*last = time.Now()
	}
}
func (tr *tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (tr *tracer) dump() {
	type kv struct {
		k string
		v time.Duration
	}
	var all []kv
	for k, v := range tr.tot {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
	for _, x := range all[:min(25, len(all))] {
		fmt.Fprintf(os.Stderr, "%8v %4d %s\n", x.v.Round(time.Millisecond), tr.n[x.k], x.k)
	}
}
