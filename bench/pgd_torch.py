#!/usr/bin/python3
"""PGD-40 in PyTorch against the shipped MLP, the yardstick for certify's Go PGD
(BenchmarkPGD40MLP1000 in package attacks). Run with Debian's /usr/bin/python3, which
has torch and onnx:

    /usr/bin/python3 bench/pgd_torch.py [--n 1000] [--threads 2] [--repeats 3] [--float64]

The attack is the same as the Go benchmark's: L-inf eps 0.1, 40 steps of 0.01 along
sign(grad) of the cross-entropy, one uniform random start in the eps-ball clipped to
[0,1], projection onto the ball and [0,1] after each step, no early stop; a row
counts as broken if any iterate (the 40 the gradient is taken at, and the last) is
misclassified. The model is testdata/mnist_mlp.onnx, its Gemm weights read with the
onnx package into an nn.Sequential; the data are the first --n images of
testdata/mnist-test-1k.npy.

Prints the wall time of each repeat (after one warm-up run) and the robust accuracy
(correct and never misclassified). float32 by default, as PyTorch users run it;
--float64 computes in double precision like certify.

OpenBLAS is kept to one thread (as in testdata/pytorch/bench_torch.py: on 2 cores
its pool fights torch's own); --threads sets torch's.
"""

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before torch loads OpenBLAS

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnx.numpy_helper  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def load_mlp(path, dtype):
    """nn.Sequential of the ONNX graph's Flatten, Gemm (transB=1) and Relu nodes."""
    m = onnx.load(path)
    init = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    layers = []
    for node in m.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Flatten":
            if attrs.get("axis", 1) != 1:
                raise ValueError("Flatten axis %s" % attrs.get("axis"))
            layers.append(nn.Flatten())
        elif node.op_type == "Gemm":
            if attrs.get("transA", 0) or not attrs.get("transB", 0) or attrs.get("alpha", 1) != 1 or attrs.get("beta", 1) != 1:
                raise ValueError("Gemm %s: want transB=1, alpha=beta=1" % node.name)
            w, b = init[node.input[1]], init[node.input[2]]
            lin = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.array(w)))
                lin.bias.copy_(torch.from_numpy(np.array(b)))
            layers.append(lin)
        elif node.op_type == "Relu":
            layers.append(nn.ReLU())
        else:
            raise ValueError("unsupported op %s" % node.op_type)
    return nn.Sequential(*layers).to(dtype).eval()


def pgd(model, x, y, eps, step, steps, gen):
    """Returns a bool tensor: row broken by some iterate."""
    lo, hi = torch.clamp(x - eps, 0, 1), torch.clamp(x + eps, 0, 1)
    adv = x + (torch.rand(x.shape, generator=gen, dtype=x.dtype) * 2 - 1) * eps
    adv = torch.max(torch.min(adv, hi), lo)
    broken = torch.zeros(x.shape[0], dtype=torch.bool)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    for _ in range(steps):
        adv.requires_grad_(True)
        logits = model(adv)
        loss = loss_fn(logits, y)
        (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            broken |= logits.argmax(1) != y
            adv = adv.detach() + step * grad.sign()
            adv = torch.max(torch.min(adv, hi), lo)
    with torch.no_grad():
        broken |= model(adv).argmax(1) != y
    return broken


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--step", type=float, default=0.01)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--float64", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dtype = torch.float64 if a.float64 else torch.float32
    model = load_mlp(os.path.join(ROOT, "testdata/mnist_mlp.onnx"), dtype)
    x = torch.from_numpy(np.load(os.path.join(ROOT, "testdata/mnist-test-1k.npy"))[: a.n]).to(dtype)
    y = torch.from_numpy(np.load(os.path.join(ROOT, "testdata/mnist-test-1k-labels.npy"))[: a.n]).long()
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    gen = torch.Generator().manual_seed(1)
    pgd(model, x, y, a.eps, a.step, a.steps, gen)  # warm-up
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        broken = pgd(model, x, y, a.eps, a.step, a.steps, gen)
        times.append(time.perf_counter() - t0)
    robust = (correct & ~broken).sum().item()
    print("torch %s, %s, %d threads: PGD-%d (step %g, eps %g) on %d images: %s s (best %.3f s); clean %d/%d, robust %d/%d"
          % (torch.__version__, "float64" if a.float64 else "float32", a.threads, a.steps, a.step, a.eps, a.n,
             " ".join("%.3f" % t for t in times), min(times), correct.sum().item(), a.n, robust, a.n))


if __name__ == "__main__":
    main()
