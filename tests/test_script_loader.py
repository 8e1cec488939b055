"""tests/script_loader.py: scripts loaded as modules in the tests."""
import pickle
import sys

import pytest
from script_loader import load_script, script_module_name
from vis_helpers import ROOT

SCRIPT = '''
import dataclasses


@dataclasses.dataclass
class Row:
    name: 'str'
    ap: float = 0.0


if __name__ == '__main__':
    raise SystemExit('the entry point ran')
'''


def test_dataclasses_pickle_and_no_main(tmp_path):
    path = tmp_path / 'run-toy.py'
    path.write_text(SCRIPT)
    module = load_script(str(path))
    assert sys.modules[module.__name__] is module
    assert module.__name__ == script_module_name(str(path))
    row = pickle.loads(pickle.dumps(module.Row('a', 0.5)))
    assert row == module.Row('a', 0.5)
    # every load runs the script again and replaces the registered module
    again = load_script(str(path))
    assert again is not module and sys.modules[module.__name__] is again


def test_names_are_stable_and_relative_to_the_root():
    name = script_module_name(f'{ROOT}/projects/vpp/run_toy_comparison.py')
    assert name == '_script__projects__vpp__run_toy_comparison'
    assert script_module_name(f'{ROOT}/projects/vpp/../vpp/run_toy_comparison.py') == name
    assert script_module_name(f'{ROOT}/tools/vpp/run_toy_comparison.py') != name


def test_missing_script_and_failed_run(tmp_path):
    with pytest.raises(FileNotFoundError, match='load_script: no script file '
                       "'projects/nowhere.py'.*repository root"):
        load_script('projects/nowhere.py')
    bad = tmp_path / 'bad.py'
    bad.write_text('raise ValueError("broken")\n')
    with pytest.raises(ValueError, match='broken'):
        load_script(str(bad))
    assert script_module_name(str(bad)) not in sys.modules
