"""Write the toy YouTube-VIS 2021 set (raw layout) and optionally convert it.

    python tools/misc/make_toy_ytvis.py --out data/toy_ytvis21 --convert

writes ``data/toy_ytvis21/train/{JPEGImages,instances.json}`` and, with
``--convert``, ``data/toy_ytvis21/annotations/youtube_vis_2021_{train,train_sub,
heldout}.json`` (held-out ratio 0.2 by default), the files the toy configs use.

    python tools/misc/make_toy_ytvis.py --mode hard --out data/toy_ytvis21_hard \
        --num-videos 400 --num-frames 6 --heldout-ratio 0.5 --convert

writes the hard set of the VPP toy benchmark (``configs/toy/*hard*.py``): moving
unannotated look-alikes (ring, cross, hollow triangle) in the colours of the classes.

    python tools/misc/make_toy_ytvis.py --mode closure --out data/toy_ytvis21_closure \
        --num-videos 400 --num-frames 6 --heldout-ratio 0.5 --convert

writes the closure set: closed outlines (the objects, masks = filled interiors) among
open outlines and scribbles drawn with the same stroke on one texture, so that a single
patch tells little about objects (``tools/analysis_tools/toy_patch_probe.py`` measures how
little).
"""
import argparse
import time

from mmsparse.datasets.toy_ytvis import TOY_YTVIS_MODES, make_toy_ytvis
from mmsparse.datasets.ytvis_convert import convert_youtubevis


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate the toy YouTube-VIS 2021 set')
    parser.add_argument('--out', default='data/toy_ytvis21', help='dataset root to write')
    parser.add_argument('--num-videos', type=int, default=48, help='annotated train videos')
    parser.add_argument('--num-frames', type=int, default=8, help='frames per video')
    parser.add_argument('--num-valid-videos', type=int, default=0,
                        help='videos of an unannotated valid split (like the official one)')
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=192)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--mode', choices=TOY_YTVIS_MODES, default='easy',
                        help="'easy' (demo, tests), 'hard' (VPP toy benchmark) or "
                        "'closure' (objects told only by closed outlines)")
    parser.add_argument('--convert', action='store_true',
                        help='also convert to CocoVID json under <out>/annotations')
    parser.add_argument('--heldout-ratio', type=float, default=0.2,
                        help='held-out fraction of train videos when converting')
    parser.add_argument('--split-seed', type=int, default=0, help='seed of the held-out draw')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    summary = make_toy_ytvis(
        args.out, num_videos=args.num_videos, num_frames=args.num_frames, width=args.width,
        height=args.height, seed=args.seed, num_valid_videos=args.num_valid_videos,
        mode=args.mode)
    print(f"toy YouTube-VIS ({args.mode}): {summary['train_videos']} train videos x "
          f"{args.num_frames} frames ({args.width}x{args.height}), "
          f"{summary['instances']} instances, "
          f"{summary['absent_frames']} instance-frames absent (outside or occluded), "
          f'{time.perf_counter() - start:.1f} s')
    for path in summary['files']:
        print(f'wrote {path}')
    if args.convert:
        written = convert_youtubevis(
            args.out, version='2021', heldout_ratio=args.heldout_ratio, seed=args.split_seed)
        for name, path in written.items():
            print(f'wrote {name}: {path}')


if __name__ == '__main__':
    main()
