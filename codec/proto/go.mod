module github.com/xbus-dev/xbus/codec/proto

go 1.26.0

replace github.com/xbus-dev/xbus => ../..

require github.com/xbus-dev/xbus v0.0.0-00010101000000-000000000000

require (
	github.com/fxamacker/cbor/v2 v2.9.6 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/x448/float16 v0.8.4 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/tidwall/btree v1.8.2 // indirect
	google.golang.org/protobuf v1.36.12
)
