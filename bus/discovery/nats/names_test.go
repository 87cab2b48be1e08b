package nats

import (
	"strings"
	"testing"
	"testing/quick"
)

func TestEndpointName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"greeter", "greeter"},
		{"orders.create", "orders_2ecreate"},
		{"my_svc", "my_5fsvc"},
		{"a-b", "a-b"},
		{"prices/eur", "prices_2feur"},
		{"é", "_c3_a9"},
	} {
		got := EndpointName(c.in)
		if got != c.want || !serviceNameRE.MatchString(got) {
			t.Errorf("EndpointName(%q) = %q, want %q", c.in, got, c.want)
		}
		if back, ok := XbusName(got); !ok || back != c.in {
			t.Errorf("XbusName(%q) = %q, %v; want %q", got, back, ok, c.in)
		}
	}
	for _, bad := range []string{"", "a.b", "_", "_2", "_2E", "_61", "a b"} {
		if n, ok := XbusName(bad); ok {
			t.Errorf("XbusName(%q) = %q, true; EndpointName never returns it", bad, n)
		}
	}
}

// TestEndpointNameInjective: two names never share an endpoint.
func TestEndpointNameInjective(t *testing.T) {
	f := func(a, b string) bool {
		ea, eb := EndpointName(a), EndpointName(b)
		back, _ := XbusName(ea)
		return (a == b) == (ea == eb) && (a == "" || back == a) && serviceNameRE.MatchString(ea+"x")
	}
	if err := quick.Check(f, nil); err != nil {
		t.Fatal(err)
	}
}

func TestServiceName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"orders", "orders"},
		{"orders svc", "orders_svc"},
		{"a.b..c", "a_b_c"},
		{"x_y-z", "x_y-z"},
		{"", "xbus"},
		{"...", "_"},
	} {
		if got := ServiceName(c.in); got != c.want || !serviceNameRE.MatchString(got) {
			t.Errorf("ServiceName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	ok := Config{URL: "nats://127.0.0.1:4222", Secret: testSecret}
	for _, c := range []struct {
		name string
		mut  func(c *Config)
		want string
	}{
		{"short secret", func(c *Config) { c.Secret = []byte("short") }, "Secret"},
		{"no server", func(c *Config) { c.URL = "" }, "URL"},
		{"version not semver", func(c *Config) { c.Version = "v1.2" }, "SemVer"},
		{"service name with a dot", func(c *Config) { c.Service = "orders.svc" }, "Service"},
		{"prefix with a wildcard", func(c *Config) { c.Prefix = "xbus.*" }, "prefix"},
		{"endpoint prefix with an empty token", func(c *Config) { c.EndpointPrefix = "xbus..x" }, "prefix"},
		{"TTL below the heartbeat", func(c *Config) { c.Heartbeat, c.TTL = 2e9, 1e9 }, "TTL"},
	} {
		cfg := ok
		c.mut(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, want an error about %s", c.name, err, c.want)
		}
	}
	for _, v := range []string{"0.0.0", "1.2.3", "1.0.0-rc.1+build.5"} {
		cfg := ok
		cfg.Version = v
		if _, err := New(cfg); err != nil {
			t.Errorf("Version %q: %v", v, err)
		}
	}
}
