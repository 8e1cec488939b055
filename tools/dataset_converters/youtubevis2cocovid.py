"""Convert raw YouTube-VIS 2019/2021 annotations to CocoVID json (mmdet format).

Same output as mmdet's ``youtubevis2coco.py``, plus validation with clear errors,
a tolerant per-class report and an optional video-level held-out split of train
that keeps ground truth for local evaluation::

    python tools/dataset_converters/youtubevis2cocovid.py \
        -i data/youtube_vis_2021 -o data/youtube_vis_2021/annotations \
        --version 2021 --heldout-ratio 0.15 --seed 0
"""
import argparse
import sys

from mmsparse.datasets.ytvis_convert import YTVIS_VERSIONS, convert_youtubevis


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='YouTube-VIS (raw) to CocoVID json, with an optional held-out split')
    parser.add_argument('-i', '--input', required=True,
                        help='dataset root in the official layout (train/JPEGImages, ...)')
    parser.add_argument('-o', '--output', default=None,
                        help='output directory (default: <input>/annotations)')
    parser.add_argument('--version', choices=YTVIS_VERSIONS, default='2021',
                        help='YouTube-VIS version (2019: <root>/train.json, '
                        '2021: <root>/train/instances.json)')
    parser.add_argument('--heldout-ratio', type=float, default=0.,
                        help='fraction of train videos held out with ground truth '
                        '(writes *_train_sub.json and *_heldout.json); 0 disables')
    parser.add_argument('--seed', type=int, default=0, help='seed of the held-out draw')
    parser.add_argument('--no-check-files', action='store_true',
                        help='skip the check that every frame file exists')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        written = convert_youtubevis(
            args.input, args.output, version=args.version, heldout_ratio=args.heldout_ratio,
            seed=args.seed, check_files=not args.no_check_files)
    except ValueError as e:
        sys.exit(f'error: {e}')
    for name, path in written.items():
        print(f'wrote {name}: {path}')


if __name__ == '__main__':
    main()
