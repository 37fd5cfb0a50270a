"""A cache for ``inspect.getfullargspec``, which Unicon calls for every dialog statement.

Unicon builds its dialogs anew for every ``execute()`` and each ``Statement`` inspects
its action callback: ~36 ``getfullargspec`` calls per command, measured at ~40 % of the
CPU of a warm ``execute()`` (``ops/bench/argspec_cost.py``). The callbacks are a handful
of module-level functions, so the answer never changes for a given function.

Only plain and compiled (Cython) functions without a closure are cached, by identity, in
a bounded LRU; closures, bound methods, partials and callable objects go to the real
function, so the cache never keeps a connection's objects alive. Callers get a
fresh copy of the mutable parts, so nobody can change the cached answer.

Nothing is installed on import: ``install()`` (through ``service.device.prepare_process``)
does it. Unicon's compiled dialog modules bind ``getfullargspec`` when they are imported,
so ``install()`` also rebinds it in those of them already imported.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

_real: Callable[[Any], inspect.FullArgSpec] = inspect.getfullargspec
_CACHEABLE = (types.FunctionType, types.BuiltinFunctionType)
# Unicon's modules that bind ``getfullargspec`` at import (``from inspect import getfullargspec``)
_UNICON_BINDERS = ("unicon.eal.dialogs", "unicon.eal.dialog_processor")


@functools.lru_cache(maxsize=1024)
def _spec_of(func: Any) -> inspect.FullArgSpec:
    return _real(func)


def cached_getfullargspec(func: Any) -> inspect.FullArgSpec:
    cacheable = isinstance(func, _CACHEABLE) or type(func).__name__ == "cython_function_or_method"
    # a closure may be made per connection and hold it: the cache must not keep it alive
    if not cacheable or getattr(func, "__closure__", None) is not None:
        return _real(func)
    spec = _spec_of(func)
    return spec._replace(
        args=list(spec.args),
        kwonlyargs=list(spec.kwonlyargs),
        kwonlydefaults=dict(spec.kwonlydefaults) if spec.kwonlydefaults is not None else None,
        annotations=dict(spec.annotations),
    )


def install() -> None:
    """Replace ``inspect.getfullargspec`` process-wide, before or after Unicon is imported (idempotent)."""
    inspect.getfullargspec = cached_getfullargspec
    for name in _UNICON_BINDERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "getfullargspec", None) is _real:
            module.getfullargspec = cached_getfullargspec  # type: ignore[attr-defined]


def hits() -> tuple[int, int]:
    """(hits, misses) of the cache, for tests and benchmarks."""
    info = _spec_of.cache_info()
    return info.hits, info.misses
