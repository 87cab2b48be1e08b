module github.com/xbus-dev/xbus

go 1.26.0

require github.com/google/uuid v1.6.0

require (
	github.com/nats-io/nats.go v1.55.0
	github.com/tidwall/btree v1.8.2
	golang.org/x/net v0.60.0
)

require (
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.57.0 // indirect
)

require (
	github.com/fxamacker/cbor/v2 v2.9.6
	github.com/klauspost/compress v1.20.3
	github.com/x448/float16 v0.8.4 // indirect
	golang.org/x/sys v0.49.0
)
