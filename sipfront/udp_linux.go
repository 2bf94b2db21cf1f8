//go:build linux

package sipfront

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// OOBSize holds one SO_TIMESTAMPNS control message (0 off Linux).
const OOBSize = 64

// KernelTimestamps asks the kernel to stamp every datagram with its
// receive time (SO_TIMESTAMPNS), so the time a request waited in the
// socket buffer is known (ReceivedAt reads it). Exported for the load
// generator in bench/overload, which times answers the same way.
func KernelTimestamps(c *net.UDPConn) bool {
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

// ReceivedAt returns the receive time in a datagram's control messages.
func ReceivedAt(oob []byte) (time.Time, bool) {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < syscall.SizeofCmsghdr || n > len(oob) {
			break
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SO_TIMESTAMPNS &&
			n >= syscall.CmsgLen(int(unsafe.Sizeof(syscall.Timespec{}))) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&oob[syscall.CmsgLen(0)]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec)), true
		}
		next := syscall.CmsgSpace(n - syscall.CmsgLen(0))
		if next <= 0 || next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}, false
}
