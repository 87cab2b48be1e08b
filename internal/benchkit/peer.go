package benchkit

import "os"

// RunPeer makes this process a benchmark's child when the environment
// variable env is set: it runs peer with its value and exits with the code
// peer returns. Call it from an init function.
//
// peer runs on a goroutine of its own, not on init's: during init the Go
// runtime locks that goroutine to the main thread, and a locked goroutine
// that yields or waits hands its processor to another thread and sleeps,
// so every hand-off in the peer would cost two thread switches more (it
// made an eventfd ping-pong through the netpoller 3–4× slower).
func RunPeer(env string, peer func(arg string) int) {
	v := os.Getenv(env)
	if v == "" {
		return
	}
	rc := make(chan int)
	go func() { rc <- peer(v) }()
	os.Exit(<-rc)
}
