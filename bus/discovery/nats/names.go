package nats

import (
	"regexp"
	"strings"
)

// EndpointName maps an xbus name to a NATS micro endpoint name, which allows
// only [A-Za-z0-9_-]: letters, digits and '-' stay as they are, and every
// other byte becomes '_' and its two lowercase hex digits ("orders.create"
// becomes "orders_2ecreate", "my_svc" becomes "my_5fsvc"). One rule, so two
// names never map to one endpoint and the mapping can be undone
// (XbusName). The endpoint's subject is the endpoint prefix and this name
// ("xbus.orders_2ecreate").
func EndpointName(name string) string {
	var sb strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if plain(c) {
			sb.WriteByte(c)
			continue
		}
		const hex = "0123456789abcdef"
		sb.WriteByte('_')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}

// XbusName undoes EndpointName; ok is false for a string EndpointName never
// returns.
func XbusName(endpoint string) (name string, ok bool) {
	var sb strings.Builder
	for i := 0; i < len(endpoint); i++ {
		c := endpoint[i]
		switch {
		case plain(c):
			sb.WriteByte(c)
		case c == '_' && i+2 < len(endpoint) && isLowerHex(endpoint[i+1]) && isLowerHex(endpoint[i+2]):
			b := unhex(endpoint[i+1])<<4 | unhex(endpoint[i+2])
			if plain(b) {
				return "", false // EndpointName keeps it as it is
			}
			sb.WriteByte(b)
			i += 2
		default:
			return "", false
		}
	}
	return sb.String(), endpoint != ""
}

// ServiceName maps a bus's name (bus.WithName) to a micro service name:
// each run of bytes outside [A-Za-z0-9_-] becomes one '_' ("orders svc"
// becomes "orders_svc"); an empty result is "xbus". Many buses share a
// service name, so it need not be unique; the service id (the node id)
// tells instances apart.
func ServiceName(busName string) string {
	var sb strings.Builder
	under := false
	for i := 0; i < len(busName); i++ {
		c := busName[i]
		if plain(c) || c == '_' {
			sb.WriteByte(c)
			under = false
			continue
		}
		if !under {
			sb.WriteByte('_')
			under = true
		}
	}
	if sb.Len() == 0 {
		return "xbus"
	}
	return sb.String()
}

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// semver is the SemVer 2.0.0 grammar (semver.org's suggested expression),
// which a micro service's version must match.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// serviceNameRE is the micro service name's grammar.
var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
