#!/usr/bin/python3
"""Reference outputs of the VNN-COMP networks for onnx_vnncomp_test.go.

Run with Debian's /usr/bin/python3 (onnx 1.12, numpy, torch) from the repository root:

    /usr/bin/python3 nets/testdata/vnncomp_outputs.py > nets/testdata/vnncomp_outputs.json

Each network is evaluated in float64 by the small interpreter below, written from the
ONNX operator specifications independently of the Go reader and ops, on the input
x[i] = ((7919*i + 123) mod 1000) / 1000 (flat row-major index i, batch 1, dynamic dims 1).
"""
import glob
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

ROOT = "/work/shared/benchmarks/vnncomp"


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def run(model, x):
    g = model.graph
    vals = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    inits = set(vals)
    data_inputs = [i for i in g.input if i.name not in inits]
    assert len(data_inputs) == 1
    vals[data_inputs[0].name] = x
    for n in g.node:
        ins = [vals[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Constant":
            out = numpy_helper.to_array(attr(n, "value")).astype(np.float64)
        elif op == "MatMul":
            out = np.matmul(ins[0], ins[1])
        elif op == "Add":
            out = ins[0] + ins[1]
        elif op == "Sub":
            out = ins[0] - ins[1]
        elif op == "Div":
            out = ins[0] / ins[1]
        elif op == "Relu":
            out = np.maximum(ins[0], 0)
        elif op == "Sigmoid":
            out = 1 / (1 + np.exp(-ins[0]))
        elif op in ("Dropout", "Identity"):
            out = ins[0]
        elif op == "Flatten":
            axis = attr(n, "axis", 1)
            s = ins[0].shape
            out = ins[0].reshape(int(np.prod(s[:axis])), int(np.prod(s[axis:])))
        elif op == "Gemm":
            a, b = ins[0], ins[1]
            if attr(n, "transA", 0):
                a = a.T
            if attr(n, "transB", 0):
                b = b.T
            out = attr(n, "alpha", 1.0) * (a @ b)
            if len(ins) > 2 and ins[2] is not None:
                out = out + attr(n, "beta", 1.0) * ins[2]
        elif op == "Conv":
            pads = attr(n, "pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:], "asymmetric pads"
            bias = torch.from_numpy(ins[2]) if len(ins) > 2 else None
            out = torch.nn.functional.conv2d(
                torch.from_numpy(ins[0]), torch.from_numpy(ins[1]), bias,
                stride=attr(n, "strides", [1, 1]), padding=pads[:2],
                dilation=attr(n, "dilations", [1, 1]), groups=attr(n, "group", 1)).numpy()
        else:
            raise SystemExit("unsupported op " + op)
        vals[n.output[0]] = out
    return data_inputs[0], vals[g.output[0].name]


def main():
    refs = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "**", "*.onnx"), recursive=True)):
        model = onnx.load(path)
        inp = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}][0]
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                 for d in inp.type.tensor_type.shape.dim]
        n = int(np.prod(shape))
        x = (((7919 * np.arange(n) + 123) % 1000) / 1000.0).reshape(shape)
        _, y = run(model, x)
        refs[os.path.relpath(path, ROOT)] = {"input_shape": shape, "output_shape": list(y.shape),
                                             "output": [float(v) for v in y.ravel()]}
    # One network per line: small diffs when a network changes.
    lines = ["%s: %s" % (json.dumps(k), json.dumps(refs[k])) for k in sorted(refs)]
    sys.stdout.write("{\n" + ",\n".join(lines) + "\n}\n")


if __name__ == "__main__":
    main()
