"""Cost of the κ-quantile that HyperSparse needs at every step.

Compares a full sort (the reference code), ``torch.kthvalue`` (exact
selection, mmsparse's choice on CPU), the exact bracketed selection
(``mmsparse.art.kth_smallest(method='bracket')``: a strided sample brackets
the rank, ``kthvalue`` runs on the <1 % inside; mmsparse's choice on other
devices, where ``kthvalue`` is single-block, pytorch#75599) and a sampled
quantile, and shows the rank error the sampled one would introduce.
``--device cuda`` times on a GPU.

Usage:
    python projects/hypersparse/benchmark_quantile.py [--sizes ...]
        [--kappa 0.98] [--threads 1]
"""
import argparse
import math
import time

import torch

from mmsparse.art.magnitude import kth_smallest


def bench(fn, repeat=5):
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync()
    return (time.perf_counter() - start) / repeat * 1e3


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--sizes', type=int, nargs='+',
        default=[92_000, 1_860_000, 20_000_000])
    parser.add_argument('--kappa', type=float, default=0.98)
    parser.add_argument('--samples', type=int, default=1 << 18)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f'κ = {args.kappa}, {args.threads} thread(s), device '
          f'{args.device}, {args.samples} samples for the sampled '
          'quantile\n')
    print('| weights | sort (ms) | kthvalue (ms) | bracket (ms) | '
          'sampled (ms) | tanh-sum (ms) | sampled rank error |')
    print('|---:|---:|---:|---:|---:|---:|---:|')
    for n in args.sizes:
        w = torch.randn(n, generator=gen).abs().to(args.device)
        k = math.floor(args.kappa * n)
        t_sort = bench(lambda: torch.sort(w)[0][k])
        t_kth = bench(lambda: torch.kthvalue(w, k + 1).values)
        t_brk = bench(lambda: kth_smallest(w, k + 1, method='bracket'))
        assert torch.sort(w)[0][k] == torch.kthvalue(w, k + 1).values
        assert kth_smallest(w, k + 1, method='bracket') == \
            torch.kthvalue(w, k + 1).values

        def sampled():
            idx = torch.randint(0, n, (args.samples, ),
                                generator=gen).to(w.device)
            return torch.kthvalue(
                w[idx],
                math.floor(args.kappa * args.samples) + 1).values

        t_samp = bench(sampled)
        errors = [abs(float((w < sampled()).float().mean()) - args.kappa)
                  for _ in range(5)]
        t_tanh = bench(lambda: torch.tanh(3.0 * w).sum())
        print(f'| {n:,} | {t_sort:.1f} | {t_kth:.1f} | {t_brk:.1f} | '
              f'{t_samp:.1f} | {t_tanh:.1f} | {max(errors):.4f} |')


if __name__ == '__main__':
    main()
