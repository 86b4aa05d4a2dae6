#!/usr/bin/python3
"""Build the PyTorch-exported ONNX fixtures that nets/pytorch_test.go checks.

Run from this directory with Debian's interpreter (it has torch and onnx):

    /usr/bin/python3 make_fixtures.py

For every model NAME it writes
    NAME.onnx           the exported model,
    NAME.expected.npy   float32 logits [64,10] of the PyTorch model in eval mode,
    NAME.expected64.npy float64 logits [64,10]: PyTorch in double precision with the
                        weights read back from NAME.onnx (so exactly the file's
                        float32 values), the reference a float64 engine must match
                        to rounding error;
    NAME.loss64.npy     float64 [8]: per-sample cross-entropy of that double model
                        on the first 8 inputs, at labels (argmax + 1) mod 10;
    NAME.grad64.npy     float64 [8,1,28,28]: the gradients of those losses in the
                        inputs (autograd);
and once, inputs.npy: float32 [64,1,28,28] in [0,1] (see input_images).

Everything is seeded, so re-running reproduces the files (up to the byte layout
of the ONNX protobuf, which depends on the torch version).
"""

import copy
import io
import os
import sys
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "mnist-test-1k.npy")
LABELS = os.path.join(HERE, "..", "mnist-test-1k-labels.npy")
N = 64
NGRAD = 8
SEED = 20240601


class Normalize(nn.Module):
    """(x - mean) / std with MNIST's statistics: exported as Sub and Div nodes whose
    second inputs are constant tensors (the buffers)."""

    def __init__(self, mean=0.1307, std=0.3081):
        super().__init__()
        self.register_buffer("mean", torch.tensor([mean], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([std], dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean) / self.std


def mlp(dropout=None):
    layers = [Normalize(), nn.Flatten(), nn.Linear(784, 64), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)]
    return nn.Sequential(*layers)


def cnn():
    # 28 -conv5 pad2-> 28 -maxpool2-> 14 -conv4 s2 pad1-> 7 -avgpool2-> 3 (floor)
    return nn.Sequential(
        Normalize(),
        nn.Conv2d(1, 8, kernel_size=5, stride=1, padding=2),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, kernel_size=4, stride=2, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 3 * 3, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


def input_images():
    """The first 64 MNIST test images and their labels if ../mnist-test-1k.npy and
    ../mnist-test-1k-labels.npy exist, else seeded uniform [0,1] noise and seeded
    random labels. Returns (float32 array [64,1,28,28], int64 labels [64],
    description)."""
    if os.path.exists(MNIST) and os.path.exists(LABELS):
        a = np.asarray(np.load(MNIST)[:N], dtype=np.float32).reshape(N, 1, 28, 28)
        if a.max() > 1.0:  # stored as bytes 0..255
            a = a / np.float32(255.0)
        assert 0.0 <= a.min() and a.max() <= 1.0
        y = np.asarray(np.load(LABELS)[:N], dtype=np.int64)
        return a, y, "the first 64 images of ../mnist-test-1k.npy, fitted to their labels"
    g = torch.Generator().manual_seed(SEED + 1)
    return (torch.rand(N, 1, 28, 28, generator=g).numpy(),
            torch.randint(0, 10, (N,), generator=g).numpy(),
            "seeded uniform [0,1] noise (../mnist-test-1k.npy was absent), fitted "
            "to seeded random labels")


def init(model, x, labels, steps=150):
    """Seeded default initialisation, then a short fit (Adam, train mode) of the
    labels of the inputs: random weights alone map all inputs to one or two classes,
    and the fit spreads the predictions over the classes with clear margins. It also
    gives BatchNorm non-trivial running statistics and affine parameters."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), labels).backward()
        opt.step()
    model.eval()
    return model


def export(model, x, path, opset, mode, fold, dynamic):
    kw = dict(opset_version=opset, do_constant_folding=fold, training=mode,
              input_names=["input"], output_names=["logits"])
    if dynamic:
        kw["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, f, **kw)
    return onnx.load_from_string(f.getvalue())


def dropout_to_inference(m):
    """torch 1.13 drops nn.Dropout from eval-mode exports, so the dropout fixture is
    exported in training mode (giving PyTorch's own Dropout node with its ratio and
    training_mode inputs) and training_mode is then set to false: the node becomes
    the identity, exactly nn.Dropout in eval mode. The model has no BatchNorm, so
    training-mode export changes nothing else."""
    consts = {n.output[0]: n for n in m.graph.node if n.op_type == "Constant"}
    count = 0
    for n in m.graph.node:
        if n.op_type != "Dropout":
            continue
        assert len(n.input) == 3, n
        c = consts[n.input[2]]
        c.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array(False), c.output[0]))
        count += 1
    assert count == 1, count
    return m


def float64_model(model, m):
    """Returns a double-precision copy of model, in eval mode, whose parameters are
    read back from the ONNX graph m (so Conv weights with BatchNorm folded in are
    the file's values)."""
    vals = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    alias = {}
    for n in m.graph.node:
        if n.op_type == "Constant":
            vals[n.output[0]] = onnx.numpy_helper.to_array(n.attribute[0].t)
        elif n.op_type == "Identity":
            alias[n.output[0]] = n.input[0]

    def val(name):
        while name in alias:
            name = alias[name]
        return torch.from_numpy(np.array(vals[name], dtype=np.float64))

    ref = copy.deepcopy(model).double().eval()
    mods = {t: [mod for mod in ref.modules() if isinstance(mod, t)]
            for t in (Normalize, nn.Conv2d, nn.Linear, nn.BatchNorm2d)}
    kinds = {"Sub": Normalize, "Div": Normalize, "Conv": nn.Conv2d, "Gemm": nn.Linear,
             "BatchNormalization": nn.BatchNorm2d}
    used = {t: 0 for t in mods}
    with torch.no_grad():
        for n in m.graph.node:
            t = kinds.get(n.op_type)
            if t is None:
                continue
            mod = mods[t][used[t]]
            if n.op_type == "Sub":
                mod.mean.copy_(val(n.input[1]))
                continue
            if n.op_type == "Div":
                mod.std.copy_(val(n.input[1]))
                used[t] += 1
                continue
            used[t] += 1
            if n.op_type == "BatchNormalization":
                for attr in n.attribute:
                    if attr.name == "epsilon":
                        mod.eps = attr.f
                mod.weight.copy_(val(n.input[1]))
                mod.bias.copy_(val(n.input[2]))
                mod.running_mean.copy_(val(n.input[3]))
                mod.running_var.copy_(val(n.input[4]))
            else:
                mod.weight.copy_(val(n.input[1]))
                mod.bias.copy_(val(n.input[2]))
    for t, ms in mods.items():
        if t is nn.BatchNorm2d and used[t] == 0:
            # folded into the preceding Conv by the exporter: BN is the identity now.
            for name, child in list(ref.named_children()):
                if isinstance(child, nn.BatchNorm2d):
                    setattr(ref, name, nn.Identity())
            continue
        assert used[t] == len(ms), (t, used[t], len(ms))
    return ref


def loss_grad(ref, x, labels):
    """Per-sample cross-entropy losses of ref at x and their gradients in x."""
    x = torch.from_numpy(x).double().requires_grad_()
    loss = nn.functional.cross_entropy(ref(x), torch.from_numpy(labels), reduction="none")
    loss.sum().backward()  # eval mode: samples are independent
    return loss.detach().numpy(), x.grad.numpy()


# name, builder, opset, export mode, constant folding, dynamic batch
EVAL = torch.onnx.TrainingMode.EVAL
PRESERVE = torch.onnx.TrainingMode.PRESERVE  # keeps BatchNorm as a node (no Conv fusion)
TRAINING = torch.onnx.TrainingMode.TRAINING
FIXTURES = [
    ("mlp_op9", lambda: mlp(), 9, EVAL, True, True),
    ("mlp_dropout_op13", lambda: mlp(dropout=0.25), 13, TRAINING, False, True),
    ("cnn_bn_op11", cnn, 11, PRESERVE, False, False),
    ("cnn_fused_op13", cnn, 13, EVAL, True, True),
    ("cnn_bn_op17", cnn, 17, PRESERVE, False, True),
]


def main():
    os.chdir(HERE)
    x, labels, source = input_images()
    np.save("inputs.npy", x)
    xt, yt = torch.from_numpy(x), torch.from_numpy(labels)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}; inputs: {source}")
    for i, (name, build, opset, mode, fold, dynamic) in enumerate(FIXTURES):
        torch.manual_seed(SEED + 100 * i)
        model = init(build(), xt, yt)
        with torch.no_grad():
            y32 = model(xt).numpy()
        dummy = xt[:1] if not dynamic else xt[:2]
        m = export(model, dummy, name + ".onnx", opset, mode, fold, dynamic)
        if mode is TRAINING:
            m = dropout_to_inference(m)
        onnx.checker.check_model(m)
        onnx.save(m, name + ".onnx")
        ref = float64_model(model, m)
        with torch.no_grad():
            y64 = ref(torch.from_numpy(x).double()).numpy()
        # Gradient reference for the first NGRAD samples, at the label after the
        # predicted one so that the loss gradient is far from zero.
        glabels = (y64[:NGRAD].argmax(1) + 1) % 10
        loss64, grad64 = loss_grad(ref, x[:NGRAD], glabels)
        np.save(name + ".expected.npy", y32.astype(np.float32))
        np.save(name + ".expected64.npy", y64.astype(np.float64))
        np.save(name + ".loss64.npy", loss64.astype(np.float64))
        np.save(name + ".grad64.npy", grad64.astype(np.float64))

        ops = sorted({n.op_type for n in m.graph.node})
        err = np.abs(y32 - y64).max()
        top2 = np.sort(y64, axis=1)[:, -2:]
        gap = (top2[:, 1] - top2[:, 0]).min()
        pred = np.bincount(y64.argmax(1), minlength=10)
        dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
        print(f"{name}: opset {opset}, export {mode.name}, folding {fold}, input {dims}, "
              f"ops {ops}\n  |logit| max {np.abs(y64).max():.3g}, max |f32-f64| {err:.3g}, "
              f"min top-2 gap {gap:.3g}, predictions per class {pred.tolist()}")
        # The fixtures are only useful if float32 rounding cannot flip an argmax and
        # if the predictions differ between samples.
        assert gap > 1e-3 and err < 1e-4 * max(1.0, np.abs(y64).max()), name
        assert (pred > 0).sum() >= 4, name
        assert os.path.getsize(name + ".onnx") < 1 << 20
    if "--versions" in sys.argv:
        print(torch.__version__, onnx.__version__)


if __name__ == "__main__":
    main()
