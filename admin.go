package lb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AdminHandler returns a handler that changes pool at run time, for
// operators:
//
//	GET    /                      the pool's state, as StatusHandler serves it
//	POST   /                      add a server: {"url": "http://10.0.0.9:8080", "weight": 2, "name": "n9"}
//	DELETE /?name=NAME            remove a server at once
//	POST   /drain?name=NAME       drain a server, then remove it (&timeout=30s, the default)
//
// Servers are named by query parameter, since their names (by default
// their URLs) may hold slashes. A new server's URL must be http or https,
// the schemes a [Proxy] speaks, and the body must hold one JSON object and
// nothing after it.
//
// Requests that change the pool (every method but GET and HEAD) must have
// the Content-Type application/json, or they are answered 415: a web page
// cannot send that type to another site without the browser asking first
// (a CORS preflight), which this handler grants only to the origins
// [WithAdminOrigins] allows. A request with an
// Origin header, which browsers add, is answered 403 unless
// [WithAdminOrigins] allows its origin, and [WithAdminHosts] limits the
// Host headers accepted (against DNS rebinding). Together they keep a web
// page that an operator visits from changing the pool.
//
// Errors are answered as JSON {"error": "..."} with 400 for bad input, 403
// for a Host or Origin not allowed, 404 for an unknown path or server, 405
// for a method the path does not take, 409 for a duplicate or a server
// already being drained, 415 for a change that is not JSON, and 504 when a
// drain times out. Mount it under a prefix with [http.StripPrefix], and
// only where operators alone can reach it (a loopback or internal listener,
// behind authentication): whoever can call it can point the pool anywhere.
//
// A nil pool, or an option given a bad value, is an error.
func AdminHandler(pool *Pool, opts ...AdminOption) (http.Handler, error) {
	if pool == nil {
		return nil, errors.New("lb: AdminHandler: nil pool")
	}
	a := &admin{pool: pool, status: StatusHandler(pool)}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("lb: AdminHandler: option %d is nil", i)
		}
		if err := opt(&a.o); err != nil {
			return nil, fmt.Errorf("lb: AdminHandler: %w", err)
		}
	}
	return a, nil
}

// An AdminOption configures the handler made by [AdminHandler].
type AdminOption func(*adminOptions) error

type adminOptions struct {
	origins map[string]bool // allowed origins, as scheme://host[:port] in lower case
	hosts   []hostPort      // allowed Host headers; none means any
}

// hostPort is an allowed Host header: a host name or IP address, and a port
// or "" for any port.
type hostPort struct{ host, port string }

// WithAdminOrigins allows requests whose Origin header is one of origins,
// each written as a browser sends it: scheme://host, with a port if it is
// not the scheme's default, and no path ("https://ops.example.com",
// "http://127.0.0.1:8081"). Responses to them carry the CORS headers that
// let such a page read them and send changes. By default a request with
// any Origin header is refused, which suits callers that are not browsers
// (curl, scripts) and a status page opened directly.
func WithAdminOrigins(origins ...string) AdminOption {
	return func(o *adminOptions) error {
		if o.origins == nil {
			o.origins = make(map[string]bool, len(origins))
		}
		for _, v := range origins {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
				return fmt.Errorf("WithAdminOrigins: origin %q is not of the form http[s]://host[:port]", v)
			}
			o.origins[strings.ToLower(v)] = true
		}
		return nil
	}
}

// WithAdminHosts allows only requests whose Host header is one of hosts,
// each a host name or IP address with or without a port ("localhost:8081",
// "127.0.0.1", "[::1]:8081"); one without a port allows any port. Others
// are answered 403. This defeats DNS rebinding, where a web page's own
// name is made to resolve to the admin listener. By default any Host is
// accepted.
func WithAdminHosts(hosts ...string) AdminOption {
	return func(o *adminOptions) error {
		for _, v := range hosts {
			hp, ok := parseHost(v)
			if !ok {
				return fmt.Errorf("WithAdminHosts: host %q is not of the form host[:port]", v)
			}
			o.hosts = append(o.hosts, hp)
		}
		return nil
	}
}

// parseHost splits a Host header, or an entry of WithAdminHosts, into host
// (in lower case) and port.
func parseHost(v string) (hostPort, bool) {
	u, err := url.Parse("//" + v)
	if err != nil || u.Host != v || u.Hostname() == "" {
		return hostPort{}, false
	}
	return hostPort{strings.ToLower(u.Hostname()), u.Port()}, true
}

type admin struct {
	pool   *Pool
	status http.Handler
	o      adminOptions
}

// adminAllow lists the methods of the admin paths, for 405 answers
// and CORS preflights.
var adminAllow = map[string]string{"/": "GET, HEAD, POST, DELETE", "/drain": "POST"}

func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.hostAllowed(r.Host) {
		adminError(w, http.StatusForbidden, fmt.Errorf("lb: admin: host %q is not allowed", r.Host))
		return
	}
	if origin, ok := r.Header["Origin"]; ok {
		v := strings.Join(origin, ", ")
		if len(origin) != 1 || !a.o.origins[strings.ToLower(v)] {
			adminError(w, http.StatusForbidden, fmt.Errorf("lb: admin: origin %q is not allowed", v))
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", v)
		w.Header().Add("Vary", "Origin")
		if allow := adminAllow[r.URL.Path]; allow != "" && r.Method == http.MethodOptions &&
			r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", allow)
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	var h http.HandlerFunc
	switch path, m := r.URL.Path, r.Method; {
	case path == "/" && (m == http.MethodGet || m == http.MethodHead):
		a.status.ServeHTTP(w, r)
		return
	case path == "/" && m == http.MethodPost:
		h = a.add
	case path == "/" && m == http.MethodDelete:
		h = a.remove
	case path == "/drain" && m == http.MethodPost:
		h = a.drain
	case adminAllow[path] != "":
		w.Header().Set("Allow", adminAllow[path])
		adminError(w, http.StatusMethodNotAllowed, fmt.Errorf("lb: admin: method %s not allowed on %q", m, path))
		return
	default:
		adminError(w, http.StatusNotFound, fmt.Errorf("lb: admin: no such path %q", path))
		return
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		adminError(w, http.StatusUnsupportedMediaType,
			fmt.Errorf("lb: admin: Content-Type %q is not application/json", ct))
		return
	}
	h(w, r)
}

// hostAllowed reports whether the Host header v is allowed.
func (a *admin) hostAllowed(v string) bool {
	if len(a.o.hosts) == 0 {
		return true
	}
	hp, ok := parseHost(v)
	if !ok {
		return false
	}
	for _, allowed := range a.o.hosts {
		if hp.host == allowed.host && (allowed.port == "" || hp.port == allowed.port) {
			return true
		}
	}
	return false
}

// isJSON reports whether the Content-Type ct is application/json.
func isJSON(ct string) bool {
	media, _, err := mime.ParseMediaType(ct)
	return err == nil && media == "application/json"
}

// addRequest is the body of POST /.
type addRequest struct {
	URL    string `json:"url"`
	Name   string `json:"name"`
	Weight *int   `json:"weight"`
}

func (a *admin) add(w http.ResponseWriter, r *http.Request) {
	var req addRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		adminError(w, http.StatusBadRequest, fmt.Errorf("lb: admin: bad request body: %w", err))
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		adminError(w, http.StatusBadRequest, errors.New("lb: admin: bad request body: data after the JSON object"))
		return
	}
	var opts []ServerOption
	if req.Name != "" {
		opts = append(opts, WithName(req.Name))
	}
	if req.Weight != nil {
		opts = append(opts, WithWeight(*req.Weight))
	}
	s, err := NewServer(req.URL, opts...)
	if err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	if u := s.url; u.Scheme != "http" && u.Scheme != "https" {
		adminError(w, http.StatusBadRequest,
			fmt.Errorf("lb: admin: server URL %q: scheme %q is not http or https", displayURL(u), u.Scheme))
		return
	}
	if err := a.pool.Add(s); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrDuplicateServer) {
			code = http.StatusConflict
		}
		adminError(w, code, err)
		return
	}
	adminJSON(w, http.StatusCreated, s.Stats())
}

func (a *admin) remove(w http.ResponseWriter, r *http.Request) {
	s := a.lookup(w, r)
	if s == nil {
		return
	}
	if err := a.pool.Remove(s); err != nil {
		adminError(w, http.StatusNotFound, err)
		return
	}
	adminJSON(w, http.StatusOK, s.Stats())
}

func (a *admin) drain(w http.ResponseWriter, r *http.Request) {
	s := a.lookup(w, r)
	if s == nil {
		return
	}
	timeout := 30 * time.Second
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			adminError(w, http.StatusBadRequest, fmt.Errorf("lb: admin: timeout %q is not a positive duration", v))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if err := a.pool.Drain(ctx, s); err != nil {
		code := http.StatusGatewayTimeout
		switch {
		case errors.Is(err, ErrUnknownServer):
			code = http.StatusNotFound
		case errors.Is(err, errDraining):
			code = http.StatusConflict
		}
		adminError(w, code, err)
		return
	}
	adminJSON(w, http.StatusOK, s.Stats())
}

// lookup returns the server named by the query parameter name, or answers
// 404.
func (a *admin) lookup(w http.ResponseWriter, r *http.Request) *Server {
	name := r.URL.Query().Get("name")
	s := a.pool.Server(name)
	if s == nil {
		adminError(w, http.StatusNotFound, fmt.Errorf("%w: %q", ErrUnknownServer, name))
	}
	return s
}

func adminJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func adminError(w http.ResponseWriter, code int, err error) {
	adminJSON(w, code, map[string]string{"error": strings.TrimPrefix(err.Error(), "lb: ")})
}
