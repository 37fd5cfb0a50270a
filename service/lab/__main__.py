"""``python -m service.lab``: the lab without the project's top-level CLI."""

from service.lab.cli import main

raise SystemExit(main())
