"""Genie parsing of raw ``show`` output, with each kind of failure kept apart.

Pipes. Genie does not strip a pipe: it looks up the whole line (``get_parser``),
and some parsers declare piped commands (``show processes cpu | include {key_word}``,
``show running-config | section bgp``). The lookup is fuzzy, and for piped lines that
fuzziness is wrong. Measured with genie 26.9 on iosxe:

* ``show version | include uptime``: ``ParserNotFound``; correct.
* ``show running-config | section ospf`` matches ``... | section ospfv3``, because
  every token may be an abbreviation of the template token. After a pipe the token is
  a regular expression, not an abbreviation, so this parser gets the wrong section.
* ``show version | include operating mode`` matches ``show version {switch}
  {sw_number} {route_processor} {mode}``, with ``switch='|'``.

So a piped line is parsed only when the parser has a template that contains the pipe
itself, and the filter part of that template, once its arguments are filled in, is the
same token for token as the filter in the line. Otherwise the result is ``no_parser``.
The parser for the unpiped command never sees filtered output; the ancestor service
made that mistake.

Invocation. ``Device.parse`` does ``get_parser`` and then
``parser_class(device, context='cli').parse(output=..., **kwargs)``. We do the same
two steps ourselves for two reasons. First, the lookup is fuzzy and slow for commands
with arguments (15-30 ms each, more than most parses), and we cache its result per
``(os, line)``. Second, ``Device.parse`` treats ``show running-config`` as a request
for the device API, not a parse of the output we pass it.

Threads. The parser index, the abstraction lookup and module loading are shared
global state in Genie. One lock serialises all Genie work in this object. Measured
with 8 threads and 396 parses of the 66 corpus outputs, without the lock the results
were still correct, but a cold process took 12-16 s instead of 2.1 s, because every
thread loaded the index and ran the same slow lookups. Warm, the lock costs nothing:
parsing is CPU-bound under the GIL either way.

Prewarm. ``prewarm`` resolves each ``(os, line)``: it loads the index and the parser
modules and fills the lookup cache. In a fresh process the first ``show version``
parse then took 15-25 ms instead of 0.85-0.95 s.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from genie.conf.base import Device
from genie.libs.parser.utils.common import ParserNotFound, get_parser
from genie.metaparser.util.exceptions import SchemaEmptyParserError, SchemaError

from service.domain.models import DeviceOS, ParseOutcome, ParseStatus

# Bounded because include/section values are free text chosen by requesters.
_RESOLUTION_CACHE_SIZE = 2048


@dataclass(frozen=True, slots=True)
class _Resolution:
    """The parser Genie would use for one line, or why there is none."""

    parser_class: type[Any] | None
    kwargs: Mapping[str, str] = field(default_factory=dict)
    reason: str | None = None


class GenieOutputParser:
    """Offline Genie parsing for the pipeline; one instance is shared by all worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[DeviceOS, Any] = {}
        self._resolutions: OrderedDict[tuple[DeviceOS, str], _Resolution] = OrderedDict()

    def parse(self, os: DeviceOS, line: str, output: str) -> ParseOutcome:
        """Parse ``output`` of exactly ``line``; every failure becomes an outcome."""
        if not output.strip():
            return ParseOutcome(ParseStatus.EMPTY_OUTPUT, message="the device returned no output")
        try:
            with self._lock:
                resolution = self._resolve(os, line)
                if resolution.parser_class is None:
                    return ParseOutcome(ParseStatus.NO_PARSER, message=resolution.reason)
                parser = resolution.parser_class(self._device(os), context="cli")
                parsed = parser.parse(output=output, **resolution.kwargs)
        except SchemaEmptyParserError:
            return ParseOutcome(
                ParseStatus.EMPTY_OUTPUT, message="the parser found nothing it recognises in the output"
            )
        except SchemaError as exc:
            return ParseOutcome(
                ParseStatus.SCHEMA_ERROR,
                message=f"{type(exc).__name__}: the output does not fit the parser's schema",
            )
        except Exception as exc:  # noqa: BLE001 - a parser bug is data, never a crash
            return ParseOutcome(
                ParseStatus.PARSE_FAILED, message=f"{type(exc).__name__}: the parser failed on this output"
            )
        return ParseOutcome(ParseStatus.OK, parsed=_plain(parsed))

    def prewarm(self, pairs: Iterable[tuple[DeviceOS, str]]) -> None:
        """Load the parser index and each parser's module now, not on the first request."""
        for os, line in pairs:
            try:
                with self._lock:
                    self._resolve(os, line)
            except Exception:  # noqa: BLE001, S112 - parse() reports the same failure later
                continue

    def _device(self, os: DeviceOS) -> Any:
        device = self._devices.get(os)
        if device is None:
            device = Device(f"genie-{os.value}", os=os.value)
            device.custom["abstraction"] = {"order": ["os"]}
            self._devices[os] = device
        return device

    def _resolve(self, os: DeviceOS, line: str) -> _Resolution:
        key = (os, " ".join(line.split()))
        cached = self._resolutions.get(key)
        if cached is not None:
            self._resolutions.move_to_end(key)
            return cached
        resolution = self._lookup(os, key[1])
        self._resolutions[key] = resolution
        if len(self._resolutions) > _RESOLUTION_CACHE_SIZE:
            self._resolutions.popitem(last=False)
        return resolution

    def _lookup(self, os: DeviceOS, line: str) -> _Resolution:
        try:
            parser_class, kwargs = get_parser(line, self._device(os))
        except ParserNotFound:
            return _Resolution(None, reason=f"Genie has no parser for {line!r} on {os.value}")
        if "|" in line and not _declares_pipe(parser_class, line, kwargs):
            return _Resolution(
                None,
                reason=(
                    f"Genie has no parser for the piped command {line!r} on {os.value}; "
                    "the unpiped parser is not used on filtered output"
                ),
            )
        return _Resolution(parser_class, dict(kwargs))


def _declares_pipe(parser_class: type[Any], line: str, kwargs: Mapping[str, Any]) -> bool:
    """True when the parser declares this pipe itself, not when fuzzy matching absorbed it."""
    arguments = {name: value for name, value in kwargs.items() if name != "command"}
    if any("|" in str(value) for value in arguments.values()):
        return False
    base, _, pipe = line.partition("|")
    templates = getattr(parser_class, "cli_command", None) or []
    if isinstance(templates, str):
        templates = [templates]
    for template in templates:
        if "|" not in template:
            continue
        try:
            filled = template.format(**arguments)
        except (KeyError, IndexError):
            continue
        filled_base, _, filled_pipe = filled.partition("|")
        if filled_pipe.split() != pipe.split():
            continue
        wanted, declared = base.split(), filled_base.split()
        if len(wanted) == len(declared) and all(
            full.startswith(given) for given, full in zip(wanted, declared, strict=True)
        ):
            return True
    return False


def _plain(value: Any) -> Any:
    """Plain dicts, lists and scalars only, so any JSON encoder takes the result as is."""
    if isinstance(value, Mapping):
        return {_plain_key(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(item) for item in value), key=repr)
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def _plain_key(key: Any) -> Any:
    # msgspec encodes int keys as JSON strings, as json.dumps does; other kinds become text.
    if isinstance(key, str | int) and not isinstance(key, bool):
        return key
    return str(key)
