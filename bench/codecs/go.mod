module github.com/xbus-dev/xbus/bench/codecs

go 1.26.0

replace github.com/xbus-dev/xbus => ../..

require (
	github.com/fxamacker/cbor/v2 v2.9.6
	github.com/vmihailenco/msgpack/v5 v5.4.1
	github.com/xbus-dev/xbus v0.0.0-00010101000000-000000000000
)

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	github.com/x448/float16 v0.8.4 // indirect
)
