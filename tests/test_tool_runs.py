import sys

import pytest

from mmsparse.utils.tool_runs import run_logged


def test_run_logged_writes_output_env_and_pythonpath(tmp_path):
    log = tmp_path / 'sub' / 'out.log'
    code = ('import os, sys; print("threads", os.environ["OMP_NUM_THREADS"]); '
            'print("path", sys.path[1]); print("err", file=sys.stderr)')
    took = run_logged([sys.executable, '-c', code], str(log), cwd=str(tmp_path),
                      env={'OMP_NUM_THREADS': '3'}, pythonpath='/some/root')
    text = log.read_text()
    assert 'threads 3' in text and 'path /some/root' in text and 'err' in text
    assert took >= 0


def test_run_logged_failure_names_the_log(tmp_path):
    log = tmp_path / 'fail.log'
    with pytest.raises(RuntimeError, match='exit status 3.*fail.log'):
        run_logged([sys.executable, '-c', 'import sys; sys.exit(3)'], str(log),
                   cwd=str(tmp_path))
