"""ARTHook on the toy VIS config (Mask2Former + ViT, iteration-based, loss
criterion): a few real iterations through every phase."""
from art_helpers import get_hook, unwrap
from mmengine.config import Config
from mmengine.runner import Runner

from mmsparse.art import prunable_weights
from mmsparse.engine.hooks import ARTHook

CONFIG = 'configs/art/art_mask2former_vit_toy-ytvis21.py'


def test_art_on_toy_vis(toy_ytvis_root, tmp_path):
    cfg = Config.fromfile(CONFIG)
    for split in ('train', 'val', 'test'):
        cfg.merge_from_dict(
            {f'{split}_dataloader.dataset.data_root': toy_ytvis_root})
    cfg.merge_from_dict({
        'train_cfg.max_iters': 3,
        'train_cfg.val_interval': 100,
        'default_hooks.checkpoint.interval': 100,
        'default_hooks.logger.interval': 1,
    })
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] == 'ARTHook']
    cfg.custom_hooks[0].update(
        warmup=1, interval=1, eval_batches=1, max_art_steps=1,
        min_finetune=0, plot=False)
    cfg.work_dir = str(tmp_path)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    art = get_hook(runner, ARTHook)
    assert art.resolved_criterion == 'loss'
    assert [r['unit'] for r in art.history] == [2]
    assert art.phase == 'finetune' and art.switch_unit == 2
    assert all(r['dense'] > 0 and r['pruned'] > 0 for r in art.history)
    weights = prunable_weights(unwrap(runner.model), art.exclude,
                               prune_only=art.prune_only)
    assert list(weights) == list(art.masks)
    # the config prunes the ViT blocks' linears only (qkv, proj, fc1, fc2 of
    # every block): the head and the pyramid stay dense
    assert weights and all(n.startswith('backbone.blocks.') for n in weights)
    blocks = {n.split('.')[2] for n in weights}
    assert len(blocks) == len(unwrap(runner.model).backbone.blocks)
    assert any(n.endswith('attn.qkv.weight') for n in weights)
    assert any(n.endswith('mlp.fc2.weight') for n in weights)
    # the exclusions keep the patch embedding dense
    patch = dict(unwrap(runner.model).named_parameters())[
        'backbone.patch_embed.proj.weight']
    assert 'backbone.patch_embed.proj.weight' not in weights
    assert int((patch == 0).sum()) == 0
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    total = sum(w.numel() for w in weights.values())
    assert zeros >= round(0.9 * total)
