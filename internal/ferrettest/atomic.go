package ferrettest

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// StartAtomic is Start with every write command serialised by a proxy in
// front of FerretDB, so that each single-document write is atomic as it is
// on MongoDB.
//
// FerretDB 1.x (SQLite backend) applies an update, a replace or a
// findAndModify as a read, a filter evaluated in Go, and a write by _id,
// with nothing in between stopping another command: two conditional
// replaces of one document, each requiring the version both read, can both
// succeed, and two $inc of one counter can return the same value. MongoDB
// applies the filter and the write of a single document atomically, and the
// MongoDB store relies on that (a conditional replace of the document is a
// mutation's commit point). Tests whose writers race on the same documents
// (the convergence scenario) need it; the store's own race test runs on
// plain Start, where the non-atomic $inc is one more race to survive.
func StartAtomic() (uri string, stop func(), err error) {
	uri, _, stop, err = StartCounted()
	return uri, stop, err
}

// StartCounted is StartAtomic that also counts the commands it relays, by
// name and collection ("find docs", "getMore feed"): commands returns the
// counts so far. The commands the driver sends
// on its own (connection handshakes, authentication, ending sessions) are
// left out, so the counts are the round trips the caller's operations cost.
// A benchmark runs it in a child process to count the commands of a server
// under test without adding to that server's CPU time.
func StartCounted() (uri string, commands func() map[string]int64, stop func(), err error) {
	p, uri, stop, err := startProxied(true)
	if err != nil {
		return "", nil, nil, err
	}
	return uri, p.commands, stop, nil
}

// startProxied starts FerretDB behind a proxy, which serialises write
// commands by database when serialise is set.
func startProxied(serialise bool) (p *proxy, uri string, stop func(), err error) {
	inner, stopInner, err := startFerret()
	if err != nil {
		return nil, "", nil, err
	}
	u, err := url.Parse(inner)
	if err != nil {
		stopInner()
		return nil, "", nil, err
	}
	p, err = newProxy(u.Host, serialise)
	if err != nil {
		stopInner()
		return nil, "", nil, err
	}
	u.Host = p.ln.Addr().String()
	return p, u.String(), func() {
		p.close()
		stopInner()
	}, nil
}

// DriverCommands are the commands a driver sends on its own rather than
// for an operation of its caller.
var DriverCommands = map[string]bool{
	"hello": true, "isMaster": true, "ismaster": true, "ping": true, "endSessions": true,
	"saslStart": true, "saslContinue": true, "authenticate": true, "getnonce": true, "buildInfo": true,
}

// proxy forwards MongoDB wire protocol messages between the driver and
// FerretDB, one request and its reply at a time per connection (the
// driver never pipelines), splitting long update commands (see maxUpdates)
// and, when serialise is set, holding its database's lock across every
// write command (FerretDB keeps each database in its own SQLite file, so
// writes to different databases need not wait for each other).
type proxy struct {
	ln        net.Listener
	target    string
	serialise bool

	locksMu sync.Mutex
	locks   map[string]*sync.Mutex // by database
	counts  map[string]int64       // commands by name and collection, DriverCommands aside

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newProxy(target string, serialise bool) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, serialise: serialise, conns: map[net.Conn]bool{}, locks: map[string]*sync.Mutex{},
		counts: map[string]int64{}}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			return
		}
		p.wg.Go(func() {
			defer p.untrack(c, s)
			p.serve(c, s)
		})
	}
}

// track registers a connection pair; false once the proxy is closing.
func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

func (p *proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) commands() map[string]int64 {
	p.locksMu.Lock()
	defer p.locksMu.Unlock()
	return maps.Clone(p.counts)
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// serve relays until either side closes. A client that closes its
// connection while a command runs (the driver gives up on a command at its
// timeout) closes the server side too, so a command FerretDB never answers
// does not hold the write lock forever.
func (p *proxy) serve(client, server net.Conn) {
	reqs := make(chan []byte)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(reqs)
		defer server.Close()
		for {
			req, err := readMessage(client)
			if err != nil {
				return
			}
			select {
			case reqs <- req:
			case <-done:
				return
			}
		}
	}()
	for req := range reqs {
		lock := p.lockOf(req)
		if lock != nil {
			lock.Lock()
		}
		err := p.roundTrip(req, client, server)
		if lock != nil {
			lock.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// lockOf counts a request and returns the lock it must hold: its
// database's for a write command when the proxy serialises, none
// otherwise.
func (p *proxy) lockOf(req []byte) *sync.Mutex {
	body, ok := commandBody(req)
	if !ok {
		return nil
	}
	first, err := body.IndexErr(0)
	if err != nil {
		return nil
	}
	name := first.Key()
	p.locksMu.Lock()
	defer p.locksMu.Unlock()
	if !DriverCommands[name] {
		key := name
		if coll, ok := first.Value().StringValueOK(); ok {
			key += " " + coll
		} else if coll, ok := body.Lookup("collection").StringValueOK(); ok { // getMore
			key += " " + coll
		}
		p.counts[key]++
	}
	if !p.serialise || !writeCommands[name] {
		return nil
	}
	db, _ := body.Lookup("$db").StringValueOK()
	l := p.locks[db]
	if l == nil {
		l = &sync.Mutex{}
		p.locks[db] = l
	}
	return l
}

// roundTrip sends req and relays its reply, and every further reply the
// server announces with moreToCome.
func (p *proxy) roundTrip(req []byte, client, server net.Conn) error {
	if chunks := splitUpdate(req); chunks != nil {
		return splitRoundTrip(req, chunks, client, server)
	}
	if _, err := server.Write(req); err != nil {
		return err
	}
	if moreToCome(req) {
		return nil // the client expects no reply
	}
	for {
		reply, err := readMessage(server)
		if err != nil {
			return err
		}
		if _, err := client.Write(reply); err != nil {
			return err
		}
		if !moreToCome(reply) {
			return nil
		}
	}
}

const (
	opMsg        = 2013
	headerLen    = 16
	maxMessage   = 48 << 20
	flagMoreToGo = 1 << 1
	flagChecksum = 1 << 0
)

func readMessage(r io.Reader) ([]byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.LittleEndian.Uint32(h[:4])))
	if n < headerLen || n > maxMessage {
		return nil, fmt.Errorf("ferrettest proxy: message of %d bytes", n)
	}
	msg := make([]byte, n)
	copy(msg, h[:])
	if _, err := io.ReadFull(r, msg[headerLen:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func opCode(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[12:16])) }

func moreToCome(msg []byte) bool {
	return opCode(msg) == opMsg && len(msg) >= headerLen+4 &&
		binary.LittleEndian.Uint32(msg[headerLen:headerLen+4])&flagMoreToGo != 0
}

// writeCommands are the commands that read and then write documents.
var writeCommands = map[string]bool{"insert": true, "update": true, "delete": true, "findAndModify": true,
	"findandmodify": true}

// commandBody returns the body of an OP_MSG request (its kind 0 section),
// whose first key names the command.
func commandBody(msg []byte) (bson.Raw, bool) {
	if opCode(msg) != opMsg || len(msg) < headerLen+4 ||
		binary.LittleEndian.Uint32(msg[headerLen:])&flagChecksum != 0 {
		return nil, false
	}
	body, _, ok := sections(msg)
	return body, ok
}
