package bus

// StreamID is the id s has on its link (0 in process).
func StreamID(s *Stream) uint64 { return s.id }

// ForgedStreamGrant is a grant of n to stream id, as a lying peer would
// send it.
func ForgedStreamGrant(id, n uint64) any { return &sysStreamGrant{ID: id, N: n} }

// OpenStreams is how many streams b has open (on links, and the opening
// ends of those in process).
func OpenStreams(b *Bus) int { return len(b.streams.all()) }

// LinkTo is b's nearest link to node, or nil.
func LinkTo(b *Bus, node NodeID) Link {
	_, l := b.linkTo(node)
	return l
}
