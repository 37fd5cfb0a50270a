"""What differs between the five Cisco OS families: prompts, messages, pager command.

The shell is one state machine; a ``Platform`` supplies the strings it prints so
that each OS looks like the real thing to Unicon's prompt patterns and to people.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    """Per-OS strings and rules.

    Prompt templates take ``{hostname}`` and, for config mode, ``{submode}``
    (``config``, ``config-if``, ...).  ``privileged_login`` is ``None`` when the
    start mode depends on whether an enable password is set (IOS, IOS-XE).
    """

    os: str
    user_prompt: str
    privileged_prompt: str
    config_prompt: str
    privileged_login: bool | None
    invalid_input: str
    enable_denied: str
    enable_always_asks: bool
    pager_keyword: str

    def prompt(self, hostname: str, mode: str, submode: str = "config") -> str:
        """The prompt for ``mode`` (``exec``, ``privileged`` or ``config``)."""
        if mode == "exec":
            template = self.user_prompt
        elif mode == "privileged":
            template = self.privileged_prompt
        else:
            template = self.config_prompt
        return template.replace("{hostname}", hostname).replace("{submode}", submode)

    def starts_privileged(self, enable_password: str | None) -> bool:
        """Whether a login lands in ``#`` (IOS does when no enable password is set)."""
        if self.privileged_login is None:
            return enable_password is None
        return self.privileged_login


_IOS_INVALID = "% Invalid input detected at '^' marker."

PLATFORMS: dict[str, Platform] = {
    "ios": Platform(
        os="ios",
        user_prompt="{hostname}>",
        privileged_prompt="{hostname}#",
        config_prompt="{hostname}({submode})#",
        privileged_login=None,
        invalid_input=_IOS_INVALID,
        enable_denied="% Access denied",
        enable_always_asks=False,
        pager_keyword="length",
    ),
    "iosxe": Platform(
        os="iosxe",
        user_prompt="{hostname}>",
        privileged_prompt="{hostname}#",
        config_prompt="{hostname}({submode})#",
        privileged_login=None,
        invalid_input=_IOS_INVALID,
        enable_denied="% Access denied",
        enable_always_asks=False,
        pager_keyword="length",
    ),
    "nxos": Platform(
        os="nxos",
        user_prompt="{hostname}# ",
        privileged_prompt="{hostname}# ",
        config_prompt="{hostname}({submode})# ",
        privileged_login=True,
        invalid_input="% Invalid command at '^' marker.",
        enable_denied="% Access denied",
        enable_always_asks=False,
        pager_keyword="length",
    ),
    "iosxr": Platform(
        os="iosxr",
        user_prompt="RP/0/RP0/CPU0:{hostname}#",
        privileged_prompt="RP/0/RP0/CPU0:{hostname}#",
        config_prompt="RP/0/RP0/CPU0:{hostname}({submode})#",
        privileged_login=True,
        invalid_input=_IOS_INVALID,
        enable_denied="% Access denied",
        enable_always_asks=False,
        pager_keyword="length",
    ),
    "asa": Platform(
        os="asa",
        user_prompt="{hostname}> ",
        privileged_prompt="{hostname}# ",
        config_prompt="{hostname}({submode})# ",
        privileged_login=False,
        invalid_input="ERROR: % Invalid input detected at '^' marker.",
        enable_denied="% Invalid password",
        enable_always_asks=True,
        pager_keyword="pager",
    ),
}
