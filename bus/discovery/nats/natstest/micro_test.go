package natstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jsm.go/schemas"
	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/xbus-dev/xbus/bus"
	natsdisc "github.com/xbus-dev/xbus/bus/discovery/nats"
)

// microSchemas compiles the published io.nats.micro.v1 response schemas.
func microSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	out := map[string]*jsonschema.Schema{}
	for verb, file := range map[string]string{"PING": "ping_response", "INFO": "info_response", "STATS": "stats_response"} {
		data, err := schemas.Load("micro/v1/" + file + ".json")
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		url := "https://nats.io/schemas/micro/v1/" + file + ".json"
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
		if out[verb], err = c.Compile(url); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// validate checks a reply against verb's schema and decodes it.
func validate(t *testing.T, sch map[string]*jsonschema.Schema, verb string, data []byte) map[string]any {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s reply is not JSON: %v: %s", verb, err, data)
	}
	if err := sch[verb].Validate(doc); err != nil {
		t.Fatalf("%s reply does not validate against its schema: %v\n%s", verb, err, data)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// gather sends one request on subject and collects replies until want came
// or 5 s passed.
func gather(t *testing.T, nc *nats.Conn, subject string, want int) []*nats.Msg {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < want && time.Now().Before(deadline) {
		if m, err := sub.NextMsg(time.Until(deadline)); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestMicroServiceProtocol: every bus answers PING, INFO and STATS in the
// plain, per-name and per-id forms, and every reply validates against the
// published io.nats.micro.v1 schema.
func TestMicroServiceProtocol(t *testing.T) {
	sch := microSchemas(t)
	srv := runServer(t)
	cfg := fastConfig(srv.ClientURL())
	cfg.Version, cfg.Description, cfg.Metadata = "1.2.3-rc.1", "the orders service", map[string]string{"team": "payments"}
	a, _ := newNode(t, "orders svc", cfg)
	b, _ := newNode(t, "b", fastConfig(srv.ClientURL()))
	for _, name := range []string{"greeter", "orders.create"} {
		if _, err := a.Register(name, bus.ActorFunc(greeter)); err != nil {
			t.Fatal(err)
		}
	}
	nc := connect(t, srv.ClientURL())
	svc, id := "orders_svc", a.NodeID().String()

	// The names' endpoints are listed once registered.
	eventually(t, 10*time.Second, "INFO lists both names", func() bool {
		m, err := nc.Request("$SRV.INFO."+svc+"."+id, nil, 5*time.Second)
		return err == nil && strings.Contains(string(m.Data), "orders_2ecreate") && strings.Contains(string(m.Data), `"greeter"`)
	})
	for range 3 {
		if m, err := nc.Request("xbus.greeter", []byte(`"nats"`), 5*time.Second); err != nil || string(m.Data) != `"hello, nats from orders svc"` {
			t.Fatalf("request: %v %v", m, err)
		}
	}
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		for _, subj := range []string{"$SRV." + verb, "$SRV." + verb + "." + svc, "$SRV." + verb + "." + svc + "." + id} {
			want := 1
			if subj == "$SRV."+verb {
				want = 2 // both buses
			}
			replies := gather(t, nc, subj, want)
			if len(replies) != want {
				t.Fatalf("%s: %d replies, want %d", subj, len(replies), want)
			}
			ids := map[string]bool{}
			for _, r := range replies {
				m := validate(t, sch, verb, r.Data)
				ids[m["id"].(string)] = true
				if m["id"] == id && (m["name"] != svc || m["version"] != "1.2.3-rc.1" || m["metadata"].(map[string]any)["team"] != "payments") {
					t.Fatalf("%s: %s", subj, r.Data)
				}
			}
			if !ids[id] || (want == 2 && !ids[b.NodeID().String()]) {
				t.Fatalf("%s answered by %v", subj, ids)
			}
		}
	}
	m, err := nc.Request("$SRV.INFO."+svc+"."+id, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Description string
		Endpoints   []struct {
			Name, Subject string
			QueueGroup    string `json:"queue_group"`
			Metadata      map[string]string
		}
	}
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(info)
	if want := "{the orders service [{greeter xbus.greeter q map[xbus.name:greeter]} {orders_2ecreate xbus.orders_2ecreate q map[xbus.name:orders.create]}]}"; got != want {
		t.Fatalf("INFO = %s, want %s", got, want)
	}
	m, err = nc.Request("$SRV.STATS."+svc+"."+id, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st := validate(t, sch, "STATS", m.Data); st["endpoints"].([]any)[0].(map[string]any)["num_requests"] != 3.0 {
		t.Fatalf("STATS = %s; want 3 requests to greeter", m.Data)
	}
}

// reqErr returns the error code and text of a micro service reply, if any.
func reqErr(m *nats.Msg) (code, text string) {
	return m.Header.Get("Nats-Service-Error-Code"), m.Header.Get("Nats-Service-Error")
}

// TestNamesCallableOverNATS: a plain NATS client calls the bus's names with
// JSON bodies; a body that does not decode, a type that is not registered,
// and an actor's error come back in the standard error headers, and the
// node goes on serving.
func TestNamesCallableOverNATS(t *testing.T) {
	srv := runServer(t)
	cfg := fastConfig(srv.ClientURL())
	cfg.Requests = map[string]any{"add": Add{}}
	a, _ := newNode(t, "a", cfg)
	for name, act := range map[string]bus.ActorFunc{"greeter": greeter, "add": adder, "add2": adder} {
		if _, err := a.Register(name, act); err != nil {
			t.Fatal(err)
		}
	}
	nc := connect(t, srv.ClientURL())
	// Each name's endpoint subscribes on its own, in no set order: wait for
	// every one, not just the last registered. Each answers one probe (an
	// empty body), which its STATS count.
	up := map[string]bool{}
	eventually(t, 10*time.Second, "the endpoints are up", func() bool {
		for _, subj := range []string{"xbus.greeter", "xbus.add", "xbus.add2"} {
			if !up[subj] {
				_, err := nc.Request(subj, nil, time.Second)
				up[subj] = !errors.Is(err, nats.ErrNoResponders)
			}
		}
		return len(up) == 3 && up["xbus.greeter"] && up["xbus.add"] && up["xbus.add2"]
	})
	typed := func(tn string) nats.Header { return nats.Header{natsdisc.TypeHeader: []string{tn}} }
	for _, c := range []struct {
		name, subject string
		header        nats.Header
		body          string
		reply         string // on success
		code, text    string // on error
	}{
		{"any-typed name", "xbus.greeter", nil, `"world"`, `"hello, world from a"`, "", ""},
		{"any-typed name, an object", "xbus.greeter", nil, `{"x":1}`, `"hello, map[x:1] from a"`, "", ""},
		{"declared type", "xbus.add", nil, `{"A":1,"B":2}`, `{"N":3}`, "", ""},
		{"declared type, empty body is its zero value", "xbus.add", nil, ``, `{"N":0}`, "", ""},
		{"type from the header", "xbus.add2", typed("natstest.Add"), `{"A":20,"B":22}`, `{"N":42}`, "", ""},
		{"not JSON", "xbus.greeter", nil, `{{{`, "", "400", "not JSON"},
		{"wrong shape for the declared type", "xbus.add", nil, `{"A":"one"}`, "", "400", "natstest.Add"},
		{"JSON but the actor wants an Add", "xbus.add2", nil, `{"A":1}`, "", "500", "want an Add"},
		{"unregistered type in the header", "xbus.add2", typed("no.such.Type"), `{}`, "", "400", "no.such.Type"},
		{"the actor's own error", "xbus.add", nil, `{"A":-1,"B":2}`, "", "500", "negative operands"},
		{"a large garbage body", "xbus.add", nil, strings.Repeat("\xff", 900<<10), "", "400", "does not decode"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := nc.RequestMsg(&nats.Msg{Subject: c.subject, Header: c.header, Data: []byte(c.body)}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			code, text := reqErr(m)
			if c.code == "" {
				if code != "" || string(m.Data) != c.reply {
					t.Fatalf("reply %q (error %s %q), want %s", m.Data, code, text, c.reply)
				}
				return
			}
			if code != c.code || !strings.Contains(text, c.text) || len(m.Data) != 0 {
				t.Fatalf("error %s %q (data %q), want %s containing %q", code, text, m.Data, c.code, c.text)
			}
		})
	}
	// Errors are counted per endpoint: add had the probe and five calls.
	m, err := nc.Request("$SRV.STATS.a."+a.NodeID().String(), nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Endpoints []struct {
			Name                  string
			NumRequests           int    `json:"num_requests"`
			NumErrors             int    `json:"num_errors"`
			LastError             string `json:"last_error"`
			AverageProcessingTime int64  `json:"average_processing_time"`
		}
	}
	if err := json.Unmarshal(m.Data, &st); err != nil {
		t.Fatal(err)
	}
	add := st.Endpoints[0]
	if add.Name != "add" || add.NumRequests != 6 || add.NumErrors != 3 || !strings.Contains(add.LastError, "does not decode") || add.AverageProcessingTime <= 0 {
		t.Fatalf("STATS of add: %+v", add)
	}
}

// TestQueueGroup: a name on two nodes gets each NATS request once.
func TestQueueGroup(t *testing.T) {
	srv := runServer(t)
	nc := connect(t, srv.ClientURL())
	var nodes []*bus.Bus
	for _, n := range []string{"a", "b"} {
		b, _ := newNode(t, n, fastConfig(srv.ClientURL()))
		if _, err := b.Register("greeter", bus.ActorFunc(greeter)); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, b)
	}
	stats := func(b *bus.Bus) int {
		m, err := nc.Request("$SRV.STATS."+b.Name()+"."+b.NodeID().String(), nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Endpoints []struct {
				NumRequests int `json:"num_requests"`
			}
		}
		if err := json.Unmarshal(m.Data, &st); err != nil || len(st.Endpoints) != 1 {
			return -1000
		}
		return st.Endpoints[0].NumRequests
	}
	eventually(t, 10*time.Second, "both serve greeter", func() bool { return stats(nodes[0]) == 0 && stats(nodes[1]) == 0 })
	const n = 40
	for i := range n {
		if _, err := nc.Request("xbus.greeter", []byte(fmt.Sprint(i)), 5*time.Second); err != nil {
			t.Fatal(i, err)
		}
	}
	if sa, sb := stats(nodes[0]), stats(nodes[1]); sa+sb != n {
		t.Fatalf("requests counted %d + %d, want %d in all", sa, sb, n)
	}
}

// TestMaxInFlight: requests past MaxInFlight are refused at once with 503,
// not queued behind a slow actor; the admitted ones complete.
func TestMaxInFlight(t *testing.T) {
	srv := runServer(t)
	cfg := fastConfig(srv.ClientURL())
	cfg.MaxInFlight = 2
	a, _ := newNode(t, "a", cfg)
	release, started := make(chan struct{}), make(chan struct{}, 8)
	// The actor promises its reply and takes the next ask at once, so
	// that each admitted request is seen running (started) before the
	// others are sent: one that waited in the mailbox behind another
	// would be unseen, and might not yet hold its slot.
	if _, err := a.Register("slow", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		p := c.Promise()
		started <- struct{}{}
		go func() {
			<-release
			p.Reply("done")
		}()
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	nc := connect(t, srv.ClientURL())
	eventually(t, 10*time.Second, "slow is served", func() bool {
		_, err := nc.Request("$SRV.PING", nil, time.Second)
		m, _ := nc.Request("$SRV.INFO.a", nil, time.Second)
		return err == nil && m != nil && strings.Contains(string(m.Data), "xbus.slow")
	})
	var wg sync.WaitGroup
	codes := make(chan string, 5)
	send := func() {
		defer wg.Done()
		m, err := nc.Request("xbus.slow", []byte(`1`), 20*time.Second)
		if err != nil {
			codes <- err.Error()
			return
		}
		code, _ := reqErr(m)
		codes <- code + string(m.Data)
	}
	wg.Add(2)
	go send()
	go send()
	<-started // both admitted requests are in Receive: both slots are held
	<-started
	for range 3 {
		wg.Add(1)
		send() // refused at once: it does not wait for the slow actor
	}
	close(release)
	wg.Wait()
	close(codes)
	count := map[string]int{}
	for c := range codes {
		count[c]++
	}
	if count["503"] != 3 || count[`"done"`] != 2 {
		t.Fatalf("replies %v; want 3 refused with 503 and 2 done", count)
	}
}

// TestNameLeaves: a name stopped on the bus leaves INFO, and a request to
// it finds no responder instead of hanging.
func TestNameLeaves(t *testing.T) {
	srv := runServer(t)
	a, _ := newNode(t, "a", fastConfig(srv.ClientURL()))
	ref, err := a.Register("temp", bus.ActorFunc(greeter))
	if err != nil {
		t.Fatal(err)
	}
	nc := connect(t, srv.ClientURL())
	info := func() string {
		m, err := nc.Request("$SRV.INFO.a."+a.NodeID().String(), nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return string(m.Data)
	}
	eventually(t, 10*time.Second, "temp is served", func() bool { return strings.Contains(info(), "xbus.temp") })
	if err := a.Stop(ref); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "temp leaves INFO", func() bool { return !strings.Contains(info(), "xbus.temp") })
	if _, err := nc.Request("xbus.temp", []byte(`"x"`), 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("request to a name that left: %v, want no responders", err)
	}
}
