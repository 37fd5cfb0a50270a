"""Plain domain models and policy: no I/O, no third-party imports but msgspec."""
