package bus

import "time"

// WithNodeID gives the bus the node id id instead of a fresh one, as a peer
// that lies about who it is would.
func WithNodeID(id NodeID) Option { return func(c *config) { c.nodeID = id } }

// WithProofTimeout bounds how long a second link to a linked node may take
// to prove it leads to the same node. Zero: DefaultProofTimeout.
func WithProofTimeout(d time.Duration) Option { return func(c *config) { c.proofTimeout = d } }
