"""`python -m callmemory.cli`: the `callmemory` command, as the tests and the summary process run it."""

from callmemory.cli import main

main()
