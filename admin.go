package lb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
// their URLs) may hold slashes.
// Errors are answered as JSON {"error": "..."} with 400 for bad input, 404
// for an unknown server, 409 for a duplicate or a server already being
// drained, and 504 when a drain times out. Mount it under a prefix with [http.StripPrefix], and only where
// operators alone can reach it (a loopback or internal listener, behind
// authentication): whoever can call it can point the pool anywhere.
func AdminHandler(pool *Pool) http.Handler {
	a := &admin{pool: pool}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", StatusHandler(pool))
	mux.HandleFunc("POST /{$}", a.add)
	mux.HandleFunc("DELETE /{$}", a.remove)
	mux.HandleFunc("POST /drain", a.drain)
	return mux
}

type admin struct{ pool *Pool }

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
