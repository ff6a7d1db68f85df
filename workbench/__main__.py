"""`python -m workbench` runs the CLI."""

from .cli import main

raise SystemExit(main())
