// Command render writes RELIABILITY.md from the figures the resilience tests recorded (the
// JSON-lines file named by INFUSE_RELIABILITY_OUT during `make reliability`).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/ccr-infuse/infuse/internal/reliability"
)

func main() {
	in := flag.String("in", "", "the JSON-lines figures file the tests wrote")
	out := flag.String("out", "RELIABILITY.md", "the document to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintf(os.Stderr, "render: %v\n", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	figs, err := reliability.Read(f)
	if err != nil {
		return err
	}
	if len(figs) == 0 {
		return fmt.Errorf("%s holds no figures: did the tests run with %s set?", in, reliability.EnvOut)
	}
	var b bytes.Buffer
	if err := reliability.Render(&b, figs); err != nil {
		return err
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}
