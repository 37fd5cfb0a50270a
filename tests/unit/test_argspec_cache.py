"""The getfullargspec cache answers exactly as inspect does, and cannot be poisoned."""

from __future__ import annotations

import functools
import inspect

import pytest

from service.device import argspec_cache
from service.device.argspec_cache import cached_getfullargspec

pytestmark = pytest.mark.unit


def action(spawn: object, context: object, *args: object, retries: int = 3, **kwargs: object) -> None:
    """A dialog callback's shape."""


class Handler:
    def on_prompt(self, spawn: object, session: object = None) -> None:
        """A bound-method callback."""

    def __call__(self, spawn: object) -> None:
        """A callable object."""


def real(func: object) -> inspect.FullArgSpec:
    return argspec_cache._real(func)


@pytest.mark.parametrize(
    "func",
    [action, Handler().on_prompt, Handler(), functools.partial(action, retries=1), lambda spawn: None],
    ids=["function", "bound-method", "callable-object", "partial", "lambda"],
)
def test_same_answer_as_inspect(func: object) -> None:
    assert cached_getfullargspec(func) == real(func)


def test_functions_are_cached_and_other_callables_are_not() -> None:
    before = argspec_cache.hits()
    for _ in range(3):
        cached_getfullargspec(action)
    hits, misses = argspec_cache.hits()
    assert hits - before[0] >= 2 and misses - before[1] <= 1
    bound = Handler().on_prompt
    held = object()

    def closure(spawn: object) -> object:
        return held

    before = argspec_cache.hits()
    cached_getfullargspec(bound)
    cached_getfullargspec(Handler())
    cached_getfullargspec(closure)
    cached_getfullargspec(closure)
    assert argspec_cache.hits() == before  # no instance or closure is kept alive by the cache


def test_a_caller_cannot_change_the_cached_answer() -> None:
    first = cached_getfullargspec(action)
    first.args.append("mutated")
    first.kwonlyargs.clear()
    assert first.kwonlydefaults is not None and first.annotations is not None
    first.kwonlydefaults["retries"] = 99
    first.annotations.clear()
    assert cached_getfullargspec(action) == real(action)


def test_what_inspect_refuses_is_still_refused() -> None:
    with pytest.raises(TypeError):
        cached_getfullargspec(42)
