"""Run options locked per work dir, and the one ``--cfg-options`` path.

A work dir's finished rows are skipped by their files whatever the options,
so a rerun with other options would mix rows of two settings in one report.
:class:`OptionsLock` keeps the options of the first run in
``<work>/run_options.json``; a later run with other values is refused before
any work, naming every key that differs.

``--cfg-options KEY=VALUE ...`` is parsed by mmengine's ``DictAction`` (as in
``tools/train.py``), checked against the configs (:func:`check_cfg_options`:
a key that is not there is a typo, keys the driver sets itself are refused)
and formatted back for the tools (:func:`format_option`).
"""
import json
import os.path as osp
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple)

from .store import atomic_write_json

RUN_OPTIONS = 'run_options.json'


def normalised(options: Mapping[str, Any]) -> Dict[str, Any]:
    """``options`` as they read back from JSON (tuples become lists, keys
    strings), so that saved and current options compare equal."""
    return json.loads(json.dumps(dict(options)))


def format_option(key: str, value: Any) -> str:
    """``KEY=VALUE`` that mmengine's ``DictAction`` parses back into
    ``value`` (lists as ``[a,b]``, tuples as ``(a,b)``)."""
    def fmt(v):
        if isinstance(v, list):
            return '[' + ','.join(fmt(x) for x in v) + ']'
        if isinstance(v, tuple):
            return '(' + ','.join(fmt(x) for x in v) + ')'
        return str(v)
    return f'{key}={fmt(value)}'


def describe_options(options: Mapping[str, Any]) -> str:
    """``KEY=VALUE ...`` of ``options``, '(none)' when empty."""
    return ' '.join(format_option(k, v) for k, v in options.items()) \
        or '(none)'


#: What :func:`child_of` returns for a part that is not there.
MISSING = object()


def child_of(node: Any, part: str) -> Any:
    """The child ``part`` of a config / dict node (digits index lists), or
    :data:`MISSING`."""
    if isinstance(node, (list, tuple)) and part.isdigit() \
            and int(part) < len(node):
        return node[int(part)]
    if hasattr(node, 'keys') and part in node:
        return node[part]
    return MISSING


def lookup_key(cfg: Any, key: str) -> Optional[str]:
    """Error text if the dotted ``key`` is not in ``cfg`` (a config or a
    dict; digits index lists), else None."""
    node, path = cfg, []
    for part in key.split('.'):
        node = child_of(node, part)
        if node is MISSING:
            return f'no {part!r} under {".".join(path) or "the top level"}'
        path.append(part)
    return None


def check_cfg_options(cfg_options: Mapping[str, Any],
                      configs: Mapping[str, Any],
                      reserved: Sequence[str] = (),
                      reserved_hint: str = '',
                      move: Optional[Callable[[str, str], str]] = None
                      ) -> Optional[str]:
    """Error text for ``--cfg-options`` the rows cannot take, else None.

    Args:
        cfg_options (Mapping[str, Any]): The parsed options.
        configs (Mapping[str, Any]): Config path -> loaded config; every key
            must exist in every one of them.
        reserved (Sequence[str]): Keys (and their sub-keys) the driver sets
            itself. Defaults to ().
        reserved_hint (str): What to use instead, appended to the message
            of a reserved key. Defaults to ''.
        move (callable, optional): ``move(config_path, key) -> key`` where a
            key sits elsewhere in some configs (e.g. a wrapped backbone).
            Defaults to None.
    """
    for key in cfg_options:
        if any(key == r or key.startswith(r + '.') for r in reserved):
            return (f'--cfg-options {key}: set by the script itself'
                    + (f'; {reserved_hint}' if reserved_hint else ''))
        for path, cfg in configs.items():
            moved = move(path, key) if move else key
            missing = lookup_key(cfg, moved)
            if missing:
                return (f'--cfg-options {key}: {moved} is not in {path} '
                        f'({missing}); the options change values the configs '
                        'set, check the spelling')
    return None


def hook_options(cfg: Any, hook_type: str,
                 values: Mapping[str, Any]) -> List[str]:
    """``--cfg-options`` (``custom_hooks.<index>.<key>=<value>``) that set
    ``values`` on the first hook of type ``hook_type`` in ``cfg``'s
    ``custom_hooks``.

    Raises:
        ValueError: ``cfg`` has no hook of that type.
    """
    types = [hook['type'] for hook in cfg.get('custom_hooks') or []]
    if hook_type not in types:
        raise ValueError(f'hook_options: no {hook_type!r} in custom_hooks '
                         f'(types: {types})')
    index = types.index(hook_type)
    return [format_option(f'custom_hooks.{index}.{key}', value)
            for key, value in values.items()]


def options_diff(saved: Mapping[str, Any], current: Mapping[str, Any],
                 free: Iterable[str] = ()) -> List[Tuple[str, Any, Any]]:
    """``(key, saved value, current value)`` of every key of ``current``
    (not in ``free``) whose value differs from ``saved``."""
    free = set(free)
    return [(key, saved.get(key), value) for key, value in current.items()
            if key not in free and saved.get(key) != value]


def _describe_value(key: str, value: Any) -> str:
    if key == 'cfg_options' and isinstance(value, Mapping):
        return describe_options(value)
    return str(value)


class OptionsLock:
    """The options a work dir was made with, and the refusal of others.

    Args:
        work_dir (str): The run's work dir.
        legacy (callable, optional): ``legacy() -> dict | None``: the
            options of a work dir made before it kept ``run_options.json``
            (e.g. read from its first row file). Defaults to None.
        holds_work (callable, optional): ``holds_work() -> bool``: whether
            the work dir holds anything the options made (rows,
            checkpoints); without it other options are allowed. Defaults to
            None: the saved options alone lock the work dir.
        free (Iterable[str]): Options that may change between runs (seeds,
            threads, the number of bootstrap draws). Defaults to ().
        defaults (Mapping[str, Any], optional): Values of options that a
            work dir saved before they existed (an option added to a driver
            later) ran with; they fill the saved options' missing keys.
            Defaults to None.
        paths (Iterable[str]): Options that are paths: they compare as
            normalised paths, relative ones taken from ``root`` (a folder
            given relative or absolute is the same option). Defaults to ().
        root (str): The folder relative paths start from. Defaults to ''
            (the working directory).
    """

    def __init__(self, work_dir: str,
                 legacy: Optional[Callable[[], Optional[dict]]] = None,
                 holds_work: Optional[Callable[[], bool]] = None,
                 free: Iterable[str] = (),
                 defaults: Optional[Mapping[str, Any]] = None,
                 paths: Iterable[str] = (), root: str = '') -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, RUN_OPTIONS)
        self.legacy = legacy
        self.holds_work = holds_work
        self.free = tuple(free)
        self.defaults = normalised(defaults or {})
        self.paths = tuple(paths)
        self.root = root

    def canonical(self, options: Mapping[str, Any]) -> Dict[str, Any]:
        """``options`` with the path options normalised (absolute, from
        ``root``); the others as given."""
        found = {k: osp.normpath(osp.join(self.root, options[k]))
                 for k in self.paths if options.get(k) is not None}
        return dict(options, **found)

    def saved(self) -> Optional[dict]:
        """The options the work dir was made with (path options
        normalised), or None (a new one)."""
        if osp.exists(self.path):
            with open(self.path) as f:
                saved = json.load(f)
        else:
            saved = self.legacy() if self.legacy is not None else None
        return None if saved is None else self.canonical(
            dict(self.defaults, **saved))

    def mismatch(self, current: Mapping[str, Any]) -> Optional[str]:
        """Error text naming every option whose value differs from the
        work dir's, else None (also for a new or empty work dir)."""
        current = normalised(self.canonical(current))
        saved = self.saved()
        if saved is None or (self.holds_work is not None
                             and not self.holds_work()):
            return None
        diffs = options_diff(saved, current, self.free)
        if not diffs:
            return None
        text = '; '.join(
            f"--{key.replace('_', '-')}: {_describe_value(key, there)} in the "
            f'work dir, {_describe_value(key, here)} now'
            for key, there, here in diffs)
        return (f'work dir {self.work_dir} was made with other options '
                f'({text}); its rows would mix two models. Use another '
                '--work-dir for these options, or the same options to '
                'continue it.')

    def write(self, current: Mapping[str, Any]) -> None:
        """Keep ``current`` as the work dir's options (atomically)."""
        atomic_write_json(self.path, normalised(current), indent=1)
