package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// TestLoadConfigProxiesAndSecure reads INFUSE_TRUSTED_PROXIES as addresses and prefixes, and
// refuses anything else by name rather than starting with fewer proxies than were meant, or a
// prefix that would trust every caller; INFUSE_SECURE mistyped is refused too.
func TestLoadConfigProxiesAndSecure(t *testing.T) {
	t.Parallel()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	for _, c := range []struct {
		value string
		want  []string
	}{
		{"", nil},
		{"10.0.0.1", []string{"10.0.0.1/32"}},
		{"10.1.2.3/8, 192.0.2.1 2001:db8::1", []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::1/128"}},
		{" ,172.16.0.0/12,, ", []string{"172.16.0.0/12"}},
	} {
		cfg, err := loadConfig(env(map[string]string{"INFUSE_TRUSTED_PROXIES": c.value}))
		if err != nil {
			t.Errorf("%q: %v", c.value, err)
			continue
		}
		var got []string
		for _, p := range cfg.TrustedProxies {
			got = append(got, p.String())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: %v, want %v", c.value, got, c.want)
		}
	}
	for _, bad := range []string{"proxy.example", "10.0.0.0/33", "10.0.0.1:8080", "10.0.0.0/8;10.1.1.1", "0.0.0.0/0", "::/0"} {
		_, err := loadConfig(env(map[string]string{"INFUSE_TRUSTED_PROXIES": "192.0.2.1, " + bad}))
		if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(err.Error(), "INFUSE_TRUSTED_PROXIES") {
			t.Errorf("%q: %v, want an Invalid error naming the variable", bad, err)
		}
	}
	for v, want := range map[string]bool{"true": true, "1": true, "TRUE": true, "": false, "0": false, "false": false} {
		cfg, err := loadConfig(env(map[string]string{"INFUSE_SECURE": v}))
		if err != nil || cfg.Secure != want {
			t.Errorf("INFUSE_SECURE=%q: secure %v, %v", v, cfg.Secure, err)
		}
	}
	// A security setting mistyped is refused, not read as off.
	if _, err := loadConfig(env(map[string]string{"INFUSE_SECURE": "ture"})); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("INFUSE_SECURE=ture: %v", err)
	}
	// A claim schedule that is no cron schedule is refused with the rest of the configuration,
	// naming the variable.
	if _, err := loadConfig(env(map[string]string{"INFUSE_CLAIM_SCHEDULE": "every quarter"})); apperr.CodeOf(err) != apperr.Invalid ||
		apperr.RuleOf(err) != apperr.RuleConfig || !strings.HasPrefix(apperr.As(err).Message, "INFUSE_CLAIM_SCHEDULE: ") {
		t.Errorf("INFUSE_CLAIM_SCHEDULE=every quarter: %v", err)
	}
}
