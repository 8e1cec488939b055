# Shared by the rows of the ART VIS experiment (projects/hypersparse/run_vis_toy.py):
# every row fine-tunes the trained dense hard-toy model (load_from) for the
# same 400 iterations with the base's lr schedule.
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
# image; HyperSparse's global quantile would push the whole backbone to zero
# in the same way (projects/hypersparse/run_vis_toy.py --calibrate lists the
# layers).
_base_ = '../../toy/mask2former_vit_toy-ytvis21_hard.py'

load_from = 'work_dirs/vpp_toy_benchmark/dense_pretrain/iter_2000.pth'
max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# the ViT blocks only (prune_only of every row's hook), minus the hooks'
# default exclusions
vit_blocks = ['^backbone\\.blocks\\.']
