package main

import "flag"

// flagSet is a flag.FlagSet; a named type so that helpers can return it with
// their extra flags registered.
type flagSet struct{ *flag.FlagSet }
