package shmbench

// PeerName names the peer process of RunBench to benchkit.ServePeer.
const PeerName = "shmbench"

// ProfileEnv names a file: when it is set, the bus peer process of RunBench
// writes its CPU profile there (`xbus bench -cpuprofile` sets it), so that
// both sides of the shared-memory measurements can be read with pprof.
const ProfileEnv = "XBUS_BENCH_PEER_CPUPROFILE"
