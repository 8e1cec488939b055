"""NumClassesCheckHook: warn when the head's num_classes differs from the dataset's classes."""
from types import SimpleNamespace

from mmengine.config import Config
from mmengine.registry import HOOKS, MODELS, DefaultScope
from torch import nn
from vis_helpers import TOY_CONFIG

import mmsparse  # noqa: F401
from mmsparse.engine import NumClassesCheckHook
from mmsparse.engine.hooks.num_classes_check_hook import heads_num_classes


class FakeClsHead(nn.Module):

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes


class FakeRPNHead(FakeClsHead):
    pass


def _runner(num_classes, classes):
    model = nn.Module()
    model.head = FakeClsHead(num_classes)
    model.rpn = FakeRPNHead(1)
    model.loss_cls = SimpleNamespace(num_classes=99)  # not a module: ignored
    loader = SimpleNamespace(dataset=SimpleNamespace(metainfo=dict(classes=classes)))
    messages = []
    logger = SimpleNamespace(warning=messages.append)
    runner = SimpleNamespace(model=model, train_dataloader=loader, val_dataloader=loader,
                             test_dataloader=loader, logger=logger)
    return runner, messages


def test_warns_once_per_stage_on_mismatch():
    hook = HOOKS.build(dict(type='NumClassesCheckHook'))
    assert isinstance(hook, NumClassesCheckHook)
    runner, messages = _runner(40, ('circle', 'square', 'triangle'))
    hook.before_train(runner)
    hook.before_train(runner)
    assert len(messages) == 1
    assert messages[0].startswith('NumClassesCheckHook: head.num_classes is 40, but the train '
                                  "dataset has 3 classes in metainfo['classes']")
    hook.before_val(runner)
    hook.before_test(runner)
    assert len(messages) == 3 and 'the test dataset' in messages[2]


def test_silent_when_matching():
    hook = NumClassesCheckHook()
    runner, messages = _runner(3, ('circle', 'square', 'triangle'))
    hook.before_train(runner)
    hook.before_val(runner)
    assert messages == []


def test_finds_the_mask2former_track_head():
    cfg = Config.fromfile(TOY_CONFIG)
    assert any(h['type'] == 'NumClassesCheckHook' for h in cfg.custom_hooks)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    assert ('track_head', 3) in heads_num_classes(model)
