package sipfront

import (
	"net"
	"testing"
	"time"
)

// TestKernelTimestamps checks the receive time read from SO_TIMESTAMPNS.
func TestKernelTimestamps(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !KernelTimestamps(c) {
		t.Fatal("SO_TIMESTAMPNS refused")
	}
	before := time.Now()
	s, err := net.Dial("udp", c.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Write([]byte("OPTIONS"))
	buf, oob := make([]byte, 64), make([]byte, OOBSize)
	_, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	at, ok := ReceivedAt(oob[:oobn])
	if !ok || at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("receive time %v (%v), sent at %v", at, ok, before)
	}
	if _, ok := ReceivedAt(nil); ok {
		t.Error("a time from no control message")
	}
}
