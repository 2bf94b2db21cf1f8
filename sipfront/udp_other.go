//go:build !linux

package sipfront

import (
	"net"
	"time"
)

const oobSize = 0

// kernelTimestamps is Linux only; elsewhere a datagram's age is unknown
// and the queueing budget is not applied.
func kernelTimestamps(*net.UDPConn) bool { return false }

func receivedAt([]byte) (time.Time, bool) { return time.Time{}, false }
