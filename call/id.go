package call

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDs issues record ids: 26 characters of Crockford base32 over 48 bits of
// milliseconds since the epoch and 80 random bits. Ids from one IDs sort
// lexically in the order they were issued, even within a millisecond or if
// the clock steps back (the random part is then incremented, as in ULID's
// monotonic mode). Safe for concurrent use; the zero value is ready.
type IDs struct {
	mu   sync.Mutex
	last [16]byte
}

// Next returns a new id for time t.
func (g *IDs) Next(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	rand.Read(b[6:])
	g.mu.Lock()
	if string(b[:6]) <= string(g.last[:6]) {
		b = g.last
		for i := 15; i >= 6; i-- { // increment the 80-bit random part
			b[i]++
			if b[i] != 0 {
				break
			}
		}
	}
	g.last = b
	g.mu.Unlock()
	return encodeID(b)
}

func encodeID(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// ValidRecordID reports whether s has the shape of a record id.
func ValidRecordID(s string) bool {
	if len(s) != 26 || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U') {
			return false
		}
	}
	return true
}
