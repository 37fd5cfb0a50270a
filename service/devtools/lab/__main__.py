"""``python -m service.devtools.lab``: the lab without the project's top-level CLI."""

from service.devtools.lab.cli import main

raise SystemExit(main())
