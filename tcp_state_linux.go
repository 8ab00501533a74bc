package lb

import (
	"encoding/binary"
	"net"
	"syscall"
)

// tcpStateClose is TCP_CLOSE, the state of a Linux TCP socket whose
// connection the kernel has ended: the peer reset it (or, having closed,
// answered data with a reset), or it timed out.
const tcpStateClose = 7

// tcpGone reports whether the kernel has ended c's connection while the
// proxy still holds it, and whether it could tell.
func tcpGone(c net.Conn) (gone, known bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false, false
	}
	var v int
	var gerr error
	err = rc.Control(func(fd uintptr) {
		// TCP_INFO, cut to its first four bytes, of which the first is
		// the state.
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_INFO)
	})
	if err != nil || gerr != nil {
		return false, false
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return b[0] == tcpStateClose, true
}
