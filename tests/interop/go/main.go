// Command gossippeer is a minimal go-libp2p gossipsub peer that Bzzz's tests and
// benchmarks drive over stdin/stdout, to prove that py-libp2p (0.8.1) gossip
// interoperates with the reference implementation in both directions.
//
// It is configured like a Bzzz py-libp2p host: TCP only, Noise only, yamux only,
// gossipsub with strict signing and a content-based message id. See
// tests/interop/go_peer.py for the Python driver and the line protocol below.
//
// stdout (one line per event, written unbuffered):
//
//	READY <multiaddr>/p2p/<peer id>
//	PEER <peer id>                      a peer connected
//	MSG <topic> <from> <recv unix ns> <base64 data>
//	PUBLISHED <topic> | DONE <topic> | ERROR <text>
//
// stdin (one command per line):
//
//	PUB <topic> <base64 data>
//	RATE <topic> <msgs per second> <count>
//	QUIT                                (EOF works too)
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"golang.org/x/crypto/blake2b"
)

// rateFiller pads RATE payloads to 8 + 200 bytes, roughly a small Bzzz envelope.
const rateFiller = 200

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// outMu keeps lines whole: events come from several goroutines, and a line
// longer than PIPE_BUF would otherwise interleave. os.Stdout is unbuffered, so
// every line reaches the reader as soon as it is written.
var outMu sync.Mutex

func emit(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gossippeer: "+format+"\n", args...)
	os.Exit(1)
}

// msgID must equal the Python side's msg_id_constructor, byte for byte:
// blake2b(msg.data, digest_size=32).digest()[:20]. IHAVE/IWANT/IDONTWANT carry
// these ids, so a mismatch silently breaks gossip repair and deduplication.
// py-libp2p types ids as `bytes` and puts them on the wire raw; go uses the
// same raw bytes held in a string (the protobuf field is a proto2 string,
// which neither side checks for UTF-8).
func msgID(m *pb.Message) string {
	sum := blake2b.Sum256(m.Data)
	return string(sum[:20])
}

type peerNode struct {
	ctx    context.Context
	host   host.Host
	ps     *pubsub.PubSub
	mu     sync.Mutex
	topics map[string]*pubsub.Topic
	subbed map[string]bool
}

// topic joins name once; a topic can be joined only once per PubSub.
func (n *peerNode) topic(name string) (*pubsub.Topic, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.topics[name]; ok {
		return t, nil
	}
	t, err := n.ps.Join(name)
	if err != nil {
		return nil, err
	}
	n.topics[name] = t
	return t, nil
}

func (n *peerNode) subscribe(name string) error {
	t, err := n.topic(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subbed[name] {
		return nil
	}
	sub, err := t.Subscribe()
	if err != nil {
		return err
	}
	n.subbed[name] = true
	go n.readLoop(name, sub)
	return nil
}

func (n *peerNode) readLoop(name string, sub *pubsub.Subscription) {
	for {
		m, err := sub.Next(n.ctx)
		if err != nil {
			return // context cancelled or subscription closed
		}
		recv := time.Now().UnixNano()
		// gossipsub hands a node its own publishes too; the protocol reports
		// only other peers' messages. `from` is the signed author, not the hop.
		if m.GetFrom() == n.host.ID() {
			continue
		}
		emit("MSG %s %s %d %s", name, m.GetFrom(), recv, base64.StdEncoding.EncodeToString(m.Data))
	}
}

func (n *peerNode) publish(name string, data []byte) error {
	t, err := n.topic(name)
	if err != nil {
		return err
	}
	return t.Publish(n.ctx, data)
}

// rate publishes count messages on a fixed schedule (not sleep-after-send, so
// publish time does not drift the rate). Each payload starts with its send time
// for one-way latency measurements between go peers on one clock.
func (n *peerNode) rate(name string, perSec float64, count int) error {
	interval := time.Duration(float64(time.Second) / perSec)
	start := time.Now()
	for i := 0; i < count; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-n.ctx.Done():
				return n.ctx.Err()
			}
		}
		data := make([]byte, 8+rateFiller)
		binary.BigEndian.PutUint64(data, uint64(time.Now().UnixNano()))
		if err := n.publish(name, data); err != nil {
			return err
		}
	}
	return nil
}

// watchPeers prints PEER once per peer when it becomes connected (the event
// bus reports connectedness changes, not every extra connection).
func watchPeers(ctx context.Context, h host.Host) {
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		fatal("event bus: %v", err)
	}
	go func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-sub.Out():
				ev := e.(event.EvtPeerConnectednessChanged)
				if ev.Connectedness == network.Connected {
					emit("PEER %s", ev.Peer)
				}
			}
		}
	}()
}

// handle runs one stdin command; it returns false to stop.
func (n *peerNode) handle(line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return true
	}
	switch {
	case f[0] == "QUIT":
		return false
	case f[0] == "PUB" && (len(f) == 3 || len(f) == 2):
		var data []byte
		if len(f) == 3 { // empty data has an empty base64 field
			var err error
			if data, err = base64.StdEncoding.DecodeString(f[2]); err != nil {
				emit("ERROR PUB bad base64: %v", err)
				return true
			}
		}
		if err := n.publish(f[1], data); err != nil {
			emit("ERROR PUB %s: %v", f[1], err)
			return true
		}
		emit("PUBLISHED %s", f[1])
	case f[0] == "RATE" && len(f) == 4:
		perSec, err1 := strconv.ParseFloat(f[2], 64)
		count, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || perSec <= 0 || count < 0 {
			emit("ERROR RATE needs <topic> <msgs_per_sec > 0> <count >= 0>")
			return true
		}
		// Synchronous on purpose: commands run in order, and DONE means done.
		if err := n.rate(f[1], perSec, count); err != nil {
			emit("ERROR RATE %s: %v", f[1], err)
			return true
		}
		emit("DONE %s", f[1])
	default:
		emit("ERROR unknown command: %s", line)
	}
	return true
}

func main() {
	var (
		seedHex  = flag.String("seed-hex", "", "32-byte ed25519 seed as 64 hex chars (the peer's identity)")
		listen   = flag.String("listen", "/ip4/127.0.0.1/tcp/0", "listen multiaddr")
		connects listFlag
		topics   listFlag
	)
	flag.Var(&connects, "connect", "peer multiaddr with /p2p/<id> to dial at start (repeatable)")
	flag.Var(&topics, "topic", "topic to subscribe to at start (repeatable)")
	flag.Parse()

	seed, err := hex.DecodeString(*seedHex)
	if err != nil || len(seed) != ed25519.SeedSize {
		fatal("--seed-hex must be %d hex chars", 2*ed25519.SeedSize)
	}
	// Same key as py-libp2p's create_identity_from_seed(seed) / Ed25519PrivateKey
	// .from_bytes(seed), so Python knows our peer id and can sign as us.
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		fatal("key: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Only what the Bzzz py-libp2p host speaks: TCP, Noise, yamux. Listing one
	// of each replaces go-libp2p's defaults (QUIC, TLS, websocket, ...).
	h, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(*listen),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
	)
	if err != nil {
		fatal("host: %v", err)
	}
	defer h.Close()
	watchPeers(ctx, h)

	// Heartbeat is go's default, 1 s (py-libp2p must be told: its default is 120 s).
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(msgID),
		// Room for RATE bursts towards a slow peer; the default is 32.
		pubsub.WithPeerOutboundQueueSize(1024),
	)
	if err != nil {
		fatal("gossipsub: %v", err)
	}

	n := &peerNode{ctx: ctx, host: h, ps: ps, topics: map[string]*pubsub.Topic{}, subbed: map[string]bool{}}
	for _, t := range topics {
		if err := n.subscribe(t); err != nil {
			fatal("subscribe %s: %v", t, err)
		}
	}
	for _, a := range connects {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			fatal("--connect %s: %v", a, err)
		}
		cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
		err = h.Connect(cctx, *ai)
		ccancel()
		if err != nil {
			fatal("connect %s: %v", a, err)
		}
	}

	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil || len(addrs) == 0 {
		fatal("no listen address: %v", err)
	}
	emit("READY %s", addrs[0])

	// stdin commands until QUIT or EOF; a signal also ends cleanly.
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 64*1024), 16<<20) // PUB lines can carry large payloads
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	for {
		select {
		case line, ok := <-lines:
			if !ok || !n.handle(line) {
				return
			}
		case <-sigs:
			return
		}
	}
}
