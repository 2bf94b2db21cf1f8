package console

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ringfence/ringfence/call"
)

var update = flag.Bool("update", false, "write the browser test's screenshots to docs/screenshots")

// chromium finds a Chromium binary: skipped without one, unless CI=true.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium binary on PATH: CI must install the Debian package chromium")
	}
	t.Skip("no chromium binary on PATH: install the Debian package chromium (apt-get install -y chromium) to run the browser tests")
	return ""
}

// a11yCheck is run on every page: one h1, every form control labelled,
// every link and button named, the document's language set, every chart
// labelled. It returns the problems found.
const a11yCheck = `(() => {
  const p = [];
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) p.push("h1 count " + h1);
  if (!document.documentElement.lang) p.push("no lang on html");
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const lab = el.id && document.querySelector('label[for="' + el.id + '"]');
    if (!(lab && lab.textContent.trim()) && !el.getAttribute("aria-label") && !el.closest("label")) p.push("unlabelled control " + (el.name || el.id));
  }
  for (const el of document.querySelectorAll("a, button")) {
    if (!el.textContent.trim() && !el.getAttribute("aria-label")) p.push("unnamed " + el.tagName);
  }
  for (const el of document.querySelectorAll("svg[role=img]")) {
    if (!el.getAttribute("aria-labelledby") && !el.getAttribute("aria-label")) p.push("unlabelled chart");
  }
  if (!document.querySelector("main")) p.push("no main landmark");
  return p;
})()`

// accessible fails the test if the current page breaks a11yCheck.
func accessible(t *testing.T, page string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		problems, err := chromedp.Evaluate[[]string](a11yCheck)(ctx, tg)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			t.Errorf("%s: accessibility: %s", page, strings.Join(problems, "; "))
		}
		return nil
	})
}

// tabEnter presses Tab until the element matching sel has the focus, then
// Enter: the action must be reachable from the keyboard.
func tabEnter(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for range 80 {
			on, err := chromedp.Evaluate[bool](fmt.Sprintf(`!!document.activeElement && document.activeElement.matches(%q)`, sel))(ctx, tg)
			if err != nil {
				return err
			}
			if on {
				_, err := chromedp.KeyEvent(kb.Enter)(ctx, tg)
				return err
			}
			if _, err := chromedp.KeyEvent(kb.Tab)(ctx, tg); err != nil {
				return err
			}
		}
		return fmt.Errorf("%s is not reachable with the Tab key", sel)
	})
}

// shot saves a full-page PNG screenshot: to docs/screenshots with -update,
// to a temporary directory otherwise.
func shot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// chrome is a headless Chromium for one test, with helpers that fail the
// test on error. Screenshots go to docs/screenshots with -update, else to
// a temporary directory.
type chrome struct {
	t   *testing.T
	ctx context.Context
	dir string
}

// openBrowser starts Chromium (without a deadline; the steps then get 90 s).
func openBrowser(t *testing.T, exe string) *chrome {
	dir := t.TempDir()
	if *update {
		dir = filepath.Join("..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancelT)
	return &chrome{t: t, ctx: ctx, dir: dir}
}

func (b *chrome) run(step string, as ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, as...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

func (b *chrome) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(v)
}

func (b *chrome) eval(js string) any {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// TestBrowser drives the console in headless Chromium over a real node,
// SQLite store and user store: sign in, watch a call arrive live, unmask
// it, open it, confirm fraud, see the next call from the number blocked;
// role limits (an analyst cannot open the audit log; an auditor sees
// numbers masked and verifies the audit chain); a forged form refused.
func TestBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	e := newEnv(t, Config{Poll: 100 * time.Millisecond})
	e.addUser("alice", call.Analyst)
	e.addUser("audrey", call.Auditor)
	const fraudster = "+447700900123"
	for i := range 8 {
		e.screen(fmt.Sprintf("+4474001234%02d", i))
	}
	e.screen("anonymous")

	b := openBrowser(t, exe)
	dir, url := b.dir, e.srv.URL
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	run, text, eval := b.run, b.text, b.eval
	ctx := b.ctx
	signIn := func(user string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(url+"/console/signin"),
			chromedp.WaitVisible(css("#tenant")),
			chromedp.SendKeys(css("#tenant"), tenant),
			chromedp.SendKeys(css("#user"), user),
			chromedp.SendKeys(css("#password"), password),
			tabEnter(`form[action="/console/signin"] button[type=submit]`),
		)
	}

	run("sign-in page", chromedp.Navigate(url+"/console/signin"), chromedp.WaitVisible(css("#tenant")),
		accessible(t, "sign in"), shot(t, dir, "signin"))
	run("sign in as analyst", signIn("alice"), chromedp.WaitVisible(css("#feed")), accessible(t, "live calls"))

	// A call screened now appears in the open feed, masked.
	live := e.screen(fraudster)
	row := "#call-" + live.ID
	run("live call", chromedp.WaitVisible(css(row)), shot(t, dir, "calls"))
	if cell := text(row + " [data-caller]"); strings.Contains(cell, fraudster[3:]) || !strings.HasSuffix(cell, "123") {
		t.Fatalf("feed shows caller %q: want it masked", cell)
	}

	// Unmasking shows the number and is audited under the analyst's name.
	reads := len(e.auditActions("call.read", "user:alice"))
	run("unmask", chromedp.Click(css(row+" form.unmask button")), chromedp.WaitVisible(css(row+" [data-unmasked]")))
	if cell := text(row + " [data-caller]"); cell != fraudster {
		t.Fatalf("unmasked caller %q", cell)
	}
	if got := len(e.auditActions("call.read", "user:alice")); got != reads+1 {
		t.Fatalf("call.read entries by user:alice: %d, want %d", got, reads+1)
	}

	// Open the call from the keyboard and confirm fraud.
	run("open the call", tabEnter(row+" a"), chromedp.WaitVisible(css("#fraud-form")), accessible(t, "call"), shot(t, dir, "call"))
	if v := text("#h-verdict"); !strings.Contains(v, string(live.Verdict.Action)) {
		t.Fatalf("verdict heading %q, want action %s", v, live.Verdict.Action)
	}
	run("confirm fraud", chromedp.SetValue(css("#fraud-type"), "account_takeover"),
		tabEnter("#fraud-form button[type=submit]"), chromedp.WaitVisible(css(".flash")))
	if f := text(".flash"); !strings.Contains(f, "Confirmed fraud") {
		t.Fatalf("after confirming: %q", f)
	}
	if c, err := e.node.Call(t.Context(), tenant, live.ID); err != nil || c.Review.Status != call.Fraud || c.Review.FraudType != "account_takeover" {
		t.Fatalf("stored review %+v, %v", c.Review, err)
	}

	// The next call from that number is blocked, and shows so in the feed.
	run("feed again", chromedp.Navigate(url+"/console/calls"), chromedp.WaitVisible(css("#feed")))
	next := e.screen(fraudster)
	if next.Verdict.Action != call.Block {
		t.Fatalf("next call from the number: %s", next.Verdict.Action)
	}
	run("blocked call live", chromedp.WaitVisible(css("#call-"+next.ID)))
	if a := text("#call-" + next.ID + " .badge"); a != "block" {
		t.Fatalf("feed shows %q for the next call", a)
	}

	// A form post without the session's CSRF token is refused.
	status := eval(fmt.Sprintf(`fetch("/console/calls/%s/label", {method: "POST", body: new URLSearchParams({label: "genuine", csrf: "forged"})}).then(r => r.status)`, live.ID))
	if status != float64(403) {
		t.Fatalf("forged form: status %v, want 403", status)
	}
	if c, _ := e.node.Call(t.Context(), tenant, live.ID); c.Review.Status != call.Fraud {
		t.Fatalf("a forged form changed the review to %s", c.Review.Status)
	}

	run("overview", chromedp.Navigate(url+"/console/overview"), chromedp.WaitVisible(css("svg.chart")),
		accessible(t, "overview"), shot(t, dir, "overview"))
	if n := eval(`document.querySelectorAll("svg.chart").length`); n != float64(5) {
		t.Fatalf("%v charts on the overview, want 5", n)
	}

	// An analyst cannot open the audit log.
	run("analyst on the audit log", chromedp.Navigate(url+"/console/audit"), chromedp.WaitVisible(css("h1")), accessible(t, "forbidden"))
	if body := text("main"); !strings.Contains(body, "may not open") {
		t.Fatalf("analyst on the audit log sees %q", body)
	}

	// The auditor sees the feed masked, no unmask button, and verifies the
	// audit chain.
	run("sign out", chromedp.Navigate(url+"/console/calls"), chromedp.WaitVisible(css("#feed")),
		chromedp.Click(css(`form[action="/console/signout"] button`)), chromedp.WaitVisible(css("#tenant")))
	// An auditor lands on the audit log (wait for it: navigating on at
	// once would abort the sign-in's redirect).
	run("auditor", signIn("audrey"), chromedp.WaitVisible(css("#verify")),
		chromedp.Navigate(url+"/console/calls"), chromedp.WaitVisible(css("#call-"+next.ID)))
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(css("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, fraudster[3:]) || strings.Contains(html, "form class=\"unmask\"") || strings.Contains(html, `class="unmask"`) {
		t.Fatal("the auditor's feed shows the number or an unmask button")
	}
	run("audit log", chromedp.Navigate(url+"/console/audit"), chromedp.WaitVisible(css("#verify")), accessible(t, "audit"),
		tabEnter("#verify"), chromedp.WaitVisible(css("#verify-result")), shot(t, dir, "audit"))
	if r := text("#verify-result"); !strings.Contains(r, "Chain verified") {
		t.Fatalf("verification: %q", r)
	}
	if body := text("main table"); !strings.Contains(body, "user:alice") || !strings.Contains(body, "label.write") {
		t.Fatal("the audit log does not show alice's label")
	}
}
