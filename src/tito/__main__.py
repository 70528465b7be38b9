"""`python -m tito` is the `tito` command."""

from tito.cli import main

main()
