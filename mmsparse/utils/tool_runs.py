"""Run a repository tool as a logged subprocess (the experiment scripts).

The comparison scripts under ``projects/`` drive the user-facing tools
(``tools/train.py``, ``tools/test.py``, converters) as separate processes, so
every row is exactly what a user would run; this is the one function they
share for it.
"""
import os
import os.path as osp
import subprocess
import time
from typing import Mapping, Optional, Sequence


def run_logged(cmd: Sequence[str], log_file: str, cwd: str,
               env: Optional[Mapping[str, str]] = None,
               pythonpath: Optional[str] = None) -> float:
    """Run ``cmd`` in ``cwd`` with stdout and stderr into ``log_file``.

    Args:
        cmd (Sequence[str]): The command line.
        log_file (str): File that receives the tool's output (its folder is
            created; an existing file is overwritten).
        cwd (str): Working directory (the repository root).
        env (Mapping[str, str], optional): Variables added to the current
            environment (e.g. ``OMP_NUM_THREADS``).
        pythonpath (str, optional): Folder put first on ``PYTHONPATH`` (so
            that ``custom_imports`` of repository modules resolve).

    Returns:
        float: Seconds the command took.

    Raises:
        RuntimeError: If the command exits with a non-zero status; the
            message names the log file.
    """
    print('$ ' + ' '.join(cmd), flush=True)
    start = time.time()
    os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
    full_env = dict(os.environ, **(env or {}))
    if pythonpath:
        full_env['PYTHONPATH'] = pythonpath + os.pathsep + full_env.get(
            'PYTHONPATH', '')
    with open(log_file, 'w') as f:
        proc = subprocess.run(list(cmd), cwd=cwd, stdout=f,
                              stderr=subprocess.STDOUT, env=full_env)
    if proc.returncode:
        raise RuntimeError(
            f'run_logged: {cmd[1] if len(cmd) > 1 else cmd[0]} failed '
            f'(exit status {proc.returncode}), see {log_file}')
    took = time.time() - start
    print(f'  done in {took:.0f} s', flush=True)
    return took
