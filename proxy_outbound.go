package lb

import (
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
)

// handlerRequest returns the request an in-process handler server gets for
// in: a clone cleaned and rewritten by the rules [httputil.ReverseProxy]
// and [Proxy.rewrite] apply to the request of a URL server, so that both
// kinds of server see the same headers. in is the inbound request with the
// proxy's state in its context.
func (p *Proxy) handlerRequest(in *http.Request) *http.Request {
	out := in.Clone(in.Context())
	if in.ContentLength == 0 || out.Body == nil {
		out.Body = http.NoBody
	}
	out.Close = false
	upgrade := upgradeType(out.Header)
	removeHopByHop(out.Header)
	if headerHasToken(in.Header["Te"], "trailers") {
		out.Header.Set("Te", "trailers")
	}
	if upgrade != "" {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", upgrade)
	}
	for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		out.Header.Del(h)
	}
	if q := cleanQuery(out.URL.RawQuery); q != out.URL.RawQuery {
		out.URL.RawQuery = q
		out.RequestURI = out.URL.RequestURI()
	}
	p.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	return out
}

// hopByHop are the headers that concern one connection only (RFC 9110
// §7.6.1), as the reverse proxy removes them.
var hopByHop = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop deletes from h the hop-by-hop headers and those named in
// its Connection header.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// upgradeType returns the protocol that a request with header h asks to
// switch to, or "".
func upgradeType(h http.Header) string {
	if !headerHasToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// headerHasToken reports whether the comma-separated values hold token,
// compared without regard to case.
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

// printable reports whether s is printable ASCII.
func printable(s string) bool {
	for i := range len(s) {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// cleanQuery returns the query q without the parameters that cannot be
// parsed (a semicolon, a bad escape), re-encoded, as the reverse proxy
// sends it; a query that parses whole is returned unchanged.
func cleanQuery(q string) string {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return reencode(q)
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencode(q)
			}
			i += 2
		}
	}
	return q
}

func reencode(q string) string {
	v, _ := url.ParseQuery(q)
	return v.Encode()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
