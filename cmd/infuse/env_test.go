package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// TestLoadConfigTrustedProxies reads INFUSE_TRUSTED_PROXIES as addresses and prefixes, and
// refuses anything else by name rather than starting with fewer proxies than were meant.
func TestLoadConfigTrustedProxies(t *testing.T) {
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
	for _, bad := range []string{"proxy.example", "10.0.0.0/33", "10.0.0.1:8080", "10.0.0.0/8;10.1.1.1"} {
		_, err := loadConfig(env(map[string]string{"INFUSE_TRUSTED_PROXIES": "192.0.2.1, " + bad}))
		if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(err.Error(), "INFUSE_TRUSTED_PROXIES") {
			t.Errorf("%q: %v, want an Invalid error naming the variable", bad, err)
		}
	}
	cfg, err := loadConfig(env(map[string]string{"INFUSE_SECURE": "true"}))
	if err != nil || !cfg.Secure {
		t.Errorf("INFUSE_SECURE=true: secure %v, %v", cfg.Secure, err)
	}
}
