package bus

import (
	"sync"
	"testing"
)

// TestAskTable: calls taken from the table across several chunks each have
// a slot of their own; an arming's id names its call and arming and
// nothing else; freed slots are taken again, each once, by callers racing
// each other.
func TestAskTable(t *testing.T) {
	b := &Bus{}
	b.asks.key = [2]uint64{0x0123456789abcdef, 0xfedcba9876543210}
	const n = askChunk0 + askChunk0<<1 + askChunk0<<2 + 1 // into a fourth chunk
	calls := map[*askCall]uint64{}
	ids := map[uint64]bool{}
	for range n {
		c, seq := b.remoteCall()
		if c == nil || calls[c] != 0 {
			t.Fatalf("call %p taken twice", c)
		}
		calls[c] = seq
		id := b.asks.id(c, seq)
		if ids[id] {
			t.Fatalf("id %x given twice", id)
		}
		ids[id] = true
		if got, named := b.asks.lookup(id); got != c || named != seq {
			t.Fatalf("id %x names %p arming %d, want %p arming %d", id, got, named, c, seq)
		}
	}
	for c := range calls {
		b.putCall(c)
	}
	if total, free := askCount(b); total != 64+128+256+512 || free != total {
		t.Fatalf("%d slots, %d free; want 960, all free", total, free)
	}
	for c, seq := range calls { // each id names an arming that ended
		got, named := b.asks.lookup(b.asks.id(c, seq))
		if got != c || named != seq {
			t.Fatal("an id names another call once its arming ended")
		}
		if _, _, ok := got.sent(); ok {
			t.Fatal("a freed call waits for a reply")
		}
	}

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 2000 {
				c, _ := b.remoteCall()
				c2, _ := b.remoteCall()
				if c == c2 {
					t.Error("one call taken twice at once")
					return
				}
				b.putCall(c)
				b.putCall(c2)
			}
		})
	}
	wg.Wait()
	if total, free := askCount(b); free != total || total != 960 {
		t.Fatalf("after racing: %d slots, %d free; want 960, all free", total, free)
	}
}

// askCount counts b's ask slots and the free ones, each free one once.
func askCount(b *Bus) (total, free int) {
	b.asks.forEach(func(*askCall) { total++ })
	seen := map[uint32]bool{}
	for s := uint32(b.asks.free.Load()); s != 0 && !seen[s]; s = b.asks.at(s - 1).nextFree.Load() {
		seen[s] = true
		free++
	}
	return total, free
}

// FuzzAskLookup: whatever id a peer sends, looking it up neither panics
// nor names a call whose arming waits, in a table with none waiting; and
// an id mixed from any index and arming unmixes to them.
func FuzzAskLookup(f *testing.F) {
	f.Add(uint64(0), uint64(0))
	f.Add(^uint64(0), uint64(1)<<askIdxBits-1)
	f.Fuzz(func(t *testing.T, corr, x uint64) {
		b := &Bus{}
		b.asks.key = [2]uint64{x, corr ^ x}
		c, _ := b.remoteCall()
		b.putCall(c)
		if got, _ := b.asks.lookup(corr); got != nil {
			if _, _, ok := got.sent(); ok {
				t.Fatal("a free call waits for a reply")
			}
		}
		if y := b.asks.unmix(b.asks.mix(x)); y != x {
			t.Fatalf("unmix(mix(%x)) = %x", x, y)
		}
	})
}
