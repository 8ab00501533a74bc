package lb

import (
	"net/url"
	"strings"
)

// withoutUserinfo returns raw, a URL that url.Parse accepted with user
// info, without that user info and its "@": "http://ops:pw@10.0.0.1:8080/x"
// becomes "http://10.0.0.1:8080/x". The rest is kept as written. It splits
// raw where url.Parse does: the authority follows "scheme://" and ends at
// the first "/", "?" or "#"; the user info ends at its last "@".
func withoutUserinfo(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	start := i + len("://")
	end := len(raw)
	if j := strings.IndexAny(raw[start:], "/?#"); j >= 0 {
		end = start + j
	}
	at := strings.LastIndex(raw[start:end], "@")
	if at < 0 {
		return raw
	}
	return raw[:start] + raw[start+at+1:]
}

// redactRaw returns raw, a string meant as a URL that may not parse, fit
// to appear in an error: if it holds an "@" anywhere, everything from the
// start of the authority (after "//", or the start of raw) to its last "@"
// is replaced by "***@", since a password may hold characters ("/", "#",
// "?") that would end the authority early. It reports whether it changed
// raw.
func redactRaw(raw string) (string, bool) {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw, false
	}
	start := 0
	if i := strings.Index(raw, "//"); i >= 0 && i < at {
		start = i + len("//")
	}
	return raw[:start] + "***@" + raw[at+1:], true
}

// displayURL returns u as a string without its user info, for status pages
// and logs.
func displayURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	v := *u
	v.User = nil
	return v.String()
}
