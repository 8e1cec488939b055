"""One runner: a repository tool as a logged, timed subprocess, and the loop
over the rows that are not finished yet (in order, or in parallel)."""
import functools
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from mmsparse.utils.tool_runs import run_logged
from .store import RowStore


class ToolRunner:
    """Run the repository's tools (``tools/train.py``, ...) as the user
    would, each with its output in a log file.

    Args:
        root (str): The repository root (the tools' working directory).
        env (Mapping[str, str], optional): Variables added to the
            environment of every tool (e.g. ``OMP_NUM_THREADS``). Defaults
            to None.
        pythonpath (str, optional): Folder put first on ``PYTHONPATH``.
            Defaults to None.
    """

    def __init__(self, root: str, env: Optional[Mapping[str, str]] = None,
                 pythonpath: Optional[str] = None) -> None:
        self.root = root
        self.env: Dict[str, str] = dict(env or {})
        self.pythonpath = pythonpath

    def __call__(self, cmd: Sequence[str], log_file: str) -> float:
        """Run the command line ``cmd``; returns its seconds (raises
        ``RuntimeError`` naming the log on a non-zero exit)."""
        return run_logged(cmd, log_file, cwd=self.root, env=self.env,
                          pythonpath=self.pythonpath)

    def tool(self, script: str, args: Sequence[str], log_file: str) -> float:
        """Run the Python tool ``script`` (relative to the root) with
        ``args`` in this interpreter; returns its seconds."""
        return self([sys.executable, script] + list(args), log_file)


def parallel_map(fn: Callable[[Any], Any], items: Sequence[Any],
                 jobs: int = 1, processes: bool = False) -> List[Any]:
    """``[fn(item) for item in items]``, ``jobs`` at a time.

    With ``jobs <= 1``, in this process and in order. Threads (the
    default) go through joblib: right where each item's work is in
    subprocesses (the tools). ``processes=True`` runs the items in ``jobs``
    forked worker processes (``concurrent.futures``; even a single item, so
    that this process never runs one), for items that do their work in the
    Python process (an mmengine ``Runner`` per item): the workers are not
    daemonic, so an item may start processes of its own (dataloader
    workers), and every item submitted runs to its end even when another
    one fails (the first error is raised after). joblib's
    process backends do not fit here: ``multiprocessing`` workers are
    daemonic, ``loky`` starts fresh interpreters that must import ``fn``
    (a driver run as a script cannot be imported).

    Args:
        fn (callable): The work of one item; with ``processes`` it and the
            items must pickle (a module-level function, a
            ``functools.partial`` of one).
        items (Sequence): The items, in order.
        jobs (int): Items at the same time. Defaults to 1.
        processes (bool): Worker processes instead of threads. Defaults to
            False.

    Returns:
        list: The results, in the order of ``items``.
    """
    items = list(items)
    if not items:
        return []
    if jobs <= 1 or (len(items) == 1 and not processes):
        return [fn(item) for item in items]
    if processes:
        with ProcessPoolExecutor(
                max_workers=jobs,
                mp_context=multiprocessing.get_context('fork')) as pool:
            return list(pool.map(fn, items))
    from joblib import Parallel, delayed
    return list(Parallel(n_jobs=jobs, backend='threading')(
        delayed(fn)(item) for item in items))


def _done(result: dict) -> str:
    return 'done'


def _run_row(store: RowStore, run_one: Callable[[dict], dict],
             describe: Callable[[dict], str], line: str, row: dict) -> str:
    """Run one row, write its file (the done-marker), print its line."""
    result = run_one(row)
    store.write(row['name'], result)
    print(line.format(name=row['name'], text=describe(result)), flush=True)
    return row['name']


def run_rows(rows: Sequence[dict], store: RowStore,
             run_one: Callable[[dict], dict],
             describe: Callable[[dict], str] = _done,
             jobs: int = 1, processes: bool = False,
             todo: Optional[Callable[[dict], bool]] = None,
             line: str = '{name}: {text}',
             skipped: Optional[str] = '{name}: finished, skipped'
             ) -> List[str]:
    """Run every row whose file is not in ``store`` and write its result
    there when it is finished (the done-marker).

    Args:
        rows (Sequence[dict]): The plan's rows, each with a ``name``.
        store (RowStore): Where finished rows are.
        run_one (callable): ``run_one(row) -> result`` (a JSON-able dict).
        describe (callable): ``describe(result) -> str``, the text of the
            progress line. Defaults to 'done'.
        jobs (int): Rows run at the same time (see :func:`parallel_map`).
            Defaults to 1 (in order).
        processes (bool): Rows in worker processes instead of threads
            (rows whose work is in this Python process); ``run_one`` and
            ``describe`` must then be module-level functions. Defaults to
            False.
        todo (callable, optional): ``todo(row) -> bool``: whether the row
            must run. Defaults to None: the rows without a file.
        line (str): The progress line of a finished row (``{name}``,
            ``{text}``: the description). Defaults to '{name}: {text}'.
        skipped (str, optional): The line of a row that does not run
            (``{name}``); None prints nothing. Defaults to
            '{name}: finished, skipped'.

    Returns:
        list[str]: The names of the rows run now, in plan order.
    """
    pending = []
    for row in rows:
        if todo(row) if todo is not None else not store.done(row['name']):
            pending.append(row)
        elif skipped is not None:
            print(skipped.format(name=row['name']))
    task = functools.partial(_run_row, store, run_one, describe, line)
    return parallel_map(task, pending, jobs, processes)
