"""ONNX export of a VAE scoring graph, with the checker, a parity check against PyTorch and the
model cost. Needs torch, onnx and onnxscript (``pip install edgefault[train]``); the device never
imports this module.

Parity tolerance: the score (the number thresholds compare against) may differ between
onnxruntime and PyTorch by at most ``SCORE_RTOL`` relative (max |a - b| / max(|b|, 1e-6) per window);
the other outputs by at most ``OUTPUT_ATOL`` absolute plus ``SCORE_RTOL`` relative.
"""
from __future__ import annotations

import io
import logging
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from edgefault.errors import MissingDependencyError

SCORE_RTOL = 1e-4
OUTPUT_ATOL = 1e-4
OPSET = 18


class ParityError(AssertionError):
    "onnxruntime and PyTorch disagree beyond the stated tolerance."


def _deps():  # type: ignore[no-untyped-def]
    try:
        import onnx
        import onnxruntime as ort
        import torch
    except ImportError as e:
        raise MissingDependencyError(f"ONNX export needs torch, onnx, onnxscript and onnxruntime: "
                                     f"`pip install edgefault[train] onnxscript` ({e})") from None
    return torch, onnx, ort


def session(onnx_bytes: bytes):  # type: ignore[no-untyped-def]
    """An onnxruntime session configured like the device's (edgefault.kinds.base.onnx_session)."""
    from edgefault.kinds.base import onnx_session

    return onnx_session(onnx_bytes)


def mflop_per_window(module: Any, example: Any) -> float:
    """Multiply-adds x 2 of one window through ``module`` (torch FlopCounterMode), in MFLOP."""
    torch, _, _ = _deps()
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(example[:1])
    return float(fc.get_total_flops()) / 1e6


def export_onnx(module: Any, example: Any, output_names: Sequence[str], input_name: str = "spectrum") -> bytes:
    """torch.onnx.export (dynamo) with a dynamic batch axis; returns checked ONNX bytes."""
    torch, onnx, _ = _deps()
    module.eval()
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "torchvision is not installed" notices
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the exporter's own deprecation notices (pytree, treespec) are not ours to fix
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            prog = torch.onnx.export(module, (example,), dynamo=True, input_names=[input_name],
                                     output_names=list(output_names), dynamic_shapes=({0: batch},),
                                     opset_version=OPSET, optimize=True, verbose=False)
    finally:
        logger.setLevel(level)
    model = prog.model_proto
    model.producer_name = "edgefault.export"
    buf = io.BytesIO()
    onnx.save_model(model, buf)
    data = buf.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    return data


def check_parity(onnx_bytes: bytes, module: Any, inputs: np.ndarray, output_names: Sequence[str]
                 ) -> dict[str, Any]:
    """Run the same inputs through onnxruntime and PyTorch; raise ParityError beyond tolerance."""
    torch, _, _ = _deps()
    sess = session(onnx_bytes)
    x = np.ascontiguousarray(inputs, dtype=np.float32)
    got = sess.run(list(output_names), {sess.get_inputs()[0].name: x})
    with torch.no_grad():
        ref = [t.numpy() for t in module(torch.from_numpy(x))]
    report: dict[str, Any] = {"n_windows": int(x.shape[0]), "score_rtol": SCORE_RTOL, "output_atol": OUTPUT_ATOL}
    for name, a, b in zip(output_names, got, ref):
        if a.shape != b.shape:
            raise ParityError(f"output {name}: onnxruntime shape {a.shape}, PyTorch {b.shape}")
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        if name == "score":
            rel = float(np.max(diff / np.maximum(np.abs(b), 1e-6)))
            report["score_max_rel_diff"] = rel
            if not rel <= SCORE_RTOL:
                raise ParityError(f"score: max relative difference {rel:.3g} > {SCORE_RTOL}")
        else:
            bad = diff > OUTPUT_ATOL + SCORE_RTOL * np.abs(b)
            report[f"{name}_max_abs_diff"] = float(diff.max()) if diff.size else 0.0
            if np.any(bad):
                raise ParityError(f"output {name}: max abs difference {diff.max():.3g} beyond "
                                  f"{OUTPUT_ATOL} + {SCORE_RTOL} x |reference|")
    return report


def export_scoring_graph(graph: Any, n_channels: int, n_bins: int, check_inputs: Sequence[np.ndarray],
                         input_name: str = "spectrum"
                         ) -> tuple[bytes, dict[str, Any], float, Callable[[np.ndarray], np.ndarray]]:
    """Export a VAE ScoringGraph: (onnx bytes, parity report, MFLOP per window, score function
    running the exported model in onnxruntime in batches). ``input_name``: the ONNX input's name
    (``spectrum`` or ``waveform``)."""
    torch, _, _ = _deps()
    names = list(graph.output_names)
    xs = [np.asarray(a, dtype=np.float32) for a in check_inputs if len(a)]
    example = torch.from_numpy(xs[0][:2].copy() if xs else np.zeros((2, n_channels, n_bins), np.float32))
    data = export_onnx(graph, example, names, input_name)
    sample = np.concatenate([a[: 256] for a in xs]) if xs else example.numpy()
    # include off-distribution inputs too: scores of faults must match as well as healthy ones
    rng = np.random.default_rng(0)
    # spectra in dB: 6 dB; waveforms: 3 standard deviations of each channel
    spread = 6.0 if input_name == "spectrum" else 3.0 * sample.std(axis=(0, 2), keepdims=True) + 1e-6
    shifted = sample[: 64] + (rng.normal(0, 1.0, size=sample[: 64].shape) * spread).astype(np.float32)
    parity = check_parity(data, graph, np.concatenate([sample, shifted]), names)
    mflop = mflop_per_window(graph, example)
    sess = session(data)

    def scores(x: np.ndarray) -> np.ndarray:
        out = [sess.run(["score"], {input_name: np.ascontiguousarray(x[i:i + 4096], dtype=np.float32)})[0]
               for i in range(0, x.shape[0], 4096)]
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    return data, parity, mflop, scores
