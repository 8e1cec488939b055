# Baseline of the ART VIS experiment (projects/hypersparse/run_vis_toy.py):
# one-shot global magnitude pruning of the trained dense hard-toy model to
# 90 % before the first step (prune_at=0), then the whole 400-iteration
# budget as fine-tuning under the fixed mask. Every row of the experiment
# starts from the same dense checkpoint (load_from) and keeps the base's lr
# schedule (30-iteration warm-up, x0.1 at 80 % of the run).
# Pruned: the linear weights of the 6 ViT blocks (2.65 M), the same set for
# every method of the experiment (prune_only=backbone.blocks, minus the
# hooks' default exclusions). With the defaults alone the pyramid
# and the head are prunable too, and one global magnitude threshold then
# follows the initialisation scale, not importance: the ViT blocks
# (trunc-normal std 0.02, median |w| 0.013-0.015 per layer on the dense
# checkpoint) lie below most of the pyramid's and the head's Xavier/Kaiming-
# initialised layers (median 0.04, 10-90 %: 0.015-0.075), so 90 % global
# sparsity prunes every ViT block to 99.2-99.7 % (30 of 75 layers above 99 %
# on the dense checkpoint iter_2000.pth) and the backbone no longer sees the
# image (projects/hypersparse/run_vis_toy.py --calibrate lists the layers).
_base_ = '../toy/mask2former_vit_toy-ytvis21_hard.py'

load_from = 'work_dirs/vpp_toy_benchmark/dense_pretrain/iter_2000.pth'
max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
custom_hooks = _base_.custom_hooks + [
    dict(
        type='OneShotMagnitudePruningHook',
        target_sparsity=0.9,
        # the ViT blocks only, minus the hooks' default exclusions (see the
        # note above)
        prune_only=['^backbone\\.blocks\\.'],
        by_epoch=False,
        prune_at=0)
]
