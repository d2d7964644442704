package faultproxy_test

import (
	"io"
	"net"
	"testing"

	"github.com/fieldsync/fieldsync/internal/faultproxy"
)

// echo starts a server that answers every connection with what it read
// once the client closes its side.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(b)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(msg)
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	return b
}

func TestFaults(t *testing.T) {
	t.Parallel()
	up := echo(t)
	msg := []byte("a chunk of a photo, cut somewhere in the middle")
	for _, c := range []struct {
		name string
		f    faultproxy.Faults
		want func(got []byte) bool
	}{
		{"passes", faultproxy.Faults{}, func(got []byte) bool { return string(got) == string(msg) }},
		{"cuts the request", faultproxy.Faults{CutRequest: 1, CutWithin: 10}, func(got []byte) bool { return len(got) <= 10 }},
		{"loses the reply", faultproxy.Faults{LoseReply: 1}, func(got []byte) bool { return len(got) == 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := faultproxy.Start(up, c.f)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got := roundTrip(t, p.Addr(), msg); !c.want(got) {
				t.Fatalf("got %q", got)
			}
			if n := p.Counts().Conns; n != 1 {
				t.Fatalf("%d connections counted", n)
			}
		})
	}
}
