// Command bench measures whole paths of the agent and prints each figure
// as a JSON line {"bench":..,"metric":..,"value":..,"unit":..}.
//
//	go run ./bench NAME [flags]
//	go run ./bench list
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sort"
)

// A bench runs with its own flags (args after the name) and reports
// figures through emit.
type benchFunc func(ctx context.Context, args []string) error

var benches = map[string]benchFunc{}

func register(name string, f benchFunc) { benches[name] = f }

// Figure is one measured value.
type Figure struct {
	Bench  string  `json:"bench"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
}

// emit prints one figure as a JSON line on stdout.
func emit(bench, metric string, value float64, unit string) {
	b, _ := json.Marshal(Figure{bench, metric, value, unit})
	fmt.Println(string(b))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	names := make([]string, 0, len(benches))
	for n := range benches {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 || args[0] == "list" {
		fmt.Println("usage: go run ./bench NAME [flags]; benches:")
		for _, n := range names {
			fmt.Println("  " + n)
		}
		return nil
	}
	f, ok := benches[args[0]]
	if !ok {
		return fmt.Errorf("no bench named %q (have %v)", args[0], names)
	}
	return f(ctx, args[1:])
}
