package raw

import "github.com/xbus-dev/xbus/bus"

// Codec encodes a []byte, *[]byte, string or *string by appending it as it
// is, and decodes into a *[]byte or *string. It is bus.Raw: see there.
var Codec bus.Codec = bus.Raw
