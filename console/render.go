package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
)

// pageNames are the templates under templates/ rendered inside layout.html.
var pageNames = []string{"signin", "error", "home", "calls", "call", "overview", "audit", "lists", "routes", "policy",
	"privacy", "case", "holds", "retention", "consortium", "archive", "archiveitem", "archiveholds"}

var funcs = template.FuncMap{
	"mask":    mask,
	"shown":   shown,
	"time":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"score":   func(f float64) string { return fmt.Sprintf("%.3f", f) },
	"weight":  func(f float64) string { return fmt.Sprintf("%+.2f", f) },
	"explain": explain,
	"role":    roleName,
	"dur":     func(d time.Duration) string { return d.Round(time.Second).String() },
	"join":    strings.Join,
	"actionClass": func(a call.Action) string {
		return "action-" + string(a)
	},
	"maskText": maskText,
	"maskRef":  maskRef,
	"day":      day,
	"fieldErr": func(errs formErrors, field string) string { return errs[field] },
	"short":    short,
}

// parseTemplates parses every page with the layout and the shared
// partials, once at start.
func (s *Server) parseTemplates() error {
	s.pages = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("console template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	rows, err := template.New("rows").Funcs(funcs).ParseFS(templateFS, "templates/partials.html")
	if err != nil {
		return fmt.Errorf("console template partials: %w", err)
	}
	s.rows = rows
	if _, err := fs.Stat(staticFS, "static/console.js"); err != nil {
		return fmt.Errorf("console assets: %w", err)
	}
	return nil
}

// view is what every page template gets.
type view struct {
	P     *principal
	Page  string
	Title string
	Data  map[string]any
}

// render writes a page with the status. It renders into a buffer first so
// a template error becomes a clean 500, not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *principal, data map[string]any) {
	t := s.pages[name]
	title, _ := data["Title"].(string)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", view{P: p, Page: name, Title: title, Data: data}); err != nil {
		s.log.Error("console render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// mask hides all but the last three digits of a number: "+44 ••• ••• 456".
// A withheld number reads "withheld".
func mask(n call.Number) string {
	if !n.Present() {
		if n.Withheld || n.Raw == "" {
			return "withheld"
		}
		return "not a number"
	}
	e := n.E164
	if len(e) <= 4 {
		return "•••"
	}
	return e[:3] + strings.Repeat("•", len(e)-6) + e[len(e)-3:]
}

// shown is a number in full, for a user who unmasked it.
func shown(n call.Number) string {
	switch {
	case n.Present():
		return n.E164
	case n.Withheld || n.Raw == "":
		return "withheld"
	}
	return n.Raw
}

// explain is a marker's plain-language meaning, from the engine's table.
func explain(code string) string {
	if m, ok := meanings[code]; ok {
		return m
	}
	if strings.HasPrefix(code, "model.") {
		return "The tenant's learned model: this feature's contribution to the score."
	}
	return "No description for this marker."
}
