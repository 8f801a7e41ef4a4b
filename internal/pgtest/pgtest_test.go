package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartStop(t *testing.T) {
	ctx := context.Background()
	c, err := Start(ctx, Settings{"synchronous_commit": "on"})
	if err != nil {
		t.Fatal(err)
	}
	url := c.NewDB(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	var n int
	var addr string
	err = conn.QueryRow(ctx, `SELECT 1 + 1, current_setting('listen_addresses')`).Scan(&n, &addr)
	conn.Close(ctx)
	if err != nil || n != 2 || addr != "127.0.0.1" {
		t.Fatalf("%d %q %v", n, addr, err)
	}
	if cpu, err := c.CPU(); err != nil || cpu < 0 {
		t.Fatalf("cpu %v %v", cpu, err)
	}
	c.Stop()
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Fatalf("cluster dir left behind: %v", err)
	}
	if _, err := pgx.Connect(ctx, url); err == nil {
		t.Fatal("server still answers after Stop")
	}
}
