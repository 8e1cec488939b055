"""Tiny mmpretrain ViT classifier configs for the P3BHook tests."""
import copy

NUM_CLASSES = 5


def tiny_cfg(work_dir: str, hook: dict = None, max_epochs: int = 6,
             ckpt_interval: int = 1, samples: int = 64) -> dict:
    """A 2-layer, 32-dim ViT on 16x16 digits (4 iterations per epoch)."""
    hooks = [] if hook is None else [dict(type='P3BHook', **hook)]
    dataset = dict(type='TransferDigitsDataset', classes=(0, 1, 2, 3, 4),
                   img_size=16, indices=samples,
                   pipeline=[dict(type='PackInputs')])
    loader = dict(batch_size=16, num_workers=0, persistent_workers=False,
                  sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
                  dataset=dataset)
    val_loader = copy.deepcopy(loader)
    val_loader['sampler']['shuffle'] = False
    val_loader['dataset'].update(split='test', indices=32)
    return dict(
        default_scope='mmpretrain',
        work_dir=work_dir,
        model=dict(
            type='ImageClassifier',
            backbone=dict(
                type='VisionTransformer',
                arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                          feedforward_channels=64),
                img_size=16,
                patch_size=4),
            neck=None,
            head=dict(type='VisionTransformerClsHead',
                      num_classes=NUM_CLASSES, in_channels=32,
                      loss=dict(type='CrossEntropyLoss')),
            data_preprocessor=dict(num_classes=NUM_CLASSES,
                                   mean=[127.5] * 3, std=[127.5] * 3,
                                   to_rgb=False)),
        train_dataloader=loader,
        val_dataloader=val_loader,
        val_evaluator=dict(type='Accuracy', topk=(1, )),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=2e-3)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs,
                       val_interval=max_epochs),
        custom_hooks=hooks,
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=ckpt_interval),
            logger=dict(type='LoggerHook', interval=50)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0),
        log_level='WARNING')


#: prune from epoch 1, goal at epoch 3, hard masks + slim at epoch 5; no
#: width rounding (32 dims) so that the budget can be checked tightly
HOOK = dict(keep_ratio=0.5, prune_start=1, prune_sparse=3, prune_finalize=5,
            update_interval=2, width_multiple=1)


def p3b_hook(runner):
    from mmsparse.engine.hooks import P3BHook
    return next(h for h in runner.hooks if isinstance(h, P3BHook))
