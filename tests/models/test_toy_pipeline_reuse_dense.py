"""projects/composed/run_toy_pipeline.py: the finished dense stages of
another work dir are linked (--reuse-dense) only when every option they
depend on is the same there, and a work dir keeps the options it was
started with (fake markers, no training)."""
import json
import os
import os.path as osp

import pytest
from script_loader import load_script
from vis_helpers import empty_heldout_root

SCRIPT = 'projects/composed/run_toy_pipeline.py'


class ToolRun(Exception):
    """The first tool the pipeline would run."""


@pytest.fixture
def setup(tmp_path, monkeypatch):
    script = load_script(SCRIPT)
    vis = empty_heldout_root(tmp_path / 'vis_data')
    cls = tmp_path / 'cls_data'
    (cls / 'test').mkdir(parents=True)

    def run(cmd, log_file):
        raise ToolRun(cmd)

    monkeypatch.setattr(script, 'run', run)
    options = dict(vis_data=str(vis) + '/', cls_data=str(cls), vis_videos=120,
                   heldout_ratio=0.5, cls_train_videos=300, cls_epochs=10,
                   pretrain_iters=300, finetune_iters=150, p3b_keep=0.5,
                   seeds=[0, 1])
    other = tmp_path / 'first'
    stages = ['dense_cls/epoch_10.pth', 'dense_cls/accuracy.json']
    for seed in (0, 1):
        stages += [f'vis_dense_pretrain_seed{seed}/iter_300.pth',
                   f'vis_dense_seed{seed}/iter_150.pth',
                   f'vis_dense_seed{seed}/test/predictions.json']
    for rel in stages:
        (other / rel).parent.mkdir(parents=True, exist_ok=True)
        (other / rel).write_text('x')
    (other / 'results.json').write_text(json.dumps(dict(args=options)))
    (other / 'seconds.json').write_text(json.dumps(
        dict(dense_cls=100.0, test_dense_cls=5.0, vis_dense_seed0=60.0,
             p3b_cls=300.0)))
    argv = ['--vis-data', str(vis), '--cls-data', str(cls), '--seeds', '0', '1',
            '--p3b-keep', '0.25', '--work-dir', str(tmp_path / 'second'),
            '--reuse-dense', str(other)]
    return script, tmp_path, other, argv


def test_reuse_dense_links_the_finished_dense_stages(setup):
    script, tmp_path, other, argv = setup
    work = tmp_path / 'second'
    for _ in range(2):  # a rerun finds its links and resumes
        with pytest.raises(ToolRun) as tool:
            script.main(argv)
        # the dense classifier is not trained again: P3B is the first tool
        assert script.P3B_CLS in tool.value.args[0]
        links = sorted(p.name for p in work.iterdir() if p.is_symlink())
        assert links == ['dense_cls', 'vis_dense_pretrain_seed0',
                         'vis_dense_pretrain_seed1', 'vis_dense_seed0',
                         'vis_dense_seed1']
        for name in links:
            assert os.readlink(work / name) == osp.join('..', 'first', name)
            assert (work / name).resolve() == (other / name).resolve()
    times = json.loads((work / 'seconds.json').read_text())
    assert times == dict(dense_cls=100.0, test_dense_cls=5.0, vis_dense_seed0=60.0)
    saved = json.loads((work / 'run_options.json').read_text())
    assert saved['reuse_dense'] == str(other) and saved['p3b_keep'] == 0.25
    # the new work dir's own run_options.json is what a third run checks
    third = argv[:-3] + [str(tmp_path / 'third'), '--reuse-dense', str(work)]
    with pytest.raises(ToolRun):
        script.main(third)
    assert (tmp_path / 'third' / 'vis_dense_seed1').resolve() == \
        (other / 'vis_dense_seed1').resolve()


@pytest.mark.parametrize('change, message', [
    (['--cls-epochs', '12'], '--cls-epochs differs (there 10, here 12)'),
    (['--pretrain-iters', '200'], '--pretrain-iters differs (there 300, here 200)'),
    (['--finetune-iters', '100'], '--finetune-iters differs'),
    (['--heldout-ratio', '0.4'], '--heldout-ratio differs (there 0.5, here 0.4)'),
    (['--vis-videos', '60'], '--vis-videos differs'),
    (['--cls-train-videos', '200'], '--cls-train-videos differs'),
    (['--vis-data', 'elsewhere'], '--vis-data differs'),
    (['--seeds', '0', '1', '2'], 'stages not finished there: '
     'vis_dense_pretrain_seed2 (iter_300.pth); vis_dense_seed2 (iter_150.pth, '
     'test/predictions.json)'),
    (['--cfg-options', 'model.track_head.num_queries=5'], '--cfg-options differs'),
])
def test_reuse_dense_refuses_before_any_work(setup, capsys, change, message):
    script, tmp_path, other, argv = setup
    with pytest.raises(SystemExit):
        script.main(argv + change)
    err = capsys.readouterr().err
    assert f'--reuse-dense {other}: ' in err and message in err
    assert not (tmp_path / 'second').exists()


def test_reuse_dense_refusals_of_the_work_dirs(setup, capsys):
    script, tmp_path, other, argv = setup

    def refused(args, message):
        with pytest.raises(SystemExit):
            script.main(args)
        assert message in capsys.readouterr().err

    (other / 'vis_dense_seed1' / 'test' / 'predictions.json').unlink()
    refused(argv, 'vis_dense_seed1 (test/predictions.json)')
    refused(argv + ['--seeds', '0', '--reuse-dense', str(tmp_path / 'second')],
            'not a directory')
    refused(argv + ['--work-dir', str(other)], 'is the --work-dir itself')
    assert not (tmp_path / 'second').exists()
    # the options recorded there are needed; those it does not record (an
    # option added to the script later) had their defaults
    (other / 'results.json').unlink()
    refused(argv + ['--seeds', '0'], 'the options its stages were made with are unknown')
    (other / 'run_options.json').write_text(json.dumps(dict(cls_epochs=10)))
    refused(argv + ['--seeds', '0'], "--vis-data differs (there '"
            + osp.join(script.ROOT, 'data', 'toy_ytvis21_composed'))
    # a dense stage of its own in the new work dir is not replaced
    saved = dict(vis_data=argv[1], cls_data=argv[3], vis_videos=120, heldout_ratio=0.5,
                 cls_train_videos=300, cls_epochs=10, pretrain_iters=300,
                 finetune_iters=150)
    (other / 'run_options.json').write_text(json.dumps(saved))
    (tmp_path / 'second' / 'dense_cls').mkdir(parents=True)
    refused(argv + ['--seeds', '0'], 'dense_cls exists and is not a link to')
    assert os.listdir(tmp_path / 'second') == ['dense_cls']


def test_a_work_dir_keeps_the_options_it_was_started_with(setup, capsys):
    """The first run's run_options.json locks the options the stages depend
    on: a continued run with another --p3b-keep is refused before any work,
    one with other free options (seeds, threads) continues."""
    script, tmp_path, other, argv = setup
    work = tmp_path / 'second'
    with pytest.raises(ToolRun):
        script.main(argv)
    saved = (work / 'run_options.json').read_text()
    with pytest.raises(SystemExit):
        script.main(argv + ['--p3b-keep', '0.5', '--art-iters', '100'])
    err = capsys.readouterr().err
    assert f'work dir {work} was made with other options' in err
    assert '--p3b-keep: 0.25 in the work dir, 0.5 now' in err
    assert '--art-iters: 300 in the work dir, 100 now' in err
    assert (work / 'run_options.json').read_text() == saved
    # free options change nothing that is stored: the run goes on
    with pytest.raises(ToolRun) as tool:
        script.main(argv[:-2] + ['--seeds', '0', '--threads', '2'])
    assert script.P3B_CLS in tool.value.args[0]
    assert (work / 'run_options.json').read_text() == saved
    # a data root given relative or absolute is the same option
    assert script.PipelineLock(str(work), {}).mismatch(
        dict(json.loads(saved), vis_data=osp.relpath(
            json.loads(saved)['vis_data'], script.ROOT))) is None
