package console

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/store"
)

// TestBrowserRights drives the privacy, consortium and archive pages in
// headless Chromium over a real node: a privacy officer opens an access
// case, confirms the requester's identity and fulfils it; an analyst sees
// the consortium membership; a compliance officer searches the archive
// with a reason and opens a recording. Every page passes the
// accessibility check; with -update it writes privacy.png,
// consortium.png and archive.png to docs/screenshots.
func TestBrowserRights(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	e := newRightsEnv(t, Config{})
	const subject = "+447700900246"
	e.screen(subject)
	if err := e.node.JoinConsortium(as(tenant), tenant, rightsTerms); err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.ReportFraud(as(tenant), tenant, node.ReportRequest{Number: "+447700900135", FraudType: "impersonation", Evidence: "ticket-4"}); err != nil {
		t.Fatal(err)
	}
	_, recID, _, _ := archiveFixture(t, e)

	b := openBrowser(t, exe)
	dir, base := b.dir, e.srv.URL
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	run, text := b.run, b.text
	ctx := b.ctx
	signIn := func(r call.Role, landing string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(base+"/console/signin"),
			chromedp.WaitVisible(css("#tenant")),
			chromedp.SendKeys(css("#tenant"), tenant),
			chromedp.SendKeys(css("#user"), userOf(r)),
			chromedp.SendKeys(css("#password"), password),
			tabEnter(`form[action="/console/signin"] button[type=submit]`),
			chromedp.WaitVisible(css(landing)),
		)
	}
	signOut := chromedp.Steps(chromedp.Click(css(`form[action="/console/signout"] button`)), chromedp.WaitVisible(css("#tenant")))

	// A privacy officer opens an access case, confirms identity and fulfils it.
	run("privacy officer", signIn(call.PrivacyOfficer, "#feed"),
		chromedp.Navigate(base+"/console/privacy"), chromedp.WaitVisible(css("#open-case")), accessible(t, "rights cases"))
	run("open a case", chromedp.SetValue(css("#c-type"), "access"), chromedp.SendKeys(css("#c-number"), subject),
		tabEnter(`#open-case button[type=submit]`), chromedp.WaitVisible(css("#confirm-form")), accessible(t, "case"))
	if n := text("#subject-number"); strings.Contains(n, subject[3:]) || !strings.HasSuffix(n, "246") {
		t.Fatalf("the case page shows the number %q: want it masked", n)
	}
	run("confirm identity", tabEnter(`#confirm-form button[type=submit]`), chromedp.WaitVisible(css("#fulfil-form")))
	if b := text("#deadline .badge"); !strings.HasSuffix(b, "days left") {
		t.Fatalf("deadline badge after confirming identity: %q", b)
	}
	run("fulfil", tabEnter(`#fulfil-form button[type=submit]`), chromedp.WaitVisible(css("#receipt")),
		accessible(t, "fulfilled case"), shot(t, dir, "privacy"))
	if f := text(".flash"); !strings.Contains(f, "fulfilled") {
		t.Fatalf("after fulfilling: %q", f)
	}
	cs, err := e.node.Cases(as(tenant), tenant, storeCases())
	if err != nil || len(cs) != 1 || cs[0].Status != privacy.Completed || cs[0].Package == nil && cs[0].Receipt == nil {
		t.Fatalf("stored cases %+v, %v", cs, err)
	}
	run("unmask the subject", tabEnter("#unmask-case"), chromedp.WaitVisible(css("#subject-number")))
	if n := text("#subject-number"); n != subject {
		t.Fatalf("unmasked number %q", n)
	}
	run("holds", chromedp.Navigate(base+"/console/privacy/holds"), chromedp.WaitVisible(css("#hold-form")), accessible(t, "holds"))
	run("retention", chromedp.Navigate(base+"/console/privacy/retention"), chromedp.WaitVisible(css("#retention")), accessible(t, "retention"))
	run("sign out", signOut)

	// An analyst sees the consortium membership and their report, masked.
	run("consortium", signIn(call.Analyst, "#feed"), chromedp.Navigate(base+"/console/consortium"),
		chromedp.WaitVisible(css("#membership")), accessible(t, "consortium"), shot(t, dir, "consortium"))
	if m := text("#membership"); !strings.Contains(m, rightsTerms) || !strings.Contains(m, "Member since") {
		t.Fatalf("membership: %q", m)
	}
	if r := text("#reports"); strings.Contains(r, "900135") || !strings.Contains(r, "impersonation") {
		t.Fatalf("reports: %q", r)
	}
	run("analyst on the archive", chromedp.Navigate(base+"/console/archive"), chromedp.WaitVisible(css("h1")))
	if body := text("main"); !strings.Contains(body, "may not open") {
		t.Fatalf("an analyst on the archive sees %q", body)
	}
	run("sign out", signOut)

	// A compliance officer searches with a reason and opens a recording.
	const reason = "FCA review of desk seven"
	run("compliance officer", signIn(call.ComplianceOfficer, `body[data-page="archive"]`),
		chromedp.Navigate(base+"/console/archive"), chromedp.WaitVisible(css("#archive-search")), accessible(t, "archive"))
	run("search without a reason", chromedp.SendKeys(css("#a-user"), "trader-7"), tabEnter("#a-search"),
		chromedp.WaitVisible(css("#a-reason-err")))
	run("search", chromedp.SendKeys(css("#a-reason"), reason), tabEnter("#a-search"),
		chromedp.WaitVisible(css("#item-"+recID)), accessible(t, "archive results"), shot(t, dir, "archive"))
	run("open the recording", tabEnter("#item-"+recID+" a"), chromedp.WaitVisible(css("#player")), accessible(t, "archive item"))
	if n := len(auditDetails(e, "archive.view", "user:"+userOf(call.ComplianceOfficer))); n != 1 {
		t.Fatalf("archive.view entries: %d, want 1", n)
	}
	dur, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => { const a = document.querySelector("#player"); const r = await fetch(a.src, {headers: {Range: "bytes=0-3"}}); return r.status + " " + (await r.text()); })()`, chromedp.EvalAwaitPromise))
	if err != nil || dur != "206 RIFF" {
		t.Fatalf("fetching the player's source: %q, %v", dur, err)
	}
}

// storeCases is the filter for every case.
func storeCases() store.CaseFilter { return store.CaseFilter{} }
