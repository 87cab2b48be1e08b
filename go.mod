module github.com/xbus-dev/xbus

go 1.26.0

require github.com/google/uuid v1.6.0

require (
	github.com/klauspost/compress v1.20.3 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
