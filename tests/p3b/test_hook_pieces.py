"""The plain-torch pieces P3BHook calls: target capture, task check and the
restore of a loaded checkpoint's state (messages as the hook logs them)."""
import pytest
import torch
from mmengine.structures import BaseDataElement

from mmsparse.p3b import P3BPruner, non_block_params
from mmsparse.p3b.checks import PIPELINE_HINT, check_task
from mmsparse.p3b.schedule import check_schedule_args
from mmsparse.p3b.state import restore_loaded_state
from mmsparse.p3b.targets import TargetCapture
from .toy_vit import ToyViT


def test_target_capture_keeps_only_the_batch_between_start_and_stop():
    module = torch.nn.Identity()
    capture = TargetCapture()
    capture.attach(module)
    batch = dict(data_samples=[
        BaseDataElement(gt_label=torch.tensor([i])) for i in (3, 1)])
    module(batch)  # not capturing (e.g. validation)
    assert capture.stop() is None
    capture.start()
    module(batch)
    assert torch.equal(capture.stop(), torch.tensor([3, 1]))
    assert capture.targets is None
    capture.start()
    with pytest.raises(RuntimeError, match='^P3BHook: no class labels'):
        capture.stop(required=True, owner='P3BHook')
    capture.remove()
    capture.start()
    module(batch)
    assert capture.stop() is None


def test_task_check_skips_unreadable_data_with_a_warning():
    warnings = []

    def unreadable():
        raise IndexError('empty')

    check_task(ToyViT(), unreadable, warnings.append, 'P3BHook')
    assert warnings == ["P3BHook: could not read a training sample to check "
                        "its labels (IndexError('empty'))"]
    video = dict(data_samples=BaseDataElement(boxes=torch.zeros(1, 4)))
    with pytest.raises(ValueError, match='^P3BHook: the training samples'):
        check_task(ToyViT(), lambda: video, warnings.append, 'P3BHook')
    assert PIPELINE_HINT.startswith('P3B measures block benefit')


def test_schedule_args_without_finalize_need_a_ramp():
    check_schedule_args(5, 25, None, 1000, True, 'P3BHook')
    # prune_finalize None (the end of training): the message names the keys
    # the user set, not the finalize step they left out.
    for sparse in (5, 3):
        with pytest.raises(ValueError, match=rf'^P3BHook: prune_sparse \({sparse}\) must '
                           r'come after prune_start \(5\) \(epochs\) when '
                           r'prune_finalize is None'):
            check_schedule_args(5, sparse, None, 1000, True, 'P3BHook')
    with pytest.raises(ValueError, match=r'^P3BHook: prune_finalize \(5\) '
                       r'must come after prune_start \(5\) \(epochs\)'):
        check_schedule_args(5, 5, 5, 1000, True, 'P3BHook')
    with pytest.raises(ValueError, match=r'^P3BHook: .* \(iterations\)'):
        check_schedule_args(5, 3, 9, 1000, False, 'P3BHook')


def test_restore_loaded_state_tells_resume_from_load_from():
    model = ToyViT()
    pruner = P3BPruner(model, 5, 0.5, 0, 6, 10, 2,
                       non_block_params=non_block_params(model))
    state = pruner.get_state()
    state['history'] = [dict(step=1)]
    logs = []

    def restore(state, ckpt_iter, cur_iter):
        logs.clear()
        restore_loaded_state(pruner, state, ckpt_iter, cur_iter,
                             lambda m: logs.append(('info', m)),
                             lambda m: logs.append(('warning', m)),
                             'P3BHook')

    restore(state, 4, 0)  # load_from: the run starts at 0
    assert logs == [('info', 'P3BHook: load_from loads the weights only; '
                     'the P3B state of that run (keep_ratio 0.5) is not '
                     'restored and pruning starts from dense gates (use '
                     'resume=True to continue that run)')]
    assert pruner.history == []
    restore(None, 4, 4)
    assert logs == [('warning', 'P3BHook: the checkpoint has no P3B state; '
                     'pruning starts from dense gates')]
    restore(state, 4, 4)  # resume: the run continues at the checkpoint
    assert logs == [('info', 'P3BHook: restored gates, scores, EMA and '
                     'schedule from the checkpoint')]
    assert pruner.history == [dict(step=1)]
    with pytest.raises(ValueError, match='^P3BHook: cannot resume'):
        restore(dict(state, keep_ratio=0.25), 4, 4)
