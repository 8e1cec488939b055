"""Warn when the model's number of classes differs from the dataset's."""
from typing import List, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsparse.registry import HOOKS


def heads_num_classes(model) -> List[Tuple[str, int]]:
    """``(name, num_classes)`` of every head of ``model`` that has an int ``num_classes``.

    Heads are modules whose class name ends in ``Head``; RPN heads (one
    foreground class) are left out, as in mmdet's ``NumClassCheckHook``.
    """
    if is_model_wrapper(model):
        model = model.module
    found = []
    for name, module in model.named_modules():
        num = getattr(module, 'num_classes', None)
        kind = type(module).__name__
        if isinstance(num, int) and not isinstance(num, bool) and kind.endswith('Head') \
                and 'RPN' not in kind:
            found.append((name, num))
    return found


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Warns when a head's ``num_classes`` differs from ``len(metainfo['classes'])``.

    A config that trains on a subset of the classes (``metainfo=dict(classes=
    (...))``) but keeps the head's ``num_classes`` trains and evaluates without
    complaint: the extra outputs are never supervised as foreground and their
    predictions have no category. mmdet's ``NumClassCheckHook`` asserts; this
    one logs a warning (a larger head can be intended, e.g. to fine-tune later
    on more classes) before training, validation and testing, once per dataset.

    Example:
        >>> custom_hooks = [dict(type='NumClassesCheckHook')]
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._checked = set()

    def _check(self, runner, dataloader, mode: str) -> None:
        dataset = getattr(dataloader, 'dataset', None)
        classes = getattr(dataset, 'metainfo', {}).get('classes')
        if classes is None or mode in self._checked:
            return
        self._checked.add(mode)
        for name, num in heads_num_classes(runner.model):
            if num != len(classes):
                runner.logger.warning(
                    f'NumClassesCheckHook: {name}.num_classes is {num}, but the {mode} '
                    f"dataset has {len(classes)} classes in metainfo['classes'] "
                    f'{tuple(classes)}; set model.{name}.num_classes={len(classes)} (and '
                    'loss_cls.class_weight) or the dataset classes to match')

    def before_train(self, runner) -> None:
        """Check against the train dataset."""
        self._check(runner, runner.train_dataloader, 'train')

    def before_val(self, runner) -> None:
        """Check against the val dataset."""
        self._check(runner, runner.val_dataloader, 'val')

    def before_test(self, runner) -> None:
        """Check against the test dataset."""
        self._check(runner, runner.test_dataloader, 'test')
