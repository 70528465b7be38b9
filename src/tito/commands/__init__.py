"""One typer sub-app per command group; `tito.cli` mounts them."""
