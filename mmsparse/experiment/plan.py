"""A driver's plan against its work dir: the options lock of a row store,
and what ``--dry-run`` prints (the planned rows, the stages' progress)."""
import json
from typing import Callable, Iterable, Mapping, Optional, Sequence

from .options import OptionsLock
from .store import RowStore


def first_row(store: RowStore) -> Optional[dict]:
    """The first finished row of ``store`` (by file name), or None."""
    files = store.files()
    if not files:
        return None
    with open(files[0]) as f:
        return json.load(f)


def rows_lock(store: RowStore, legacy: Optional[Callable[[dict], dict]] = None,
              holds_work: Optional[Callable[[], bool]] = None,
              **kwargs) -> OptionsLock:
    """The :class:`~mmsparse.experiment.options.OptionsLock` of the work
    dir of ``store``, which locks it while it holds finished rows.

    Args:
        store (RowStore): The driver's rows.
        legacy (callable, optional): ``legacy(first_row) -> options``: the
            options of a work dir made before it kept ``run_options.json``,
            read from its first row file. Defaults to None.
        holds_work (callable, optional): ``holds_work() -> bool``: whether
            the work dir holds work of the options besides rows (e.g.
            checkpoints). Defaults to None (rows only).
        **kwargs: More :class:`OptionsLock` arguments (``free``, ...).
    """
    def saved_in_rows() -> Optional[dict]:
        row = first_row(store)
        return None if row is None else legacy(row)

    def holds() -> bool:
        return bool(store.files()) or (holds_work is not None
                                       and holds_work())

    return OptionsLock(store.work_dir,
                       legacy=saved_in_rows if legacy is not None else None,
                       holds_work=holds, **kwargs)


def print_rows(rows: Sequence[dict], done: Iterable[str],
               detail: Optional[Callable[[dict], str]] = None) -> None:
    """One line per planned row: ``done`` or ``todo``, its name and
    ``detail(row)`` (when given)."""
    done = set(done)
    for r in rows:
        text = f"{'done' if r['name'] in done else 'todo'}  {r['name']}"
        print(text + (f'  {detail(r)}' if detail is not None else ''))


def stage_status(stages: Mapping[str, Sequence[dict]], done: Iterable[str],
                 units: Callable[[dict], float], noun: str = 'rows') -> float:
    """Per stage (name -> planned rows, in run order) one line: how many
    rows are finished and the next one; returns the ``units`` (e.g.
    iterations) of the rows left, for the cost estimate."""
    done, left = set(done), 0.0
    for stage, rows in stages.items():
        pending = [r for r in rows if r['name'] not in done]
        left += sum(units(r) for r in pending)
        print(f'{stage}: {len(rows) - len(pending)} of {len(rows)} {noun} '
              'finished' + (f"; next: {pending[0]['name']}" if pending else ''))
    return left
