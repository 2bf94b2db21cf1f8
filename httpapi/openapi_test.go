package httpapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/call"
)

var update = flag.Bool("update", false, "rewrite docs/api.md from Routes and openapi.json")

// apiDoc is the route reference generated from Routes.
const apiDoc = "../docs/api.md"

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func parseOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openapi, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// openAPIOperations returns the document's operations keyed "METHOD /path".
func openAPIOperations(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("openapi.json: paths missing or not an object")
	}
	ops := map[string]map[string]any{}
	for path, item := range paths {
		m, ok := item.(map[string]any)
		if !ok {
			t.Errorf("paths[%q] is not an object", path)
			continue
		}
		for _, method := range openAPIMethods {
			if v, ok := m[method]; ok {
				op, ok := v.(map[string]any)
				if !ok {
					t.Errorf("%s %s: operation is not an object", method, path)
					continue
				}
				ops[strings.ToUpper(method)+" "+path] = op
			}
		}
	}
	return ops
}

func TestOpenAPIDocument(t *testing.T) {
	doc := parseOpenAPI(t)
	if v, _ := doc["openapi"].(string); v != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", v)
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] != "ringfence API" || info["version"] != "1" {
		t.Errorf("info title/version = %v/%v", info["title"], info["version"])
	}
	if d, _ := info["description"].(string); d == "" {
		t.Error("info.description is empty")
	}
	schemes, _ := lookup(doc, "components", "securitySchemes").(map[string]any)
	if len(schemes) == 0 {
		t.Error("no security schemes")
	}
	for name, s := range schemes {
		if m, _ := s.(map[string]any); m["type"] != "http" || m["scheme"] != "bearer" {
			t.Errorf("security scheme %s is not http bearer", name)
		}
	}
	if _, ok := lookup(doc, "components", "schemas", "Error").(map[string]any); !ok {
		t.Error("components.schemas.Error missing")
	}
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := parseOpenAPI(t)
	ops := openAPIOperations(t, doc)
	want := map[string]bool{}
	for _, route := range Routes {
		method, path, ok := cut(route.Pattern)
		if !ok {
			t.Errorf("Routes entry %q has no method", route.Pattern)
			continue
		}
		key := method + " " + path
		want[key] = true
		if _, ok := ops[key]; !ok {
			t.Errorf("route %s is not in openapi.json", key)
		}
	}
	var extra []string
	for key := range ops {
		if !want[key] {
			extra = append(extra, key)
		}
	}
	sort.Strings(extra)
	for _, key := range extra {
		t.Errorf("openapi.json documents %s, which is not in Routes", key)
	}
}

// TestOpenAPIRoles checks each operation's x-roles against the roles its
// route allows, that a route with roles documents 403 and bearer auth, and
// that a route without roles documents no security.
func TestOpenAPIRoles(t *testing.T) {
	doc := parseOpenAPI(t)
	ops := openAPIOperations(t, doc)
	for _, route := range Routes {
		method, path, _ := cut(route.Pattern)
		op, ok := ops[method+" "+path]
		if !ok {
			continue // TestOpenAPIRoutes reports it
		}
		t.Run(route.Pattern, func(t *testing.T) {
			raw, ok := op["x-roles"].([]any)
			if !ok {
				t.Fatalf("x-roles missing or not an array: %v", op["x-roles"])
			}
			var got []string
			for _, r := range raw {
				s, _ := r.(string)
				got = append(got, s)
			}
			var want []string
			for _, r := range route.Roles {
				want = append(want, string(r))
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("x-roles = %v, want %v (Routes)", got, want)
			}
			responses, _ := op["responses"].(map[string]any)
			security, hasSecurity := op["security"].([]any)
			if route.Roles == nil {
				if !hasSecurity || len(security) != 0 {
					t.Errorf("route needs no credentials but security = %v, want []", op["security"])
				}
				return
			}
			if hasSecurity && len(security) == 0 {
				t.Error("route needs an API key but security is []")
			}
			for _, code := range []string{"401", "403"} {
				if _, ok := responses[code]; !ok {
					t.Errorf("no %s response", code)
				}
			}
		})
	}
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

func TestOpenAPIOperations(t *testing.T) {
	doc := parseOpenAPI(t)
	ops := openAPIOperations(t, doc)
	ids := map[string]string{}
	for key, op := range ops {
		id, _ := op["operationId"].(string)
		switch {
		case id == "":
			t.Errorf("%s: no operationId", key)
		case ids[id] != "":
			t.Errorf("%s: operationId %q also used by %s", key, id, ids[id])
		default:
			ids[id] = key
		}
		if s, _ := op["summary"].(string); s == "" {
			t.Errorf("%s: no summary", key)
		}
		responses, _ := op["responses"].(map[string]any)
		var ok2xx, ok4xx bool
		for code := range responses {
			n, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: response key %q is not a status code", key, code)
				continue
			}
			ok2xx = ok2xx || n >= 200 && n < 300
			ok4xx = ok4xx || n >= 400 && n < 500
		}
		if !ok2xx {
			t.Errorf("%s: no 2xx response", key)
		}
		if !ok4xx {
			t.Errorf("%s: no 4xx response", key)
		}

		// Every {name} in the path is declared as a path parameter.
		_, path, _ := cut(key)
		declared := map[string]bool{}
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			pm, _ := p.(map[string]any)
			if r, ok := pm["$ref"].(string); ok {
				pm, _ = resolveRef(doc, r).(map[string]any)
			}
			if pm["in"] == "path" {
				name, _ := pm["name"].(string)
				declared[name] = true
				if pm["required"] != true {
					t.Errorf("%s: path parameter %s is not required", key, name)
				}
			}
		}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter {%s} is not declared", key, m[1])
			}
			delete(declared, m[1])
		}
		for name := range declared {
			t.Errorf("%s: path parameter %s is not in the path", key, name)
		}
	}
}

func TestOpenAPIRefs(t *testing.T) {
	doc := parseOpenAPI(t)
	n := 0
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"]; ok {
				s, _ := r.(string)
				n++
				if !strings.HasPrefix(s, "#/") {
					t.Errorf("%s: $ref %q is not local to the document", at, s)
				} else if resolveRef(doc, s) == nil {
					t.Errorf("%s: $ref %q does not resolve", at, s)
				}
			}
			for k, e := range v {
				walk(e, at+"/"+k)
			}
		case []any:
			for i, e := range v {
				walk(e, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(doc, "#")
	if n == 0 {
		t.Error("no $ref in openapi.json")
	}
}

// resolveRef resolves a local JSON pointer ("#/a/b") in doc, nil if absent.
func resolveRef(doc map[string]any, ref string) any {
	frag, err := url.PathUnescape(strings.TrimPrefix(ref, "#"))
	if err != nil {
		return nil
	}
	var keys []string
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		keys = append(keys, strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~"))
	}
	return lookup(doc, keys...)
}

func lookup(v any, keys ...string) any {
	for _, k := range keys {
		switch c := v.(type) {
		case map[string]any:
			v = c[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
		if v == nil {
			return nil
		}
	}
	return v
}

// renderAPIDoc renders docs/api.md: every route in Routes with its roles,
// grouped by the operation's first OpenAPI tag (in order of first use),
// with the operation's summary as its purpose.
func renderAPIDoc(t *testing.T) []byte {
	t.Helper()
	doc := parseOpenAPI(t)
	ops := openAPIOperations(t, doc)
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# HTTP API routes\n\n")
	w("<!-- Generated from httpapi.Routes and httpapi/openapi.json by\n")
	w("     go test ./httpapi -run TestAPIDoc -update\n")
	w("     Do not edit by hand: change Routes in httpapi/server.go and the summaries in openapi.json. -->\n\n")
	w("Every route ringfence's HTTP API serves, with the roles whose API keys may call\n")
	w("it and what it is for. Requests, answers and errors are specified in the OpenAPI\n")
	w("document, served at `GET /v1/openapi.json` (source: `httpapi/openapi.json`, where\n")
	w("each operation lists the same roles in `x-roles`).\n\n")
	w("A key whose role is not listed gets `403`; no key, or an unknown one, gets `401`.\n")
	w("Every query is scoped to the key's tenant: naming another tenant's object answers\n")
	w("`404`, exactly as for an object that does not exist.\n\n")
	w("Roles: %s.\n", roleNames(call.Roles, "`", ", "))

	var tags []string
	byTag := map[string][]Route{}
	for _, route := range Routes {
		method, path, _ := cut(route.Pattern)
		op, ok := ops[method+" "+path]
		if !ok {
			t.Errorf("%s: not in openapi.json, so docs/api.md has no purpose for it", route.Pattern)
		}
		tag := "Other"
		if ts, _ := op["tags"].([]any); len(ts) > 0 {
			tag, _ = ts[0].(string)
		}
		if byTag[tag] == nil {
			tags = append(tags, tag)
		}
		byTag[tag] = append(byTag[tag], route)
	}
	for _, tag := range tags {
		w("\n## %s\n\n", tag)
		w("| method | path | roles | purpose |\n")
		w("| --- | --- | --- | --- |\n")
		for _, route := range byTag[tag] {
			method, path, _ := cut(route.Pattern)
			summary, _ := ops[method+" "+path]["summary"].(string)
			roles := roleNames(route.Roles, "", ", ")
			switch {
			case route.Roles == nil:
				roles = "none (no API key)"
			case slices.Equal(route.Roles, call.Roles):
				roles = "any"
			}
			w("| %s | `%s` | %s | %s |\n", method, path, roles, summary)
		}
	}
	return b.Bytes()
}

func roleNames(roles []call.Role, quote, sep string) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = quote + string(r) + quote
	}
	return strings.Join(s, sep)
}

// TestAPIDoc checks docs/api.md is what renderAPIDoc makes of Routes; run
// with -update to rewrite it.
func TestAPIDoc(t *testing.T) {
	want := renderAPIDoc(t)
	if *update {
		if err := os.WriteFile(apiDoc, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./httpapi -run TestAPIDoc -update)", err)
	}
	if !bytes.Equal(got, want) {
		g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(g), len(w)) {
			var gl, wl string
			if i < len(g) {
				gl = g[i]
			}
			if i < len(w) {
				wl = w[i]
			}
			if gl != wl {
				t.Errorf("%s is out of date with Routes; regenerate with: go test ./httpapi -run TestAPIDoc -update\nline %d:\n got %q\nwant %q", apiDoc, i+1, gl, wl)
				break
			}
		}
	}
	for _, route := range Routes {
		method, path, _ := cut(route.Pattern)
		if !bytes.Contains(want, []byte("| "+method+" | `"+path+"` |")) {
			t.Errorf("%s missing from the doc", route.Pattern)
		}
	}
}
