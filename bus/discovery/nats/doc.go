// Package nats finds a bus's peers through a NATS server and makes every
// bus a NATS micro service.
//
// # Discovery
//
// Give a Source to bus.WithDiscovery. Once the bus's transports listen, the
// source connects to NATS and announces the node on the subject
// "<Prefix>.node.<node id>" (Prefix: "xbus.discovery"): its id, its host
// (bus.HostID), the addresses its transports listen on and the names it
// hosts. It announces again on every Heartbeat and shortly after its names
// change, and says goodbye when the bus closes. Every node listens to the
// others' announcements and hands them to the bus (bus.Discovered.Found),
// which links each node the nearest way it can and knows its names before
// the link is up; a goodbye drops the node at once (Lost), and a node that
// vanishes without one (killed, cut off) is dropped when its TTL passes
// without news. A node that starts asks the others to announce themselves,
// so it need not wait a heartbeat to find them.
//
// # Trust
//
// Anyone who can publish on the NATS server can send announcements, so
// each one is authenticated: an HMAC-SHA256 under the cluster's shared
// Secret covers the subject and the announcement's bytes (header Xbus-Mac).
// An announcement without a valid MAC, larger than MaxAnnouncement,
// malformed, moved to another node's subject, dated more than MaxSkew from
// the receiver's clock, or with a sequence number the receiver has seen
// from that node (a replay) is refused, counted (Source.Refused) and
// logged at most once a second; it never reaches the bus. So a stranger on
// the server can neither claim a name nor bring back a node that said
// goodbye. Nodes' clocks must agree within MaxSkew (30 s by default). The
// links themselves are authenticated by the transports (netbus's Secret or
// mTLS, shmbus's uid check): discovery only says where to dial.
//
// # The NATS micro service
//
// Unless Config.NoService is set, the bus is also a NATS micro service
// (protocol io.nats.micro.v1): it answers $SRV.PING, $SRV.INFO and
// $SRV.STATS, in their plain, per-name and per-id forms, so "nats micro ls"
// lists it, and each name registered on the bus is an endpoint any NATS
// client can call with a JSON body. The Secret does not guard these calls:
// whoever may publish to an endpoint's subject may call the name, so give
// the endpoints NATS permissions of their own (accounts, users allowed to
// publish on "<EndpointPrefix>.>"), or set NoService. See Config for the
// names, the version
// and how a name declares its request type, and docs/routing.md for the
// whole mapping.
//
//	src, err := nats.New(nats.Config{URL: "nats://127.0.0.1:4222", Secret: secret})
//	b, err := bus.New(bus.WithName("orders"), bus.WithTransport(netbus.New(...)), bus.WithDiscovery(src))
//	err = b.WaitFor(ctx, "payments") // hosted by another node, found through NATS
//
// nats.go is imported only by this package. Its tests run against a real
// nats-server in process and live in the module natstest, beside it, so
// that the main module does not carry nats-server.
package nats
