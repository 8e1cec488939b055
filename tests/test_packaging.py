"""install_requires holds ranges (an existing OpenMMLab environment keeps its torch/mmcv),
the exact pins of requirements/ lie inside them, and the installed environment satisfies them.

`make install-check` (run by .ci/run) also does `pip install --no-deps -e .` into .venv
followed by `pip check`.

Installed use: the wheel (built from the sdist, installed with --no-deps into a throwaway
folder beside the pinned environment) carries configs/ and tools/ in mmsparse/.mim, and a
user config outside the checkout inherits `mmsparse::...` configs and trains.
"""
import configparser
import glob
import importlib.metadata as metadata
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _install_requires():
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(ROOT, 'setup.cfg'))
    lines = cfg['options']['install_requires'].strip().splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def _pins():
    """Exact pins of `make env`: requirements/*.txt, and mmcv in the Makefile."""
    with open(osp.join(ROOT, 'Makefile')) as f:
        pins = {'mmcv': re.search(r'mmcv==([\w.]+)', f.read()).group(1)}
    for path in glob.glob(osp.join(ROOT, 'requirements', '*.txt')):
        with open(path) as f:
            for line in f:
                line = line.split('#')[0].strip()
                if '==' in line:
                    req = Requirement(line)
                    pins[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    return pins


def test_install_requires_are_ranges_not_pins():
    reqs = _install_requires()
    assert {canonicalize_name(r.name) for r in reqs} >= {
        'torch', 'mmcv', 'mmengine', 'mmdet', 'mmpretrain', 'pycocotools'}
    pinned = [str(r) for r in reqs if any(s.operator in ('==', '===') for s in r.specifier)]
    assert not pinned, f'exact pins belong in requirements/, not install_requires: {pinned}'
    # torch/torchvision installs are the user's: no requirement may force a newer torch
    assert 'torchvision' not in {canonicalize_name(r.name) for r in reqs}


def test_pinned_stack_is_inside_the_ranges():
    pins = _pins()
    for req in _install_requires():
        name = canonicalize_name(req.name)
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])
    assert {'torch', 'mmcv', 'mmengine', 'mmdet', 'mmpretrain'} <= set(pins)


def test_installed_versions_satisfy_the_ranges():
    for req in _install_requires():
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f'{req.name} is not installed')
        assert req.specifier.contains(version, prereleases=True), (str(req), version)


def test_pip_check():
    proc = subprocess.run([sys.executable, '-m', 'pip', 'check'], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- Installed use: the wheel carries configs/ and tools/ (mmsparse/.mim) ---

USER_CONFIG = """_base_ = 'mmsparse::toy/vpp_mask2former_vit_toy-ytvis21.py'
data_root = '{data_root}'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
train_cfg = dict(max_iters=2, val_interval=2)
"""


def _run(args, cwd, env=None, timeout=600):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope='module')
def wheel_site(tmp_path_factory):
    """mmsparse as a user gets it: sdist -> wheel -> ``pip install --no-deps`` into a
    throwaway folder (beside the pinned environment, which keeps every dependency).

    Returns the folder, to put on PYTHONPATH ahead of the checkout's editable install.
    """
    out = tmp_path_factory.mktemp('wheel')
    _run([sys.executable, 'setup.py', '-q', 'sdist', '--dist-dir', str(out / 'sdist')], ROOT)
    sdist, = glob.glob(str(out / 'sdist' / 'mmsparse-*.tar.gz'))
    _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
          '-w', str(out / 'dist'), sdist], str(out))
    wheel, = glob.glob(str(out / 'dist' / 'mmsparse-*.whl'))
    _run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target',
          str(out / 'site'), wheel], str(out))
    return str(out / 'site')


def _user_env(site):
    env = dict(os.environ, PYTHONPATH=site, OMP_NUM_THREADS='2')
    env.pop('PYTHONSTARTUP', None)
    return env


def test_wheel_carries_configs_tools_and_licence(wheel_site):
    mim = osp.join(wheel_site, 'mmsparse', '.mim')
    for rel in ('configs/vpp_mask2former_ytvis21.py',
                'configs/toy/vpp_mask2former_vit_toy-ytvis21.py',
                'tools/train.py', 'tools/test.py', 'tools/dist_train.sh',
                'tools/misc/print_config.py', 'model-index.yml'):
        assert osp.isfile(osp.join(mim, rel)), rel
    configs = {osp.relpath(p, osp.join(ROOT, 'configs'))
               for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)}
    shipped = {osp.relpath(p, osp.join(mim, 'configs'))
               for p in glob.glob(osp.join(mim, 'configs', '**', '*.py'), recursive=True)}
    assert shipped == configs
    licence, = glob.glob(osp.join(wheel_site, 'mmsparse-*.dist-info', 'LICENSE'))
    with open(licence) as f:
        assert 'Apache License' in f.read(2000)


def test_user_config_outside_the_checkout_trains_from_the_wheel(wheel_site, toy_ytvis_root,
                                                                tmp_path):
    """A 5-line config inheriting the toy VPP config from the installed package
    trains 2 iterations, run from a folder outside the repository."""
    user_dir = tmp_path / 'user'
    user_dir.mkdir()
    config = user_dir / 'my_vpp.py'
    config.write_text(USER_CONFIG.format(data_root=toy_ytvis_root))
    assert len(config.read_text().splitlines()) == 5
    env = _user_env(wheel_site)
    where = _run([sys.executable, '-c', 'import mmsparse; print(mmsparse.__file__)'],
                 str(user_dir), env)
    assert where.strip().startswith(wheel_site)  # not the checkout
    train = osp.join(wheel_site, 'mmsparse', '.mim', 'tools', 'train.py')
    out = _run([sys.executable, train, 'my_vpp.py', '--work-dir', 'work'], str(user_dir), env)
    assert 'Saving checkpoint at 2 iterations' in out
    assert 'youtube_vis/segm_mAP' in out and 'vpp_pkr' in out
    # every dict was built in the config's scope (mmdet), none in a 'mmsparse' scope
    assert 'Failed to search registry' not in out
    assert osp.isfile(user_dir / 'work' / 'iter_2.pth')
    # the resolved config came from the wheel, not from the checkout
    dumped, = glob.glob(str(user_dir / 'work' / '*' / 'vis_data' / 'config.py')) or \
        glob.glob(str(user_dir / 'work' / 'my_vpp.py'))
    with open(dumped) as f:
        text = f.read()
    assert "type='VPPBackbone'" in text and 'train_sub.json' in text
    # print_config of the installed tools resolves the same name
    cfg_out = _run([sys.executable, osp.join(wheel_site, 'mmsparse', '.mim', 'tools', 'misc',
                                             'print_config.py'), 'my_vpp.py'], str(user_dir), env)
    assert "type='VPPMask2FormerVideo'" in cfg_out


def test_config_names_from_the_wheel(wheel_site, tmp_path):
    """mmengine needs a folder in ``package::path``: the top-level VPP config is
    reached through one. An mmpretrain-based config builds its model in its own
    scope (mmengine marks inherited dicts with ``_scope_='mmsparse'``)."""
    (tmp_path / 'vpp_user.py').write_text(
        "_base_ = 'mmsparse::toy/../vpp_mask2former_ytvis21.py'\n")
    (tmp_path / 'p3b_user.py').write_text(
        "_base_ = 'mmsparse::p3b/toy/deit-toy_digits-source.py'\n")
    code = '\n'.join([
        'from mmengine.config import Config',
        'from mmengine.registry import init_default_scope',
        'from mmsparse.registry import MODELS, drop_mmsparse_scope',
        "vpp = drop_mmsparse_scope(Config.fromfile('vpp_user.py'))",
        'print(vpp.model.type, vpp.model.backbone.keep_ratio)',
        "p3b = drop_mmsparse_scope(Config.fromfile('p3b_user.py'))",
        "init_default_scope(p3b.default_scope)",
        'print(type(MODELS.build(p3b.model)).__name__)'])
    out = _run([sys.executable, '-c', code], str(tmp_path), _user_env(wheel_site))
    lines = out.strip().splitlines()
    assert 'VPPMask2FormerVideo [0.7, 0.56, 0.448, 0.358]' in lines
    assert 'ImageClassifier' in lines


def _mim_site():
    """Where openmim is installed: ``MMSPARSE_MIM_SITE`` (``make mim-check``) or
    the environment itself; None without mim."""
    site = os.environ.get('MMSPARSE_MIM_SITE')
    if site:
        assert osp.isdir(osp.join(site, 'mim')), f'MMSPARSE_MIM_SITE={site} has no mim'
        return site
    try:
        import mim  # noqa: F401
    except ImportError:
        return None
    return ''


def test_mim_train_and_test_from_the_wheel(wheel_site, toy_ytvis_root, tmp_path):
    """``mim train mmsparse CONFIG`` / ``mim test mmsparse CONFIG --checkpoint``
    run the installed package's tools (mmsparse/.mim/tools)."""
    mim_site = _mim_site()
    if mim_site is None:
        pytest.skip('openmim is not installed (`make mim-check` installs it into a throwaway '
                    'folder and runs this test)')
    (tmp_path / 'my_vpp.py').write_text(USER_CONFIG.format(data_root=toy_ytvis_root))
    env = _user_env(os.pathsep.join(p for p in (wheel_site, mim_site) if p))
    mim = [sys.executable, '-c', 'from mim.cli import cli; cli()']
    out = _run(mim + ['train', 'mmsparse', 'my_vpp.py', '--work-dir', 'work'], str(tmp_path), env)
    assert f'Training command is {sys.executable} {wheel_site}/mmsparse/.mim/tools/train.py ' \
        'my_vpp.py' in out
    assert 'Training finished successfully' in out
    out = _run(mim + ['test', 'mmsparse', 'my_vpp.py', '--checkpoint', 'work/iter_2.pth',
                      '--work-dir', 'test', '--cfg-options',
                      f'test_dataloader.dataset.data_root={toy_ytvis_root}'], str(tmp_path), env)
    assert f'{wheel_site}/mmsparse/.mim/tools/test.py' in out
    assert 'youtube_vis/segm_mAP' in out and 'Testing finished successfully' in out
