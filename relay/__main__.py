"""`python -m relay` is `porch`."""

from relay.cli import main

main()
