package console

import (
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/call"
)

// Fuzz targets for the console's own parsers of what a browser sends: the
// policy form and the sign-in redirect target. Corpora: the seeds below
// and testdata/fuzz/<target>.

// FuzzSafeNext feeds arbitrary "next" values (the page to return to after
// signing in) to safeNext. Checks: the result is the input or the console
// root, and stays on the console: resolved against the console's own URL,
// as a browser would, it keeps the host and its path is under Prefix.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{
		Prefix + "calls?from=2026-01-01T00:00", Prefix, "/", "//evil.example/", "/console//evil.example",
		Prefix + "..%2f..%2fadmin", "https://evil.example/console/", Prefix + "\\evil", Prefix + "x\r\nSet-Cookie: a=b",
		"/\\evil.example", Prefix + "../../..//evil.example", "javascript:alert(1)", Prefix + "\t/x", "",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://ringfence.example" + Prefix + "signin")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != next && got != Prefix {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			return // http.Redirect sends it as it is; a browser resolves it as a path (below)
		}
		to := base.ResolveReference(u)
		if to.Host != base.Host || to.Scheme != base.Scheme {
			t.Fatalf("safeNext(%q) = %q leads to %s", next, got, to)
		}
		if u.Scheme != "" || u.Host != "" || u.User != nil {
			t.Fatalf("safeNext(%q) = %q names a scheme or host", next, got)
		}
	})
}

// fuzzLivePolicy is a live policy with a shadow and a model weight and
// action the form does not list, which an edit must keep.
func fuzzLivePolicy() call.Policy {
	p := call.DefaultPolicy()
	p.Version = 3
	p.Weights = map[string]float64{"model.caller_age": 1.25}
	p.Actions = map[string]call.Action{"model.caller_age": call.Flag}
	shadow := call.DefaultPolicy()
	shadow.FlagAt = 0.5
	p.Shadow = &shadow
	return p
}

// postForm returns a POST of the url-encoded form body.
func postForm(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, Prefix+"policy", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// FuzzParsePolicy feeds arbitrary form bodies to the policy page's form
// parser. Checks: no panic; a form without problems gives finite numbers,
// keeps the live policy's shadow and its weights and actions on codes the
// form does not list; and the form the page renders for that policy
// (policyValues) parses back to the same policy (block_with 0, the
// default, is shown as 608).
func FuzzParsePolicy(f *testing.F) {
	live := fuzzLivePolicy()
	f.Add(encodeForm(policyValues(live)))
	f.Add("version=3&flag_at=0.6&block_at=0.9&prior=-2&block_with=603&redress=https%3A%2F%2Fbank.example%2Fredress&weights.dno.listed=4&actions.dno.listed=block")
	f.Add("version=3&flag_at=NaN&block_at=Inf&prior=1e400&block_with=x&weights.dno.listed=-Inf&actions.dno.listed=%20")
	f.Add("version=0&flag_at=&block_at=0x1p-2&prior=0&block_with=0")
	f.Add("version=3&flag_at=0.6&flag_at=0.7&block_at=0.9&prior=0&block_with=608&weights.model.caller_age=9")
	f.Add("%zz&version=3")
	f.Fuzz(func(t *testing.T, body string) {
		form := newForm()
		p := parsePolicy(postForm(body), live, form)
		if form.failed() {
			return
		}
		for _, v := range []float64{p.FlagAt, p.BlockAt, p.Prior} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("form %q gave a number %v", body, v)
			}
		}
		for code, w := range p.Weights {
			if math.IsNaN(w) || math.IsInf(w, 0) {
				t.Fatalf("form %q gave weight %s = %v", body, code, w)
			}
		}
		if p.Shadow != live.Shadow || p.Weights["model.caller_age"] != 1.25 || p.Actions["model.caller_age"] != call.Flag {
			t.Fatalf("form %q lost what the form does not edit: %+v", body, p)
		}
		again := newForm()
		back := parsePolicy(postForm(encodeForm(policyValues(p))), live, again)
		if p.BlockWith == 0 {
			p.BlockWith = 608
		}
		if again.failed() || !reflect.DeepEqual(back, p) {
			t.Fatalf("form %q: policy %+v renders as a form that parses to %+v (%+v)", body, p, back, again)
		}
	})
}

func encodeForm(values map[string]string) string {
	v := url.Values{}
	for k, s := range values {
		v.Set(k, s)
	}
	return v.Encode()
}
