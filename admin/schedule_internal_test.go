package admin

import (
	"strings"
	"testing"
)

func TestBlocksHTMLEscapes(t *testing.T) {
	got := string(blocksHTML([]scheduleBlock{{ID: 7, Time: "09:00–10:30", Title: `<script>alert("x")</script>`,
		Customer: `O'Brien & Sons`, Address: `1 "Main" St`, Status: "scheduled", Primary: true, Start: 18, Len: 3, Lane: 1}}))
	for _, want := range []string{
		`<a class="sb-job at18 len3 lane1 st-scheduled primary" href="/jobs/7"`,
		`title="09:00–10:30 &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; · O&#39;Brien &amp; Sons · 1 &#34;Main&#34; St"`,
		`<span class="sb-title">&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</span>`,
		`★ primary`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
	if strings.Contains(got, "<script>") {
		t.Fatal("unescaped script")
	}
	if got := string(blocksHTML(nil)); got != `<span class="sb-free hint">No jobs</span>` {
		t.Fatalf("empty row = %s", got)
	}
}
