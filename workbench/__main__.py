"""`python -m workbench` runs the CLI."""

from .cli import run

run()
