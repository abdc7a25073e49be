"""PyTorch side of scripts/bench-gemm: the same GPT-2-small products, same output format.

Prints tab-separated lines like eqbench-gemm: impl, shape, M, N, K, transB, unit, rate,
seconds, check. Timing: one warm-up call, then at least --reps calls and --min-seconds,
best time reported (as eqbench-gemm does).
"""
import argparse
import time

import torch

SHAPES = [
    ("attn.c_attn", 1024, 2304, 768, False),
    ("attn.c_proj", 1024, 768, 768, False),
    ("mlp.c_fc", 1024, 3072, 768, False),
    ("mlp.c_proj", 1024, 768, 3072, False),
    ("logits", 1024, 50257, 768, True),
]


def best(fn, reps, min_seconds, clock=time.perf_counter):
    fn()
    times, total = [], 0.0
    while len(times) < reps or total < min_seconds:
        t0 = clock()
        fn()
        t = clock() - t0
        times.append(t)
        total += t
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with process CPU time (meaningful with --threads 1 on a shared machine)")
    args = ap.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name, m, n, k, trans_b in SHAPES:
        ops = 2.0 * m * n * k
        a = torch.rand(m, k) * 2 - 1
        # The logits product multiplies by the (vocab × hidden) embedding, transposed.
        b = (torch.rand(n, k) * 2 - 1).t() if trans_b else torch.rand(k, n) * 2 - 1
        c = torch.empty(m, n)
        t = best(lambda: torch.matmul(a, b, out=c), args.reps, args.min_seconds, clock)
        print(f"torch-f32\t{name}\t{m}\t{n}\t{k}\t{'T' if trans_b else 'N'}\tGFLOP/s\t{ops / t / 1e9:.1f}\t{t:.4f}\treference", flush=True)

        a8 = torch.randint(-128, 128, (m, k), dtype=torch.int8)
        b8 = torch.randint(-128, 128, (n, k), dtype=torch.int8).t() if trans_b else torch.randint(-128, 128, (k, n), dtype=torch.int8)
        try:
            r = torch._int_mm(a8, b8)
            # Spot-check exactness on a few rows against float64 (exact for these sizes).
            want = (a8[:4].double() @ b8.double()).to(torch.int64)
            check = "exact" if torch.equal(r[:4].to(torch.int64), want) else "MISMATCH"
            t = best(lambda: torch._int_mm(a8, b8), args.reps, args.min_seconds, clock)
            print(f"torch-int_mm\t{name}\t{m}\t{n}\t{k}\t{'T' if trans_b else 'N'}\tGOP/s\t{ops / t / 1e9:.1f}\t{t:.4f}\t{check}", flush=True)
        except Exception as e:  # _int_mm's CPU support and shape rules vary by version
            print(f"# torch._int_mm unavailable for {name}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")


if __name__ == "__main__":
    main()
