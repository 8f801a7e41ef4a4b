package receipts

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

func BenchmarkAppendParallel(b *testing.B) {
	dir := b.TempDir()
	l, err := Open(Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "k"), Box: "b", BootID: "x", Sync: SyncFunc(func() bool { return true })})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetParallelism(32)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprint("c", n.Add(1))
			o := Order{ClientID: id, Order: id, Items: []Item{{SKU: "A", Qty: 1, Price: 5}}, Total: 5, Currency: "EUR", Pay: "cash"}
			if _, _, err := l.Append(context.Background(), o); err != nil {
				b.Fatal(err)
			}
		}
	})
}
