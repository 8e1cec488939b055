"""Cost of the κ-quantile that HyperSparse needs at every step.

Compares a full sort (the reference code), ``torch.kthvalue`` (exact
selection, what mmsparse uses) and a sampled quantile, and shows the rank
error the sampled one would introduce.

Usage:
    python projects/hypersparse/benchmark_quantile.py [--sizes ...]
        [--kappa 0.98] [--threads 1]
"""
import argparse
import math
import time

import torch


def bench(fn, repeat=5):
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--sizes', type=int, nargs='+',
        default=[92_000, 1_860_000, 20_000_000])
    parser.add_argument('--kappa', type=float, default=0.98)
    parser.add_argument('--samples', type=int, default=1 << 18)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f'κ = {args.kappa}, {args.threads} thread(s), '
          f'{args.samples} samples for the sampled quantile\n')
    print('| weights | sort (ms) | kthvalue (ms) | sampled (ms) | '
          'tanh-sum (ms) | sampled rank error |')
    print('|---:|---:|---:|---:|---:|---:|')
    for n in args.sizes:
        w = torch.randn(n, generator=gen).abs()
        k = math.floor(args.kappa * n)
        t_sort = bench(lambda: torch.sort(w)[0][k])
        t_kth = bench(lambda: torch.kthvalue(w, k + 1).values)
        assert torch.sort(w)[0][k] == torch.kthvalue(w, k + 1).values

        def sampled():
            idx = torch.randint(0, n, (args.samples, ), generator=gen)
            return torch.kthvalue(
                w[idx],
                math.floor(args.kappa * args.samples) + 1).values

        t_samp = bench(sampled)
        errors = [abs(float((w < sampled()).float().mean()) - args.kappa)
                  for _ in range(5)]
        t_tanh = bench(lambda: torch.tanh(3.0 * w).sum())
        print(f'| {n:,} | {t_sort:.1f} | {t_kth:.1f} | {t_samp:.1f} | '
              f'{t_tanh:.1f} | {max(errors):.4f} |')


if __name__ == '__main__':
    main()
