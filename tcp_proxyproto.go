package lb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The PROXY protocol, versions 1 and 2, as HAProxy specifies it
// (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt): a header
// at the start of a TCP connection that tells the receiver the client's
// address and the address the client connected to.

// proxyV2Sig starts every version 2 header.
const proxyV2Sig = "\r\n\r\n\x00\r\nQUIT\n"

const (
	proxyV1Max = 107 // the longest version 1 header, CRLF included
	// proxyHeaderMax is room for any header appendProxyHeader writes: a
	// version 1 header, or a version 2 one for IPv6 (16 + 36 bytes).
	proxyHeaderMax = proxyV1Max + 1

	proxyV2Local = 0x20 // version 2, command LOCAL
	proxyV2Proxy = 0x21 // version 2, command PROXY
	proxyV2TCP4  = 0x11
	proxyV2TCP6  = 0x21
)

// appendProxyHeader appends to b the PROXY header of version (1 or 2) for a
// connection from src to dst. Addresses that are not both TCP give the
// "UNKNOWN" (version 1) or unspecified (version 2) form, which tells the
// receiver to use the connection's own addresses.
func appendProxyHeader(b []byte, version int, src, dst net.Addr) []byte {
	s, sok := tcpAddrPort(src)
	d, dok := tcpAddrPort(dst)
	known := sok && dok
	v4 := known && s.Addr().Is4() && d.Addr().Is4()
	if known && !v4 { // one family for both: IPv4 as IPv4-mapped IPv6
		s = netip.AddrPortFrom(netip.AddrFrom16(s.Addr().As16()), s.Port())
		d = netip.AddrPortFrom(netip.AddrFrom16(d.Addr().As16()), d.Port())
	}
	if version == 1 {
		if !known {
			return append(b, "PROXY UNKNOWN\r\n"...)
		}
		b = append(b, "PROXY TCP"...)
		if v4 {
			b = append(b, '4', ' ')
		} else {
			b = append(b, '6', ' ')
		}
		b = s.Addr().AppendTo(b)
		b = append(b, ' ')
		b = d.Addr().AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(s.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(d.Port()), 10)
		return append(b, '\r', '\n')
	}
	b = append(b, proxyV2Sig...)
	switch {
	case !known:
		return append(b, proxyV2Proxy, 0, 0, 0)
	case v4:
		b = append(b, proxyV2Proxy, proxyV2TCP4, 0, 12)
		sa, da := s.Addr().As4(), d.Addr().As4()
		b = append(b, sa[:]...)
		b = append(b, da[:]...)
	default:
		b = append(b, proxyV2Proxy, proxyV2TCP6, 0, 36)
		sa, da := s.Addr().As16(), d.Addr().As16()
		b = append(b, sa[:]...)
		b = append(b, da[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, s.Port())
	return binary.BigEndian.AppendUint16(b, d.Port())
}

// tcpAddrPort returns a's address and port, unmapped and without a zone,
// when a is a TCP address.
func tcpAddrPort(a net.Addr) (netip.AddrPort, bool) {
	t, ok := a.(*net.TCPAddr)
	if !ok || t == nil {
		return netip.AddrPort{}, false
	}
	ap := t.AddrPort()
	if !ap.Addr().IsValid() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), true
}

// errProxyHeader is wrapped by every error of readProxyHeader about the
// header's content.
var errProxyHeader = errors.New("lb: bad PROXY protocol header")

// readProxyHeader reads a PROXY header (version 1 or 2) from r, and not a
// byte beyond it, so that what follows can be copied as it is. It returns
// the client's and the destination's addresses, or nil ones when the header
// says to use the connection's own (v1 UNKNOWN, v2 LOCAL or an address
// family other than TCP over IPv4 or IPv6).
func readProxyHeader(r io.Reader) (src, dst net.Addr, err error) {
	var buf [proxyV1Max]byte
	if _, err := io.ReadFull(r, buf[:12]); err != nil {
		return nil, nil, fmt.Errorf("lb: reading the PROXY header: %w", err)
	}
	switch {
	case string(buf[:12]) == proxyV2Sig:
		return readProxyV2(r)
	case string(buf[:6]) == "PROXY ":
		n := 12
		for buf[n-1] != '\n' {
			if n == len(buf) {
				return nil, nil, fmt.Errorf("%w: version 1 header longer than %d bytes", errProxyHeader, proxyV1Max)
			}
			if _, err := io.ReadFull(r, buf[n:n+1]); err != nil {
				return nil, nil, fmt.Errorf("lb: reading the PROXY header: %w", err)
			}
			n++
		}
		return parseProxyV1(buf[:n])
	default:
		return nil, nil, fmt.Errorf("%w: no PROXY signature in %q", errProxyHeader, buf[:12])
	}
}

// parseProxyV1 parses a whole version 1 header, line end included.
func parseProxyV1(line []byte) (src, dst net.Addr, err error) {
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return nil, nil, fmt.Errorf("%w: version 1 header does not end with CRLF", errProxyHeader)
	}
	f := strings.Split(string(body), " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return nil, nil, nil // whatever follows is to be ignored
	}
	if len(f) != 6 {
		return nil, nil, fmt.Errorf("%w: version 1 header %q: want 6 fields", errProxyHeader, body)
	}
	var want4 bool
	switch f[1] {
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return nil, nil, fmt.Errorf("%w: version 1 protocol %q", errProxyHeader, f[1])
	}
	var ap [2]netip.AddrPort
	for i := range ap {
		a, err := netip.ParseAddr(f[2+i])
		if err != nil || a.Is4() != want4 || a.Zone() != "" {
			return nil, nil, fmt.Errorf("%w: version 1 %s address %q", errProxyHeader, f[1], f[2+i])
		}
		port, err := strconv.ParseUint(f[4+i], 10, 16)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: version 1 port %q", errProxyHeader, f[4+i])
		}
		ap[i] = netip.AddrPortFrom(a, uint16(port))
	}
	return net.TCPAddrFromAddrPort(ap[0]), net.TCPAddrFromAddrPort(ap[1]), nil
}

// readProxyV2 reads the rest of a version 2 header, after its signature.
func readProxyV2(r io.Reader) (src, dst net.Addr, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("lb: reading the PROXY header: %w", err)
	}
	verCmd, fam := hdr[0], hdr[1]
	size := int(binary.BigEndian.Uint16(hdr[2:]))
	if verCmd != proxyV2Local && verCmd != proxyV2Proxy {
		return nil, nil, fmt.Errorf("%w: version 2 version/command byte %#x", errProxyHeader, verCmd)
	}
	var addrs [36]byte
	need := 0
	if verCmd == proxyV2Proxy {
		switch fam {
		case proxyV2TCP4:
			need = 12
		case proxyV2TCP6:
			need = 36
		}
	}
	if size < need {
		return nil, nil, fmt.Errorf("%w: version 2 address block of %d bytes for family %#x", errProxyHeader, size, fam)
	}
	if _, err := io.ReadFull(r, addrs[:need]); err != nil {
		return nil, nil, fmt.Errorf("lb: reading the PROXY header: %w", err)
	}
	// TLVs (and any other family's addresses) are skipped.
	if _, err := io.CopyN(io.Discard, r, int64(size-need)); err != nil {
		return nil, nil, fmt.Errorf("lb: reading the PROXY header: %w", err)
	}
	switch need {
	case 12:
		s := netip.AddrFrom4([4]byte(addrs[0:4]))
		d := netip.AddrFrom4([4]byte(addrs[4:8]))
		return tcpAddrFrom(s, addrs[8:10]), tcpAddrFrom(d, addrs[10:12]), nil
	case 36:
		s := netip.AddrFrom16([16]byte(addrs[0:16]))
		d := netip.AddrFrom16([16]byte(addrs[16:32]))
		return tcpAddrFrom(s, addrs[32:34]), tcpAddrFrom(d, addrs[34:36]), nil
	}
	return nil, nil, nil
}

func tcpAddrFrom(a netip.Addr, port []byte) *net.TCPAddr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, binary.BigEndian.Uint16(port)))
}
