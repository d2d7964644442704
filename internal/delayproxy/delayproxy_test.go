package delayproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestForwardsWithDelay: what a client sends through the proxy reaches the
// upstream server unchanged and not before the delay, and the reply comes
// back; Close ends open connections.
func TestForwardsWithDelay(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("echo " + line))
	}()
	const delay = 30 * time.Millisecond
	p, err := Start(ln.Addr().String(), delay)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || reply != "echo ping\n" {
		t.Fatalf("reply %q, %v", reply, err)
	}
	// A lower bound only: the proxy must have held the request.
	if took := time.Since(start); took < delay {
		t.Errorf("the reply came after %s, before the %s delay", took, delay)
	}
	p.Close()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Error("the connection survived Close")
	}
}
