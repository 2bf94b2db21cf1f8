//go:build !linux

package main

import (
	"net"
	"time"
)

const oobSize = 0

// kernelTimestamps is Linux only: elsewhere an answer's latency includes
// the time it waited to be read.
func kernelTimestamps(*net.UDPConn) bool { return false }

func receivedAt([]byte) (time.Time, bool) { return time.Time{}, false }
