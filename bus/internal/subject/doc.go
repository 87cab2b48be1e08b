// Package subject is an index of subscription patterns, matched against
// published subjects without looking at every pattern.
//
// Subjects are dot-separated tokens; a pattern may use "*" for exactly one
// token and ">" as its last token for one or more, as in NATS. The index is
// a token trie: each node keeps its exact children in a map (an exact
// token is a map lookup), its "*" child, the values of patterns ending
// there and the values of patterns ending there with ">". Matching a
// subject of k tokens visits at most 2^k nodes in the worst case (every
// level with both an exact and a "*" child), in practice a handful, and
// allocates nothing.
//
// The matcher uses no B-tree: at a trie node a subject token wants one
// exact child, never a range of them, and a map answers that in one probe
// where a B-tree needs log n comparisons. Ordered questions go to a
// tidwall/btree map kept beside the trie, of each distinct pattern and how
// many values it holds: Patterns lists them sorted, or those under a
// prefix, without a sort per call.
//
// An Index is not safe for concurrent use; its owner locks it.
package subject
