//go:build !linux

package lb

import "net"

// tcpGone cannot tell, on this platform, whether the kernel has ended c's
// connection.
func tcpGone(net.Conn) (gone, known bool) { return false, false }
