//go:build linux

package main

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// oobSize holds one SO_TIMESTAMPNS control message.
const oobSize = 64

// kernelTimestamps asks the kernel to stamp every datagram c receives
// with its receive time, so an answer's latency does not include the time
// it waited for this generator to read it (the generator shares the
// cores with the server).
func kernelTimestamps(c *net.UDPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
	return err == nil && serr == nil
}

// receivedAt returns the receive time in a datagram's control messages.
func receivedAt(oob []byte) (time.Time, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_TIMESTAMPNS &&
			len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec)), true
		}
	}
	return time.Time{}, false
}
