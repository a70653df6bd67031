// compose-config loads a Compose file as `docker compose config` does, with
// compose-spec/compose-go (the loader inside Docker Compose v2): the Compose
// Specification's JSON Schema, interpolation, extends and merges, then its semantic
// checks (dependencies exist, no cycles, volumes and networks declared); and that the
// files it binds and builds from exist. It prints the services it found, or the error,
// and exits non-zero on one.
//
//	go run . -f deploy/docker-compose.yml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	file := flag.String("f", "docker-compose.yml", "the Compose file")
	flag.Parse()
	abs, err := filepath.Abs(*file)
	if err != nil {
		fail(err)
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithOsEnv,
		cli.WithName("sla-timerd"),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	// What `docker compose up` would read from this machine must be there.
	missing := 0
	for _, s := range project.Services {
		for _, v := range s.Volumes {
			if v.Type == "bind" {
				missing += exists(s.Name, "bind mount", v.Source)
			}
		}
		if s.Build != nil {
			missing += exists(s.Name, "build context", s.Build.Context)
			missing += exists(s.Name, "Dockerfile", filepath.Join(s.Build.Context, s.Build.Dockerfile))
		}
	}
	if missing > 0 {
		os.Exit(1)
	}
	names := project.ServiceNames()
	sort.Strings(names)
	fmt.Printf("%s: valid Compose file, project %q, services: %s\n", *file, project.Name, strings.Join(names, ", "))
}

func exists(service, what, path string) int {
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(os.Stderr, "compose-config: service %q: %s %s: %v\n", service, what, path, err)
		return 1
	}
	return 0
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "compose-config: %v\n", err)
	os.Exit(1)
}
