#!/usr/bin/python3
"""PyTorch CPU throughput for the two architectures of certify's shipped models, as a
yardstick for the Go engine (run with Debian's /usr/bin/python3, which has torch):

    /usr/bin/python3 bench_torch.py [--threads 2] [--seconds 2]

MLP: 784-100-100-10, ReLU.
CNN: Conv(1->16, 4x4, stride 2, pad 1) ReLU, Conv(16->32, 4x4, stride 2, pad 1) ReLU,
     Flatten, Linear(32*7*7 -> 100) ReLU, Linear(100 -> 10).

Reports forward images/s (eval mode, no autograd) at batch 1 and 256, and training
images/s at batch 128 (forward + cross-entropy + backward + SGD step); then forward
images/s at batch 1000 (the batch randomized smoothing samples in) in float32 and in
float64, the precision certify computes in, per wall second and per CPU second. Inputs are
random [0,1] images; the numbers do not depend on the values. Each figure is the best
of 3 timed runs of at least --seconds each, after a warm-up.

Debian's torch does its Linear layers through OpenBLAS (pthreads build), which by
default starts one thread per core beside torch's own OpenMP pool. On 2 cores the
two pools fight: training ran 2-3x slower (MLP 55-73k vs 157-161k images/s, CNN
12k vs 33-35k), while only the large MLP forward gained (b=256: 830-890k vs 620k).
So OpenBLAS is kept to one thread unless OPENBLAS_NUM_THREADS is set, and torch's
--threads are the main parallelism; run with OPENBLAS_NUM_THREADS=2 for the other
setting.
"""

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before torch loads OpenBLAS

import torch  # noqa: E402
import torch.nn as nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(),
                         nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 100), nn.ReLU(),
                         nn.Linear(100, 10))


def rate(step, batch, seconds):
    """Best images/s over 3 runs of step() lasting at least seconds each."""
    for _ in range(3):  # warm-up
        step()
    best = 0.0
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while True:
            step()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= seconds:
                break
        best = max(best, n * batch / dt)
    return best


def rate_cpu(step, batch, seconds):
    """Best images/s and images per CPU second (all threads of the process) over 3
    runs of step() lasting at least seconds each. On a shared machine the second
    figure is the steadier one; torch's OpenMP threads may spin while waiting, which
    counts as CPU time, so it is a lower bound on what idle cores would give."""
    for _ in range(3):  # warm-up
        step()
    best, best_cpu = 0.0, 0.0
    for _ in range(3):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            step()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= seconds:
                break
        dc = time.process_time() - c0
        best = max(best, n * batch / dt)
        best_cpu = max(best_cpu, n * batch / dc)
    return best, best_cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, float32")
    print(f"{'model':<5} {'forward b=1':>14} {'forward b=256':>14} {'train b=128':>14}  (images/s)")
    for name, build in (("MLP", mlp), ("CNN", cnn)):
        model = build()
        model.eval()
        figures = []
        for batch in (1, 256):
            x = torch.rand(batch, 1, 28, 28)

            def fwd():
                with torch.no_grad():
                    model(x)
            figures.append(rate(fwd, batch, args.seconds))
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(128, 1, 28, 28)
        y = torch.randint(0, 10, (128,))

        def train():
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        figures.append(rate(train, 128, args.seconds))
        print(f"{name:<5} " + " ".join(f"{f:>14,.0f}" for f in figures))
    print(f"{'model':<5} {'fwd b=1000 f32':>14} {'f32 per cpu-s':>14} {'fwd b=1000 f64':>14} "
          f"{'f64 per cpu-s':>14}  (images/s, images/CPU-second)")
    for name, build in (("MLP", mlp), ("CNN", cnn)):
        figures = []
        for dtype in (torch.float32, torch.float64):
            model = build().to(dtype)
            model.eval()
            x = torch.rand(1000, 1, 28, 28, dtype=dtype)

            def fwd():
                with torch.no_grad():
                    model(x)
            figures.extend(rate_cpu(fwd, 1000, args.seconds))
        print(f"{name:<5} " + " ".join(f"{f:>14,.0f}" for f in figures))


if __name__ == "__main__":
    main()
