package ledger

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Sealer is the background service that seals new entries into the chain every interval.
// Start it once; Stop waits for a sealing run in progress to finish.
type Sealer struct {
	ledger   *Ledger
	interval time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSealer returns a sealer for l that runs every interval.
func NewSealer(l *Ledger, interval time.Duration, log *slog.Logger) *Sealer {
	return &Sealer{ledger: l, interval: interval, log: log}
}

// Start begins sealing in the background until Stop or ctx ends.
func (s *Sealer) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go s.run(ctx)
}

func (s *Sealer) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.once(ctx)
		}
	}
}

// once runs one sealing pass with a bound on its time, and never lets a panic end the service.
func (s *Sealer) once(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("sealer panicked", "panic", r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	n, err := s.ledger.Seal(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Error("sealing failed", "err", err)
	case n > 0:
		s.log.Debug("sealed entries", "entries", n)
	}
}

// Stop ends the service and waits for it.
func (s *Sealer) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
