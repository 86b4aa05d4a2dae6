// Package defenses holds the defenses that certify evaluates as models under test:
// training recipes that write an ordinary network (adversarial training,
// distillation, logit pairing, certified training) and model wrappers that put
// something around one or more networks (input transformations, generative
// denoisers, detectors, ensembles and randomisation, gradient-masking exhibits).
//
// A recipe is a Recipe: it trains a nets.Graph in place, so its result is exported
// to ONNX and loaded like any other model. A wrapper is a Model described by a small
// JSON spec file (see Spec and Load) naming its base ONNX model(s) and parameters;
// certify accepts such a file wherever it accepts an .onnx file.
//
// Wrappers whose own gradients are not what an attacker would differentiate (a
// quantiser's gradient is zero, a random model's changes every call, a detector must
// be evaded and fooled at once) implement Adaptive, which names the adaptive attack
// target of Athalye, Carlini & Wagner (ICML 2018) and Tramèr et al. (NeurIPS 2020):
// BPDA through non-differentiable steps, EOT over randomness, the detector and the
// classifier attacked together. Detectors implement Rejecting: a rejected input is
// neither correct nor an adversarial success.
package defenses
