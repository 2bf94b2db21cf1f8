package sipfront

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestPathsAgree feeds every torture message, every seed message and the
// committed fuzz corpus to the three ways a request can be read: the UDP
// path as served (the fast path when it takes the message), the UDP path
// forced through sipgo's parser, and TCP through sipgo's transport; each
// on its own server (its own answer cache) over the same deterministic
// screener. The answers must agree: same status, X-Ringfence-Action and
// To-tag. A message sipgo's stream parser cannot frame has no TCP answer
// to compare (see TestTorture).
func TestPathsAgree(t *testing.T) {
	inputs := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(tortureDir, "rfc*", "*.dat"))
	for _, f := range files {
		inputs[f], _ = os.ReadFile(f)
	}
	for i, m := range seedMessages() {
		inputs["seed"+strconv.Itoa(i)] = []byte(m)
	}
	corpus, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
	for _, f := range corpus {
		if b, ok := corpusEntry(t, f); ok {
			inputs[f] = b
		}
	}

	fast, slow := fuzzServer(t), fuzzServer(t)
	cfg := fuzzServer(t).cfg
	cfg.UDP, cfg.TCP = "", "127.0.0.1:0"
	stream := startSIP(t, cfg, detScreener())
	tookFast, compared := 0, 0
	for name, b := range inputs {
		var r request
		if fast.scan(b, &r) {
			tookFast++
		}
		a1 := udpAnswer(t, fast, b, true)
		a2 := udpAnswer(t, slow, b, false)
		if a1 != a2 {
			t.Errorf("%s: fast path %q, sipgo path %q", name, a1, a2)
		}
		probe := strings.Replace(invite{method: "OPTIONS", callID: "probe-" + name}.String(), "/UDP", "/TCP", 1)
		answers, _ := streamAnswers(t, stream.TCPAddr(), b, probe, "probe-"+name)
		if len(answers) == 0 {
			continue
		}
		compared++
		if a3 := summary(answers[0]); a3 != a1 {
			t.Errorf("%s: UDP %q, TCP %q", name, a1, a3)
		}
	}
	t.Logf("%d inputs, %d taken by the fast path, %d compared with TCP", len(inputs), tookFast, compared)
	if tookFast == 0 || compared == 0 {
		t.Error("nothing compared")
	}
}

// udpAnswer answers b on the datagram path and summarises the answer.
func udpAnswer(t *testing.T, s *Server, b []byte, fast bool) string {
	var r request
	var w reply
	if !s.answerDatagram(&r, &w, b, fuzzSource, false, fast) {
		return "-"
	}
	m, err := answerParser.ParseSIP(w.b)
	if err != nil {
		t.Fatalf("answer does not parse: %v\n%s", err, w.b)
	}
	return summary(m.(*sip.Response))
}

func summary(res *sip.Response) string {
	return strconv.Itoa(res.StatusCode) + " " + header(res, "X-Ringfence-Action") + " tag=" + toTag(res)
}

// corpusEntry reads a file of the fuzz corpus ("go test fuzz v1" and one
// []byte literal).
func corpusEntry(t *testing.T, file string) ([]byte, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, false
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		return nil, false
	}
	lit := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(lines[1]), "[]byte("), ")")
	s, err := strconv.Unquote(lit)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return nil, false
	}
	return []byte(s), true
}
