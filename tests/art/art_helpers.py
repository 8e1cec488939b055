"""Tiny real-Runner setups for the ART hook tests (digits, ~1.4k weights)."""
import copy
import uuid

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmsparse  # noqa: F401


def tiny_cfg(work_dir,
             hooks,
             max_epochs=4,
             n_train=96,
             max_iters=None,
             optimizer=None,
             ckpt_interval=1,
             val=False,
             param_scheduler=None,
             widths=(8, 16),
             cal_acc=True):
    """A tiny digits classifier (SmallConvNet, 4 iterations per epoch)."""
    dataset = dict(
        type='SklearnDigitsDataset',
        split='train',
        indices=n_train,
        pipeline=[dict(type='PackInputs')])
    if max_iters is None:
        train_cfg = dict(by_epoch=True, max_epochs=max_epochs,
                         val_interval=max_epochs)
        ckpt = dict(type='CheckpointHook', interval=ckpt_interval)
    else:
        train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=max_iters)
        ckpt = dict(type='CheckpointHook', interval=ckpt_interval,
                    by_epoch=False)
    cfg = dict(
        default_scope='mmpretrain',
        work_dir=str(work_dir),
        experiment_name=f'art_test_{uuid.uuid4().hex[:10]}',
        model=dict(
            type='ImageClassifier',
            data_preprocessor=dict(
                type='ClsDataPreprocessor',
                num_classes=10,
                mean=[127.5],
                std=[127.5],
                to_rgb=False),
            backbone=dict(type='SmallConvNet', widths=widths,
                          pool_after=(0, 1)),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead',
                num_classes=10,
                in_channels=widths[-1],
                loss=dict(type='CrossEntropyLoss'),
                cal_acc=cal_acc)),
        train_dataloader=dict(
            batch_size=24,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dataset),
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=optimizer or dict(
            type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)),
        param_scheduler=param_scheduler,
        custom_hooks=copy.deepcopy(hooks),
        default_hooks=dict(
            checkpoint=ckpt, logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='INFO')
    if val:
        cfg.update(
            val_dataloader=dict(
                batch_size=64,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(
                    type='SklearnDigitsDataset',
                    split='test',
                    indices=64,
                    pipeline=[dict(type='PackInputs')])),
            val_evaluator=dict(type='Accuracy', topk=(1, )),
            val_cfg=dict())
        train_cfg['val_interval'] = 1
    return cfg


def build_runner(cfg, **overrides) -> Runner:
    cfg = copy.deepcopy(cfg)
    cfg.update(overrides)
    cfg['experiment_name'] = f'art_test_{uuid.uuid4().hex[:10]}'
    return Runner.from_cfg(Config(cfg))


def train(cfg, **overrides) -> Runner:
    runner = build_runner(cfg, **overrides)
    runner.train()
    return runner


def get_hook(runner, cls):
    return next(h for h in runner.hooks if isinstance(h, cls))


def unwrap(model):
    return model.module if hasattr(model, 'module') else model


def hook_summary(hook) -> dict:
    """Comparable view of an ARTHook's state (masks as lists)."""
    state = hook.state_dict()
    return dict(
        phase=state['phase'],
        art_step=state['art_step'],
        lambda_=hook.lambda_,
        window=state['window'],
        history=state['history'],
        switch_info=state['switch_info'],
        switch_unit=state['switch_unit'],
        masks=None if state['masks'] is None else
        {k: v.tolist()
         for k, v in state['masks'].items()})


def weights_of(runner, params_only=False) -> dict:
    model = unwrap(runner.model)
    items = (model.named_parameters()
             if params_only else model.state_dict().items())
    return {
        k: v.detach().clone()
        for k, v in items if torch.is_floating_point(v)
    }
