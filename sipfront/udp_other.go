//go:build !linux

package sipfront

import (
	"net"
	"time"
)

const OOBSize = 0

// KernelTimestamps is Linux only; elsewhere a datagram's age is unknown
// and the queueing budget is not applied.
func KernelTimestamps(*net.UDPConn) bool { return false }

func ReceivedAt([]byte) (time.Time, bool) { return time.Time{}, false }
