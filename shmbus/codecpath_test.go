package shmbus

import (
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/codec"
)

// BenchmarkEncodePath and BenchmarkDecodePath time what Send and the reader
// do to one 64-byte Ask besides touching the ring: the bus's envelope and
// body encoding, and their decoding from a copy, the way link.deliver does
// it (names from the reader's cache, one envelope reused).
func benchEnv() *bus.Envelope {
	return &bus.Envelope{Kind: bus.KindAsk, From: bus.Ref{Node: bus.NewNodeID(), Name: "a", ID: 3}, To: bus.Ref{Name: "echo"}, Corr: 12345, Msg: string(make([]byte, 64))}
}

func BenchmarkEncodePath(b *testing.B) {
	types, c, env := bus.NewTypes(), codec.Binary(), benchEnv()
	var body []byte // the bus's body buffer
	b.ReportAllocs()
	for b.Loop() {
		bp := getBuf()
		body, _ := types.EncodeBody(c, env, body[:0])
		env.Body = body
		bp.out, _ = env.AppendBinary(bp.out[:0])
		env.Body = nil
		putBuf(bp)
	}
}

func BenchmarkDecodePath(b *testing.B) {
	types, c, env := bus.NewTypes(), codec.Binary(), benchEnv()
	body, _ := types.EncodeBody(c, env, nil)
	env.Body = body
	wire, _ := env.AppendBinary(nil)
	var buf []byte
	var names bus.EnvelopeDecoder
	var e bus.Envelope // the reader decodes every record into the same envelope
	b.ReportAllocs()
	for b.Loop() {
		buf = append(buf[:0], wire...)
		e = bus.Envelope{}
		if err := names.Decode(buf, &e); err != nil {
			b.Fatal(err)
		}
		if err := types.DecodeBody(c, &e); err != nil {
			b.Fatal(err)
		}
	}
}
