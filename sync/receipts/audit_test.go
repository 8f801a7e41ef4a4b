package receipts

import (
	"context"
	"strings"
	"testing"
)

// auditOf reads the whole ledger into an audit.
func auditOf(t *testing.T, l *testLedger) *Audit {
	t.Helper()
	a := NewAudit(l.Box())
	if err := l.Range(context.Background(), 0, 0, func(s Signed) error { a.Record(s); return nil }); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuditFindsPlantedPII(t *testing.T) {
	l := openTest(t, nil)
	ctx := context.Background()
	appendN(t, l, 9) // A-0001..A-0009, buyer "Sam R."
	yes := true
	o := order(10)
	o.Discreet = &yes
	o.Buyer = &Buyer{Name: "Dana Quill", Phone: "+49 151 0000000", Email: "dana@example.com"}
	disc, _, err := l.Append(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(disc.Record, "Dana") || strings.Contains(disc.Record, "dana@") || strings.Contains(disc.Record, "+49") {
		t.Fatalf("the discreet record keeps the buyer: %s", disc.Record)
	}
	dr, _ := disc.Decode()
	a := auditOf(t, l)
	if a.Sales != 10 || a.Discreet != 1 || len(a.Findings) != 0 {
		t.Fatalf("clean ledger: %d sales, %d discreet, findings %v", a.Sales, a.Discreet, a.Findings)
	}
	log := strings.Join([]string{
		`time=2026-12-02T14:32:03.509Z level=INFO msg="order handed over" part=receipts sale=10 order=A-0010 by="crew page" seq=11`,
		`time=2026-12-02T14:32:03.510Z level=INFO msg="sale" order=A-0001 buyer.name="Sam R."`,   // not discreet: allowed
		`time=2026-12-02T14:32:03.511Z level=INFO msg="sale" order=A-00100 buyer.name="Someone"`, // another order
		`{"time":"2026-12-02T14:32:03.512Z","level":"INFO","msg":"new receipt","receipt":{"buyer":{"token":"` + dr.Buyer.Token + `"}}}`,
		`time=2026-12-02T14:32:04.000Z level=DEBUG msg="sale" order=A-0010 buyer.name="Dana Quill"`, // planted
		`{"msg":"retry","client_id":"pos1-0010","body":"call +49 151 0000000"}`,                     // planted
		`time=2026-12-02T14:32:05.000Z level=WARN msg="bad order" err="x" order="{\"discreet\":true,\"buyer\":{\"email\":\"x@y.org\"}}"`,
	}, "\n")
	if err := a.Log("agent.log", strings.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range a.Findings {
		got = append(got, f.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`agent.log:5: discreet sale 10 (order A-0010): the log line holds a buyer field buyer.name="Da********" (10 characters)`,
		`agent.log:6: discreet sale 10 (order A-0010): the log line holds a phone number "+4********" (15 characters)`,
		`agent.log:7: a discreet order: the log line holds a buyer field email="x@*`,
		`agent.log:7: a discreet order: the log line holds an email address "x@*****" (7 characters)`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no finding %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "Dana") || strings.Contains(all, "agent.log:1:") || strings.Contains(all, "agent.log:2:") || strings.Contains(all, "agent.log:3:") || strings.Contains(all, "agent.log:4:") {
		t.Errorf("findings print PII or flag clean lines:\n%s", all)
	}
	if a.Lines != 7 {
		t.Errorf("%d lines read", a.Lines)
	}
}

// A discreet record that kept the buyer beside the token (a broken
// writer) is found in the ledger itself.
func TestAuditFindsPIIInARecord(t *testing.T) {
	a := NewAudit("box1")
	a.Record(Signed{Seq: 4, Record: `{"v":1,"type":"sale","box":"box1","seq":4,"order":"A-4 dana@example.com","client_id":"c4","items":[{"sku":"TEE","qty":1,"price":1}],"total":1,"currency":"EUR","pay":"card","buyer":{"name":"Dana","token":"AAAAAAAAAAAAAAAAAAAAAAAAAA"}}`})
	if a.Discreet != 1 || len(a.Findings) != 2 {
		t.Fatalf("findings %v", a.Findings)
	}
}

func TestContainsWord(t *testing.T) {
	for _, c := range []struct {
		s, id string
		want  bool
	}{
		{"order=A-1 x", "A-1", true}, {"order=A-10", "A-1", false}, {"xA-1", "A-1", false},
		{`"order":"A-1"`, "A-1", true}, {"A-10 A-1", "A-1", true}, {"", "A-1", false}, {"é A-1é", "A-1", false},
	} {
		if got := containsWord(c.s, c.id); got != c.want {
			t.Errorf("containsWord(%q, %q) = %v", c.s, c.id, got)
		}
	}
}

// FuzzAuditLine: any log line is read without a panic, and a finding
// never quotes more than two characters of what it found.
func FuzzAuditLine(f *testing.F) {
	f.Add(`time=x msg="sale" order=A-0010 buyer.name="Dana Quill"`)
	f.Add(`{"discreet":true,"buyer":{"name":"Dana","phone":"+49 151 000000"}}`)
	f.Add(`order=A-0010 email=a@b.cd`)
	f.Fuzz(func(t *testing.T, line string) {
		a := NewAudit("box1")
		a.ids["A-0010"] = OrderRef{Seq: 10, Order: "A-0010"}
		a.Line("f:1", line)
		for _, fd := range a.Findings {
			if !strings.Contains(fd.What, "characters)") {
				t.Fatalf("finding without a masked value: %s", fd.What)
			}
		}
	})
}
