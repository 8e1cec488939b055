"""Settings passed through a wrapper to the method it builds.

A hook or a wrapper module (``P3BHook``, ``ARTHook``, ``VPPBackbone``) takes
the keyword arguments of its method (``P3BPruner``, ``ARTController``,
``VideoPatchPruner``) as ``**kwargs`` and hands them on unchanged, as
mmengine's ``EMAHook`` does with its averaging model: every default is
defined once, in the method's signature. These functions check the names
before anything is built (an error names the wrapper, the unknown keys and
the allowed ones) and read the method's defaults where a wrapper must check
a value early.
"""
import functools
import inspect
from typing import Any, Callable, Dict, Iterable, Mapping

_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY)


def method_parameters(method: Callable,
                      derived: Iterable[str] = ()) -> Dict[str, Any]:
    """The keyword parameters of ``method`` (a class: its ``__init__``)
    that a user may set through a wrapper, name -> default
    (``inspect.Parameter.empty`` when required).

    A class whose ``__init__`` passes ``**kwargs`` on to its base takes the
    base's parameters too (followed along the MRO); a
    ``functools.partial`` of a class is read as that class with the
    partial's keywords as defaults.

    Args:
        method (callable): The class or function the wrapper builds.
        derived (Iterable[str]): Parameters the wrapper fills itself (e.g.
            the model, the widths read from the backbone); not settable.
    """
    bound: Dict[str, Any] = {}
    if isinstance(method, functools.partial):
        bound = dict(method.keywords)
        method = method.func
    if inspect.isclass(method):
        functions = [vars(c)['__init__'] for c in inspect.getmro(method)
                     if '__init__' in vars(c) and c is not object]
    else:
        functions = [method]
    found: Dict[str, Any] = {}
    for function in functions:
        params = inspect.signature(function).parameters
        for name, p in params.items():
            if p.kind in _KEYWORD and name != 'self':
                found.setdefault(name, p.default)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD
                   for p in params.values()):
            break
    found.update(bound)
    skip = set(derived)
    return {name: default for name, default in found.items()
            if name not in skip}


def check_settings(method: Callable, settings: Mapping[str, Any],
                   owner: str, derived: Iterable[str] = ()) -> None:
    """Raise ``TypeError`` naming ``owner`` if ``settings`` has a key that
    ``method`` does not take (or one the wrapper fills itself).

    Args:
        method (callable): The class or function the wrapper builds.
        settings (Mapping[str, Any]): The keyword arguments passed through.
        owner (str): The wrapper's class name (starts the message).
        derived (Iterable[str]): Parameters the wrapper fills itself.
    """
    derived = tuple(derived)
    allowed = method_parameters(method, derived)
    unknown = sorted(set(settings) - set(allowed))
    if not unknown:
        return
    name = getattr(method, '__name__', str(method))
    own = sorted(set(unknown) & set(derived))
    why = (f'; {own} are set by {owner} itself' if own else '')
    raise TypeError(f'{owner}: unknown setting(s) {unknown} for {name}'
                    f'{why}; allowed: {sorted(allowed)}')


def with_defaults(method: Callable, settings: Mapping[str, Any],
                  derived: Iterable[str] = ()) -> Dict[str, Any]:
    """``settings`` completed with the defaults of ``method``'s signature
    (required parameters without a value are left out)."""
    full = {name: default for name, default in
            method_parameters(method, derived).items()
            if default is not inspect.Parameter.empty}
    full.update(settings)
    return full
