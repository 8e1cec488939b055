"""Design gate of the hard toy benchmark (how the JSON files next to it were made; single runs).

    python tools/misc/make_toy_ytvis.py --mode hard --out data/toy_ytvis21_hard --num-videos 400 \
        --num-frames 6 --heldout-ratio 0.5 --convert
    python tools/train.py configs/toy/mask2former_vit_toy-ytvis21_hard.py \
        --work-dir work_dirs/vpp_gate/v4_dense --cfg-options train_cfg.max_iters=400 randomness.seed=0 \
        train_cfg.val_interval=401 val_cfg=None val_dataloader=None val_evaluator=None
    GATE_PRE=work_dirs/vpp_gate/v4_dense/iter_400.pth OMP_NUM_THREADS=1 \
        python projects/vpp/results/toy_hard/gate/gate.py dense random:100 densefine:100 temporal:100 report

Uses the functions of projects/vpp/run_toy_comparison.py (train, test, held-out ground truth) and the
paired bootstrap over videos. A record of the gate, not a maintained tool.
"""
import importlib.util, json, os, os.path as osp, sys, time  # noqa: E401
ROOT = osp.abspath(osp.join(osp.dirname(__file__), *[osp.pardir] * 5))
sys.path.insert(0, ROOT)
spec = importlib.util.spec_from_file_location('rtc', osp.join(ROOT, 'projects/vpp/run_toy_comparison.py'))
rtc = importlib.util.module_from_spec(spec); spec.loader.exec_module(rtc)
from mmsparse.evaluation.functional.ytvis_bootstrap import YTVISVideoRecords, bootstrap_ap_difference
from mmsparse.utils.stats import format_diff
rtc.THREADS['OMP_NUM_THREADS'] = '1'
work = osp.join(ROOT, 'work_dirs/vpp_gate')
data_root = 'data/toy_ytvis21_hard/'
opts = rtc.data_options(data_root)
gt = rtc.heldout_gt(osp.join(ROOT, data_root))
N = int(os.environ.get('GATE_VIDEOS', '0'))
if N:
    order = [v['id'] for v in json.load(open(osp.join(ROOT, data_root, 'annotations/youtube_vis_2021_heldout.json')))['videos']][:N]
    keep = set(order)
    gt = dict(gt, videos=[v for v in gt['videos'] if v['id'] in keep], annotations=[a for a in gt['annotations'] if a['video_id'] in keep])
    opts = opts + [f'test_dataloader.dataset.indices={N}']
steps = sys.argv[1:]
out = {}
def evaluate(name, config, ckpt, extra=()):
    path = osp.join(work, name + '.json')
    if osp.exists(path):
        return json.load(open(path))
    metrics, preds, took = rtc.test(config, ckpt, osp.join(work, name), opts + list(extra))
    rec = YTVISVideoRecords.from_predictions(gt, preds)
    res = dict(name=name, **rec.stats(), metric_ap=metrics['youtube_vis/segm_mAP'],
               fg_recall=metrics.get('vpp_fg_recall', 1.0), pkr=metrics.get('vpp_pkr', 1.0),
               test_seconds=took, records=rec.to_dict())
    json.dump(res, open(path, 'w'))
    print(name, {k: v for k, v in res.items() if k != 'records'}, flush=True)
    return res
pre = os.environ.get('GATE_PRE', osp.join(work, 'dense_pretrain', 'iter_300.pth'))
res = {}
for step in steps:
    if step == 'dense':
        res['dense'] = evaluate(os.environ.get('GATE_DENSE_NAME', 'dense_test'), rtc.DENSE, pre)
    elif step.startswith('random') or step.startswith('temporal') or step.startswith('densefine'):
        sel, iters = step.split(':')
        iters = int(iters)
        if sel == 'densefine':
            cfg, extra = rtc.DENSE, []
        else:
            cfg, extra = rtc.SCHEDULES['single']['config'], [f'model.backbone.selector={sel}']
        ckpt, took = rtc.train(cfg, osp.join(work, f'{sel}_{iters}'), iters, opts + extra, 0, load_from=pre)
        print(step, 'train seconds', took, flush=True)
        res[sel] = evaluate(f'{sel}_{iters}_test', cfg, ckpt, extra)
    elif step == 'report':
        rows = {osp.basename(p)[:-5]: json.load(open(p)) for p in __import__('glob').glob(osp.join(work, '*_test.json'))}
        recs = {k: YTVISVideoRecords.from_dict(v['records']) for k, v in rows.items()}
        for k, v in rows.items():
            print(k, 'AP %.3f AP50 %.3f AP75 %.3f metric %.3f fg %.3f pkr %.3f test %.0fs' % (v['AP'], v['AP50'], v['AP75'], v['metric_ap'], v['fg_recall'], v['pkr'], v['test_seconds']))
        ref = [k for k in rows if k.startswith('densefine')] or ['dense_test']
        for r in ref:
            for k in rows:
                if k != r:
                    d = bootstrap_ap_difference(recs[k], recs[r], n_boot=1000)
                    print(f'{k} - {r}: AP {format_diff(d, scale=100, digits=1)}')
