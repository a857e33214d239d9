"""`python -m brainlib` is the same as the `brainlib` console script."""
from brainlib.cli import main

raise SystemExit(main())
