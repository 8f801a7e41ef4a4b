package doctor

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestRunNamesTimesOutAndSurvivesPanics(t *testing.T) {
	checks := []Check{
		{Name: "fine", Run: func(context.Context) Result { return Pass("all good") }},
		{Name: "slow", Run: func(ctx context.Context) Result {
			<-ctx.Done()
			return Failf("make it faster", "timed out: %v", ctx.Err())
		}},
		{Name: "buggy", Run: func(context.Context) Result { panic("nil map") }},
		{Name: "meh", Run: func(context.Context) Result { return Warnf("top up the paper", "paper low") }},
	}
	rs := Run(context.Background(), checks, 20*time.Millisecond)
	if len(rs) != 4 || rs[0].Name != "fine" || rs[1].Status != Fail || rs[2].Status != Fail || rs[3].Status != Warn {
		t.Fatalf("results %+v", rs)
	}
	if !strings.Contains(rs[2].Detail, "nil map") || rs[2].Name != "buggy" {
		t.Fatalf("panic result %+v", rs[2])
	}
	if Worst(rs) != Fail || Worst(rs[3:]) != Warn || Worst(nil) != OK {
		t.Fatal("Worst wrong")
	}
	var buf bytes.Buffer
	Print(&buf, rs)
	want := "ok    fine: all good\nfail  slow: timed out: context deadline exceeded\n      → make it faster\n"
	if !strings.HasPrefix(buf.String(), want) || !strings.Contains(buf.String(), "warn  meh: paper low\n      → top up the paper\n") {
		t.Fatalf("printed:\n%s", buf.String())
	}
}
