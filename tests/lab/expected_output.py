"""What a lab device's output should look like after Unicon has read it."""

from __future__ import annotations

from service.devtools.lab.outputs import builtin_outputs


def lines(text: str) -> list[str]:
    """Lines without trailing blanks; Unicon drops the blank lines before the prompt."""
    return [line.rstrip() for line in text.replace("\r", "").strip().splitlines()]


def expected(os_name: str, command: str, hostname: str) -> list[str]:
    """The lines of a built-in lab output, rendered for ``hostname``."""
    return lines(builtin_outputs(os_name)[command].render(hostname))
