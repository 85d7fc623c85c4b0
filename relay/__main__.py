"""`python -m relay` is `porch`."""

from relay.cli.main import main

main()
