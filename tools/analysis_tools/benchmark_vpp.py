"""Dense vs VPP schedules side by side: FLOPs and wall-clock per frame.

    python tools/analysis_tools/benchmark_vpp.py CONFIG
        [--schedules dense config 1:0.4 1:0.7,3:0.56,6:0.448,9:0.358
                     config@keepset config@reuse config@image ...]
        [--keep-ratios 1.0 0.4 ...] [--shape 368 640] [--frames 4]
        [--repeat 5] [--model-repeat N] [--threads N] [--device cpu]
        [--out work_dirs/benchmark/vpp.json] [--checkpoint CKPT]
        [--cfg-options k=v ...] [--verbose]

CONFIG is a VPP config (``model.backbone.type='VPPBackbone'``). Every row is
a *schedule*, built with ``model.backbone.prune_layer`` /
``model.backbone.keep_ratio`` set from it:

* ``dense``: keep ratio 1.0 (the wrapped dense backbone, bit-exact);
* ``config``: the config's own schedule (one or several stages);
* ``L:r[,L:r...]``: stages, e.g. ``1:0.4`` (one stage at block 1) or the
  paper's ViT-S schedule ``1:0.7,3:0.56,6:0.448,9:0.358``.

``--keep-ratios r ...`` is short for one stage per ratio at the config's
first pruning block (1.0 = ``dense``). Default rows: ``dense config``.

A schedule may end in ``@DECODER`` to swap the pixel decoder of that row
(set on top of the config; give the plain VPP config):

* ``@keepset``: :class:`~mmsparse.models.vis.KeepSetPixelDecoder`, the
  encoder updates only the queries at VPP's kept positions;
* ``@reuse``: the same, positions not updated take the previous frame's
  encoder output (the same work per frame);
* ``@image``: the same decoder, positions chosen by an image score.

Two ways to run a video, both measured (per frame):

* **streaming**: one frame at a time, batch 1, as a frame arrives. Dense:
  ``backbone(frame)``; VPP: a *pruned* frame in steady state (its prior from
  the frame before). This is the setting of the paper's claim (online VIS,
  frame t needs frame t-1) and what FLOPs per pruned frame describe.
* **offline**: a whole ``--frames`` clip at once. Dense: one forward batched
  over the clip; VPP: the clip frame by frame at batch 1 (it cannot batch:
  frame t's selection needs frame t-1), frame 0 dense. On a GPU, batch-1
  steps are launch-bound, so the streaming speed-up need not carry over.

Also per row: the patches every block processes in a pruned frame (the PKR is
their mean / N), FLOPs and time of the ViT part alone (embedding, blocks,
norm; timed with the pyramid left out) and of the pyramid, which runs on the
full grid whatever is pruned; the whole model per frame (streaming backbone
+ ``track_head.predict`` on a ``--frames`` clip / frames, every frame of the
clip pruned as in steady state, with the keep sets of a pruned frame; only a
keep-set pixel decoder reads them). The whole model is also split into
parts (the profile, per frame): backbone, pixel-decoder input projections,
deformable encoder (the rest of the pixel decoder: position encodings,
reference points, keep-set gather/scatter included), FPN and mask features,
transformer decoder (the head's forward minus the pixel decoder) and
post-processing (``predict`` minus the forward), timed with module hooks
inside the timed runs; FLOPs per part beside them. The timings are
interleaved (one run of every row per
round, median over rounds, every run in the JSON) so that load changes on a
shared machine hit all rows alike.

FLOPs use ``mmengine.analysis`` (fvcore convention, 1 multiply-add = 1 FLOP)
with the attention switched to its explicit matmul path while counting
(fused SDPA has no counter); the timed runs use the fused path. The ideal
speed-up (dense FLOPs / FLOPs) is printed beside the measured one.

``--checkpoint`` (e.g. the VPP fine-tune) goes into every row; the dense row
has no selectors, so it skips the checkpoint's selector tensors with one line
saying how many (other mismatched keys are reported as usual).

The command line lives in :mod:`mmsparse.utils.vpp_benchmark_cli`, so that
``benchmark.py`` hands a VPP config over to it by import.
"""
from mmsparse.utils.vpp_benchmark_cli import main

if __name__ == '__main__':
    main()
