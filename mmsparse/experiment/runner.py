"""One runner: a repository tool as a logged, timed subprocess, and the loop
over the rows that are not finished yet."""
import sys
from typing import Callable, Dict, List, Mapping, Optional, Sequence

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


def run_rows(rows: Sequence[dict], store: RowStore,
             run_one: Callable[[dict], dict],
             describe: Callable[[dict], str] = lambda result: 'done',
             jobs: int = 1) -> List[str]:
    """Run every row whose file is not in ``store`` and write its result
    there when it is finished (the done-marker).

    Args:
        rows (Sequence[dict]): The plan's rows, each with a ``name``.
        store (RowStore): Where finished rows are.
        run_one (callable): ``run_one(row) -> result`` (a JSON-able dict).
        describe (callable): ``describe(result) -> str``, the progress line.
            Defaults to 'done'.
        jobs (int): Rows run at the same time (threads: each row's work is
            in its tools' subprocesses). Defaults to 1 (in order).

    Returns:
        list[str]: The names of the rows run now.
    """
    pending = []
    for row in rows:
        if store.done(row['name']):
            print(f"{row['name']}: finished, skipped")
        else:
            pending.append(row)

    def one(row: dict) -> str:
        result = run_one(row)
        store.write(row['name'], result)
        print(f"{row['name']}: {describe(result)}", flush=True)
        return row['name']

    if jobs <= 1 or len(pending) <= 1:
        return [one(row) for row in pending]
    from joblib import Parallel, delayed
    return list(Parallel(n_jobs=jobs, backend='threading')(
        delayed(one)(row) for row in pending))
