"""Where command outputs come from: built-in templates plus an optional folder.

Built-in outputs live in ``outputs/<os>/<command_slug>.txt`` next to this module
and carry a ``{hostname}`` placeholder, so one template serves every device of an
OS.  A device may also get a folder of outputs; it is read in two layouts:

* the shared device-outputs layout, ``<os>/<slug>/<NN>/output.txt`` with a
  ``meta.json`` whose ``command`` is the exact command (served byte-for-byte,
  never templated);
* flat templates, ``<slug>.txt`` or ``<os>/<slug>.txt``, like the built-ins.

Folder outputs win over built-ins, so tests can pin any command's text while the
login commands (``show version``) keep working.  A device's ``large_outputs``
(generated text of an exact size, see ``service.devtools.lab.generated``) win over both.
``device_output(device, command)`` returns the exact text a device serves for a
command (before ``\r\n`` conversion, paging and pipes), so a test can compute
what it expects without SSH.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from service.devtools.lab.generated import GENERATED_KINDS, generated_output
from service.devtools.lab.platforms import PLATFORMS
from service.devtools.lab.spec import DeviceSpec, LargeOutput

__all__ = [
    "GENERATED_KINDS",
    "OutputStore",
    "StoredOutput",
    "device_output",
    "generated_output",
    "large_output_text",
    "normalise_command",
]

BUILTIN_DIR = Path(__file__).parent / "outputs"
HOSTNAME_PLACEHOLDER = "{hostname}"


def normalise_command(command: str) -> str:
    """Lower-case and collapse whitespace: how the shell compares commands."""
    return " ".join(command.lower().split())


def slug_to_command(slug: str) -> str:
    """``show_ip_interface_brief`` -> ``show ip interface brief``."""
    return slug.replace("_", " ")


@dataclass(frozen=True)
class StoredOutput:
    """One output and whether its text is a template (needs ``{hostname}``)."""

    command: str
    text: str
    template: bool

    def render(self, hostname: str) -> str:
        """Fill the hostname into templates; folder samples stay byte-for-byte."""
        if self.template:
            return self.text.replace(HOSTNAME_PLACEHOLDER, hostname)
        return self.text


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


def _read_flat(folder: Path) -> dict[str, StoredOutput]:
    found: dict[str, StoredOutput] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.txt")):
        if path.name == "output.txt":
            continue
        command = slug_to_command(path.stem)
        found[normalise_command(command)] = StoredOutput(command, _read_text(path), True)
    return found


def _read_samples(folder: Path, os_name: str) -> dict[str, StoredOutput]:
    """Read every ``meta.json`` + ``output.txt`` pair for ``os_name``; first sample wins."""
    found: dict[str, StoredOutput] = {}
    for meta_path in sorted(folder.rglob("meta.json")):
        output_path = meta_path.with_name("output.txt")
        if not output_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(meta, dict) or not isinstance(meta.get("command"), str):
            continue
        if meta.get("os", os_name) != os_name:
            continue
        key = normalise_command(meta["command"])
        if key not in found:
            found[key] = StoredOutput(meta["command"], _read_text(output_path), False)
    return found


@cache
def builtin_outputs(os_name: str) -> dict[str, StoredOutput]:
    """The templates shipped with the lab for one OS (read once per process)."""
    return _read_flat(BUILTIN_DIR / os_name)


@cache
def folder_outputs(folder: Path, os_name: str) -> dict[str, StoredOutput]:
    """Outputs from a user folder for one OS (read once per process and folder)."""
    found = _read_flat(folder)
    found.update(_read_flat(folder / os_name))
    found.update(_read_samples(folder, os_name))
    return found


def large_output_text(device: DeviceSpec, large: LargeOutput) -> str:
    """The generated text ``device`` serves for ``large`` (its prompt line is the ``#`` prompt)."""
    prompt = PLATFORMS[device.os].prompt(device.name, "privileged") if large.prompt_line else None
    return generated_output(large.kind, large.size, device.name, prompt_line=prompt)


def generated_for(device: DeviceSpec) -> dict[str, StoredOutput]:
    """A device's ``large_outputs`` as store entries (text generated once, here)."""
    return {
        normalise_command(large.command): StoredOutput(large.command, large_output_text(device, large), False)
        for large in device.large_outputs
    }


def device_output(device: DeviceSpec, command: str) -> str | None:
    """The exact text ``device`` answers to ``command`` (``\n`` endings), ``None`` if unknown.

    This is what the shell serves before it turns line endings into ``\r\n``
    and applies paging and ``|`` filters.
    """
    stored = OutputStore.for_device(device).lookup(command)
    return None if stored is None else stored.render(device.name)


class OutputStore:
    """The commands one device knows, keyed by normalised command text."""

    def __init__(
        self,
        os_name: str,
        outputs_dir: Path | None,
        generated: dict[str, StoredOutput] | None = None,
        sequences: tuple[tuple[str, tuple[str, ...]], ...] = (),
    ) -> None:
        self._sequences = {normalise_command(command): texts for command, texts in sequences}
        self._runs: dict[str, int] = {}
        outputs = dict(builtin_outputs(os_name))
        if outputs_dir is not None:
            outputs.update(folder_outputs(outputs_dir.resolve(), os_name))
        outputs.update(generated or {})
        self._outputs = outputs
        self._words = {key: key.split() for key in outputs}

    @classmethod
    def for_device(cls, device: DeviceSpec) -> OutputStore:
        """Built-ins, the device's folder and its generated outputs."""
        return cls(device.os, device.outputs_dir, generated_for(device), device.sequence_outputs)

    def commands(self) -> list[str]:
        """Normalised commands this device answers."""
        return list(self._outputs)

    def next_in_sequence(self, line: str) -> StoredOutput | None:
        """The next text of the line's ``sequence_outputs`` (the last one once all were served);
        counted per store, which the server keeps for the device's whole life."""
        key = normalise_command(line)
        texts = self._sequences.get(key)
        if texts is None:
            return None
        run = self._runs.get(key, 0)
        self._runs[key] = run + 1
        return StoredOutput(line, texts[min(run, len(texts) - 1)], template=False)

    def exact(self, command: str) -> StoredOutput | None:
        """Only an exact (normalised) match; used for whole lines with a pipe."""
        return self._outputs.get(normalise_command(command))

    def lookup(self, command: str) -> StoredOutput | None:
        """Exact (normalised) match first, then a unique word-prefix match (``sh ver``)."""
        key = normalise_command(command)
        exact = self._outputs.get(key)
        if exact is not None:
            return exact
        words = key.split()
        matches = [
            name
            for name, known in self._words.items()
            if len(known) == len(words) and all(k.startswith(w) for k, w in zip(known, words, strict=True))
        ]
        if len(matches) == 1:
            return self._outputs[matches[0]]
        return None

    def matched_words(self, command: str) -> int:
        """How many leading words of ``command`` some known command accepts.

        The shell puts the ``^`` marker under the first word no command accepts,
        as a device's parser does.
        """
        words = normalise_command(command).split()
        best = 0
        for known in self._words.values():
            count = 0
            for typed, word in zip(words, known, strict=False):
                if not word.startswith(typed):
                    break
                count += 1
            best = max(best, count)
        return best
