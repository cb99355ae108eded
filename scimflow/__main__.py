"""`python -m scimflow` is the `scimflow` command."""

from scimflow.ops.cli import main

raise SystemExit(main())
