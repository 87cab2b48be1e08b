package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version prints the build: `xbus version`.
func version(stdout io.Writer) int {
	fmt.Fprintln(stdout, versionString())
	return 0
}

func versionString() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("xbus %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
