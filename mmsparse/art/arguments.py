"""Argument checks of the pruning hooks, with errors that name their owner.

The checks raise plain ``ValueError``/``TypeError`` messages that start with
the argument's name; :func:`named_errors` puts the owner's class name in
front, so that a construction error reads ``ARTHook: eta must be > 1 ...``.
"""
import contextlib
import math
import re
from typing import Optional, Sequence


@contextlib.contextmanager
def named_errors(owner: str):
    """Prefix a ``ValueError``/``TypeError`` raised inside with ``owner: ``
    (construction errors name the class that raised them)."""
    try:
        yield
    except (ValueError, TypeError) as err:
        if str(err).startswith(f'{owner}:'):
            raise
        raise type(err)(f'{owner}: {err}') from err


def prefixed(owner: Optional[str], message: str) -> str:
    """``'owner: message'``, or the message alone without an owner."""
    return f'{owner}: {message}' if owner else message


def check_int(name: str, value, minimum: int) -> int:
    """An ``int`` (not a ``bool``) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < minimum:
        raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')
    return value


def check_optional_int(name: str, value, minimum: int) -> Optional[int]:
    """None, or an ``int`` of at least ``minimum``."""
    return None if value is None else check_int(name, value, minimum)


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise ValueError(f'{name} must be one of {tuple(choices)}, got '
                         f'{value!r}')
    return value


def check_finite_above(name: str, value, bound: float,
                       why: str = '') -> float:
    """A finite number strictly above ``bound``; ``why`` is appended to the
    message (e.g. ``' (λ grows every ART step)'``)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value)
            and value > bound):
        raise ValueError(f'{name} must be > {bound:g}{why}, got {value!r}')
    return float(value)


def check_bool(name: str, value) -> bool:
    """A ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f'{name} must be a bool, got {value!r}')
    return value


def check_patterns(name: str, value, allow_empty: bool = True,
                   none_means: str = '') -> Optional[list]:
    """None, or a list of regular expressions (strings that compile).

    Args:
        name (str): The argument's name (starts the message).
        value: The argument.
        allow_empty (bool): Accept ``[]``. Defaults to True.
        none_means (str): What None stands for, named in the message (e.g.
            ``'every weight not excluded'``). Defaults to ''.
    """
    if value is None:
        return None
    none = f'None ({none_means})' if none_means else 'None'
    non_empty = '' if allow_empty else 'non-empty '
    allowed = (f'{none} or a {non_empty}list of regular expressions '
               '(strings, re.search on parameter names)')
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(p, str) for p in value):
        raise TypeError(f'{name} must be {allowed}, got {value!r}')
    if not value and not allow_empty:
        raise ValueError(f'{name} must be {allowed}, got {value!r}')
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f'{name} must be {allowed}; {pattern!r} is not '
                             f'a valid regular expression ({err})') from err
    return list(value)
