package console

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ringfence/ringfence/call"
)

// TestBrowserConfig drives the lists, routes and policy pages in headless
// Chromium as an admin: a validation error shown beside its field, a
// deny-list number added (and the next call from it blocked), a route
// added, the policy edited, previewed on the stored calls and saved. With
// -update it writes lists.png, routes.png and policy.png to
// docs/screenshots.
func TestBrowserConfig(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	e := newEnv(t, Config{})
	e.addUser("root", call.Admin)
	const denied = "+447400555123"
	for i := range 6 {
		e.screen(fmt.Sprintf("+4474001234%02d", i))
	}
	e.screen("anonymous")
	e.screen("+442079460123") // the tenant's own number: flagged
	for range 2 {             // ... with From and PAI apart: blocked by score
		if _, err := e.node.Screen(t.Context(), nodeIncoming("+442079460123", "<sip:+442079460123@c.example>", "<sip:+447400999888@c.example>")); err != nil {
			t.Fatal(err)
		}
	}

	b := openBrowser(t, exe)
	dir, url := b.dir, e.srv.URL
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	run, text, eval := b.run, b.text, b.eval

	run("sign in", chromedp.Navigate(url+"/console/signin"), chromedp.WaitVisible(css("#tenant")),
		chromedp.SendKeys(css("#tenant"), tenant), chromedp.SendKeys(css("#user"), "root"), chromedp.SendKeys(css("#password"), password),
		tabEnter(`form[action="/console/signin"] button[type=submit]`), chromedp.WaitVisible(css("#feed")))

	// Lists: a wrong number is refused beside the field; a right one is
	// added from the keyboard, shown masked, and blocks the next call.
	run("lists", chromedp.Navigate(url+"/console/lists"), chromedp.WaitVisible(css("#add-form")), accessible(t, "lists"))
	run("wrong number", chromedp.SendKeys(css("#number"), "12"), tabEnter("#add-form button[type=submit]"),
		chromedp.WaitVisible(css("#number-error")), accessible(t, "lists with an error"))
	if got := eval(`document.getElementById("number").getAttribute("aria-describedby")`); !strings.Contains(fmt.Sprint(got), "number-error") {
		t.Fatalf("#number aria-describedby %v", got)
	}
	if msg := text("#number-error"); !strings.Contains(msg, "not a telephone number") {
		t.Fatalf("error beside the number: %q", msg)
	}
	run("add number", chromedp.SetValue(css("#number"), denied), chromedp.SendKeys(css("#reason"), "confirmed by phone"),
		tabEnter("#add-form button[type=submit]"), chromedp.WaitVisible(css(".flash")), chromedp.WaitVisible(css("#entries")),
		accessible(t, "lists after adding"), shot(t, dir, "lists"))
	if cell := text("#entries [data-number]"); strings.Contains(cell, denied[3:]) || !strings.HasSuffix(cell, "123") {
		t.Fatalf("list shows %q: want it masked", cell)
	}
	if c := e.screen(denied); c.Verdict.Action != call.Block || !c.Verdict.Has("list.deny") {
		t.Fatalf("next call from the added number: %s %v", c.Verdict.Action, c.Verdict.Markers)
	}

	// Routes.
	run("routes", chromedp.Navigate(url+"/console/routes"), chromedp.WaitVisible(css("#route-form")), accessible(t, "routes"),
		chromedp.SendKeys(css("#id"), "intl-us"), chromedp.SetValue(css("#kind"), "international"), chromedp.SendKeys(css("#country"), "US"),
		tabEnter("#route-form button[type=submit]"), chromedp.WaitVisible(css("#route-intl-us")), accessible(t, "routes after adding"),
		shot(t, dir, "routes"))

	// Policy: raise the block threshold, preview, save.
	live, err := e.node.Policy(tenant)
	if err != nil {
		t.Fatal(err)
	}
	cand := live
	cand.BlockAt = 0.95
	want, err := e.node.ReplayPolicy(t.Context(), tenant, cand, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want.ChangedCount != 2 {
		t.Fatalf("node replay changes %d calls, want the 2 blocked by score", want.ChangedCount)
	}
	run("policy", chromedp.Navigate(url+"/console/policy"), chromedp.WaitVisible(css("#policy-form")), accessible(t, "policy"),
		chromedp.SetValue(css("#block_at"), "0.95"), tabEnter("#preview-button"), chromedp.WaitVisible(css("#preview")),
		accessible(t, "policy preview"), shot(t, dir, "policy"))
	if s := text("#replay-summary"); !strings.HasPrefix(s, fmt.Sprintf("%d of %d calls", want.ChangedCount, want.Replayed)) {
		t.Fatalf("preview summary %q, node %d of %d", s, want.ChangedCount, want.Replayed)
	}
	for _, a := range []call.Action{call.Allow, call.Flag, call.Block} {
		row := fmt.Sprintf(`#replay-counts tr[data-action=%q]`, a)
		if l, c := text(row+" [data-live]"), text(row+" [data-candidate]"); l != fmt.Sprint(want.Live[a]) || c != fmt.Sprint(want.Candidate[a]) {
			t.Errorf("preview %s: live %s edited %s, node %d %d", a, l, c, want.Live[a], want.Candidate[a])
		}
	}
	if p, _ := e.node.Policy(tenant); p.Version != live.Version {
		t.Fatal("the preview saved the policy")
	}
	run("save", tabEnter("#save-button"), chromedp.WaitVisible(css(".flash")), accessible(t, "policy saved"))
	if p, _ := e.node.Policy(tenant); p.Version != live.Version+1 || p.BlockAt != 0.95 {
		t.Fatalf("stored policy version %d block_at %v", p.Version, p.BlockAt)
	}
	if v := eval(`document.getElementById("block_at").value`); v != "0.95" {
		t.Fatalf("the page after saving shows block_at %v", v)
	}
}
