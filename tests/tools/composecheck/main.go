// composecheck loads a compose file the way docker compose does, with
// compose-go (the compose specification's reference loader, which docker
// compose itself uses): schema validation, interpolation, normalisation
// and the consistency checks (depends_on naming a defined service, ...).
// It prints the loaded project as JSON on stdout for a test to inspect,
// or the loader's error on stderr with exit 1.
//
//	composecheck FILE
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck FILE")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions([]string{os.Args[1]}, cli.WithOsEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}
