"""`edgefault explain`: gradient attribution of a VAE bundle's score, computed offline.

For every window of a recording (or of a time range of it) the window's model input ``x`` is
built exactly as on the device (the bundle's feature pipeline: per-channel spectra, or the raw
window for waveform bundles) and the score's **integrated gradients** with respect to ``x`` are
computed on the differentiable PyTorch graph rebuilt from the bundle
(:func:`edgefault.train.vae.load_scoring_graph`)::

    attr_i = (x_i - b_i) * integral_0^1 d score(b + a (x - b)) / d x_i  da

with the baseline ``b`` = the training mean of every input (``graph.norm.mean``: a typical healthy
input) or zeros. The integral uses Gauss-Legendre quadrature in float64; the attributions then
satisfy **completeness**, ``sum_i attr_i = score(x) - score(b)``, up to the quadrature error, which
is measured for every window and driven under ``tol`` (relative to ``|score(x) - score(b)|``, with
an absolute floor) by doubling the number of nodes for the windows that miss it (the network is
piecewise smooth: ReLU). ``method="gradxinput"`` gives the cheaper ``(x - b) * grad score(x)``
(no completeness).

Attributions are summed per channel, per channel x band (spectrum input: the bundle's
``band_edges``, the same groups and names as the device's ``contrib``) or per channel x time
segment (waveform input: ``segment_edges``), and reported per window and averaged over all and
over the above-threshold windows.

Needs the ``[train]`` extra (torch); torch is imported only when attribution runs.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefault.errors import BundleError, InputError

__all__ = ["explain_windows", "explain_recording", "window_inputs"]


def _graph(bundle: Any) -> Any:
    """The bundle's differentiable scoring graph, from its model kind (InputError when the kind has none)."""
    from edgefault import kinds

    graph = kinds.get(bundle.kind).scoring_graph(bundle)  # MissingDependencyError naming the install
    if graph is None:
        with_graph = [k.name for k in kinds.kinds() if type(k).scoring_graph is not kinds.ModelKind.scoring_graph]
        raise InputError(f"bundle {bundle.path or bundle.bundle_id} is a {bundle.kind!r} model; explain computes "
                         f"gradient attribution for {', '.join(map(repr, with_graph))} bundles only (other models: the score's own "
                         f"`contrib`)")
    return graph


def window_inputs(bundle: Any, data: np.ndarray, scale: float = 1.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs of every window of ``data`` (n_samples, n_channels) as the device computes them.

    Returns (x (m, n_channels, n_inputs) float32 of the finite windows, end frame of every window
    (m_all,), finite mask (m_all,))."""
    spec = bundle.spec
    inp = str(bundle.model.get("input", "spectrum"))
    waveform = inp == "waveform"
    x = np.ascontiguousarray(data, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != spec.n_channels:
        raise InputError(f"recording has shape {x.shape}, the bundle expects (n_samples, {spec.n_channels}) "
                         f"for channels {list(spec.channels)}")
    feats, ends, finite, raw = spec.pipeline().push(x if spec.n_channels > 1 else x[:, 0], float(scale),
                                                    not waveform, waveform)
    finite = np.asarray(finite, dtype=bool)
    src = np.asarray(raw if waveform else feats)
    m = int(np.asarray(ends).shape[0])
    c = spec.n_channels
    vals = src[:m].reshape(m, c, -1)[finite]
    return np.ascontiguousarray(vals, dtype=np.float32), np.asarray(ends, dtype=np.int64), finite


def _edges(bundle: Any, n_in: int) -> tuple[str, np.ndarray]:
    waveform = str(bundle.model.get("input", "spectrum")) == "waveform"
    name = "segment_edges" if waveform else "band_edges"
    try:
        e = np.asarray(bundle.array(name)).astype(np.intp).ravel()
    except Exception:
        e = np.array([0, n_in], dtype=np.intp)
    if e.size < 2 or e[0] != 0 or e[-1] != n_in or np.any(np.diff(e) <= 0):
        raise BundleError(f"bundle {bundle.path or bundle.bundle_id}: {name} must increase from 0 to {n_in}")
    return ("time" if waveform else "band"), e


def _group_names(bundle: Any, edges: np.ndarray, group: str) -> list[str]:
    """channel x group names, as the device's ``contrib`` names them."""
    chans = list(bundle.spec.channels)
    if group == "time":
        return [f"{c}.seg{g:02d}_{edges[g]}_{edges[g + 1]}" for c in chans for g in range(edges.size - 1)]
    try:
        from edgefault.kinds import device_model

        names = list(device_model(bundle).contrib_names)[: len(chans) * (edges.size - 1)]
        if len(names) == len(chans) * (edges.size - 1):
            return names
    except Exception:  # no onnxruntime: generic names
        pass
    return [f"{c}.band{g:02d}_in{edges[g]}_{edges[g + 1]}" for c in chans for g in range(edges.size - 1)]


def explain_windows(graph: Any, x: np.ndarray, *, baseline: str | np.ndarray = "mean", method: str = "ig",
                    steps: int = 32, tol: float = 1e-3, max_steps: int = 512,
                    batch_values: int = 2_000_000) -> dict[str, np.ndarray]:
    """Attributions of the score of ``graph`` (a ScoringGraph) for inputs ``x`` (m, C, F).

    Returns ``attr`` (m, C, F), ``score`` (m,) = score(x), ``baseline_score`` (m,),
    ``completeness_error`` (m,) = sum(attr) - (score - baseline_score), ``steps`` (m,) nodes used."""
    import torch

    if method not in ("ig", "gradxinput"):
        raise InputError(f"attribution method {method!r}: use ig or gradxinput")
    if steps < 1 or max_steps < steps:
        raise InputError(f"steps {steps} / max_steps {max_steps}: need 1 <= steps <= max_steps")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise InputError(f"inputs have shape {x.shape}, expected (windows, channels, values)")
    g = graph.double().eval()
    shape = tuple(x.shape[1:])
    if isinstance(baseline, str):
        if baseline == "mean":
            b = g.norm.mean.detach().double().cpu().numpy()
            b = np.broadcast_to(b, shape).copy()
        elif baseline == "zero":
            b = np.zeros(shape)
        else:
            raise InputError(f"baseline {baseline!r}: use mean or zero")
    else:
        b = np.broadcast_to(np.asarray(baseline, dtype=np.float64), shape).copy()
    m = x.shape[0]
    xt = torch.from_numpy(x)
    bt = torch.from_numpy(b)[None]
    per = max(1, int(np.prod(shape)))

    def score(v: torch.Tensor) -> torch.Tensor:
        return g(v)[0]

    with torch.no_grad():
        s_x = torch.cat([score(xt[i:i + 4096]) for i in range(0, m, 4096)]) if m else torch.zeros(0, dtype=torch.float64)
        s_b = score(bt).expand(m) if m else torch.zeros(0, dtype=torch.float64)
    attr = np.zeros(x.shape)
    used = np.zeros(m, dtype=np.int64)

    def grads_at(points: torch.Tensor) -> torch.Tensor:
        out = []
        chunk = max(1, batch_values // per)
        for i in range(0, points.shape[0], chunk):
            p = points[i:i + chunk].clone().requires_grad_(True)
            (gr,) = torch.autograd.grad(score(p).sum(), p)
            out.append(gr.detach())
        return torch.cat(out) if out else torch.zeros_like(points)

    if method == "gradxinput":
        attr = ((xt - bt) * grads_at(xt)).numpy()
        used[:] = 1
    else:
        todo = np.arange(m)
        s = steps
        while todo.size:
            nodes, weights = np.polynomial.legendre.leggauss(s)
            a = torch.from_numpy((nodes + 1.0) / 2.0)
            w = torch.from_numpy(weights / 2.0)
            for i in range(0, todo.size, max(1, batch_values // (per * s))):
                idx = torch.from_numpy(todo[i:i + max(1, batch_values // (per * s))])
                d = xt[idx] - bt  # (B, C, F)
                pts = (bt[None] + a[:, None, None, None] * d[None]).reshape(-1, *shape)  # (S*B, C, F)
                gr = grads_at(pts).reshape(s, -1, *shape)
                attr[idx.numpy()] = (d * (w[:, None, None, None] * gr).sum(0)).numpy()
            used[todo] = s
            delta = (s_x - s_b).numpy()
            err = np.abs(attr.sum(axis=(1, 2)) - delta)
            bad = err > tol * np.maximum(np.abs(delta), 1e-6)
            if s * 2 > max_steps:
                break
            todo = np.flatnonzero(bad)
            s *= 2
    sx, sb = s_x.numpy(), s_b.numpy()
    return {"attr": attr, "score": sx, "baseline_score": sb,
            "completeness_error": attr.sum(axis=(1, 2)) - (sx - sb), "steps": used}


def explain_recording(bundle_path: str | Path, recording: str | Path, *, start: float | None = None,
                      end: float | None = None, channels: Sequence[str] | None = None, fs: float | None = None,
                      baseline: str = "mean", method: str = "ig", steps: int = 32, tol: float = 1e-3,
                      max_windows: int = 5000, per_window: bool = True, top: int = 5,
                      assume_model_rate: bool = False) -> dict[str, Any]:
    """Attribution report (a JSON-ready dict) for the windows of ``recording`` within [start, end) s.

    ``fs`` is the rate of a recording that stores none; without it (and without a CWRU 12k/48k name)
    such a recording is refused unless ``assume_model_rate=True`` reads it at the bundle's rate."""
    from edgefault.device.bundle import load_bundle
    from edgefault.io.readers import read_recording
    from edgefault.device.runtime import Runtime

    t_begin = time.perf_counter()
    b = load_bundle(bundle_path)
    graph = _graph(b)
    rt = Runtime(b)
    spec = b.spec
    ch = list(channels) if channels else list(spec.channels)
    if len(ch) != spec.n_channels:
        raise InputError(f"--channels names {len(ch)} channels; the bundle expects {spec.n_channels} "
                         f"({list(spec.channels)})")
    rec = read_recording(recording, channels=ch, model_fs=spec.fs, default_fs=fs, assume_model_rate=assume_model_rate)
    data = rec.data
    n = data.shape[0]
    hop = spec.hop
    s0 = 0 if start is None else int(math.ceil(max(start, 0.0) * spec.fs / hop - 1e-9)) * hop  # on the score grid
    s1 = n if end is None else min(n, int(math.ceil(end * spec.fs)))
    if s1 - s0 < spec.window:
        raise InputError(f"time range [{start}, {end}) s of {recording} ({n / spec.fs:.3f} s long) holds no full "
                         f"window of {spec.window / spec.fs:.4g} s")
    x, ends, finite = window_inputs(b, data[s0:s1], rt._scale_for(data))
    t_end = (s0 + ends) / spec.fs
    t_fin = t_end[finite]
    if x.shape[0] == 0:
        raise InputError(f"{recording}: no window in the range has only finite samples")
    if x.shape[0] > max_windows:
        raise InputError(f"{x.shape[0]} windows in the range, more than --max-windows {max_windows}: narrow it "
                         f"with --start/--end or raise --max-windows")
    res = explain_windows(graph, x, baseline=baseline, method=method, steps=steps, tol=tol)
    # the graph must agree with the device (onnxruntime) on these very inputs
    dev = rt.model.score(x.reshape(x.shape[0], -1) if not rt.model.needs_raw else None,
                         x if rt.model.needs_raw else None).scores.astype(np.float64)
    parity = float(np.max(np.abs(dev - res["score"]) / np.maximum(np.abs(dev), 1e-12)))
    if parity > 1e-3:
        raise BundleError(f"bundle {bundle_path}: the rebuilt PyTorch graph scores differ from the device "
                          f"model by {parity:.2e} (relative): the stored weights do not match the ONNX model")
    group, edges = _edges(b, x.shape[2])
    names = _group_names(b, edges, group)
    attr = res["attr"]
    per_group = np.add.reduceat(attr, edges[:-1], axis=2)  # (m, C, G)
    per_ch = attr.sum(axis=2)
    thr = float(b.thresholds.get("threshold", math.inf))
    above = res["score"] > thr

    def agg(mask: np.ndarray) -> dict[str, Any]:
        if not mask.any():
            return {}
        pg = per_group[mask].mean(axis=0)
        out: dict[str, Any] = {"n_windows": int(mask.sum()),
                               "channel": {c: float(v) for c, v in zip(spec.channels, per_ch[mask].mean(axis=0))},
                               group: {nm: float(v) for nm, v in zip(names, pg.ravel())}}
        if group == "time":  # segments summed over channels too
            segs = [nm.split(".", 1)[1] for nm in names[: edges.size - 1]]
            out["time_all_channels"] = {s: float(v) for s, v in zip(segs, pg.sum(axis=0))}
        out["input_mean"] = np.round(attr[mask].mean(axis=0), 8).tolist()  # (C, F): per channel x bin/sample
        return out

    rel = np.abs(res["completeness_error"]) / np.maximum(np.abs(res["score"] - res["baseline_score"]), 1e-12)
    report: dict[str, Any] = {
        "bundle": str(bundle_path), "bundle_id": b.bundle_id, "recording": str(recording),
        "recording_fs": rec.source_fs or rec.fs, "fs_source": rec.fs_source, "rate_warning": rec.rate_warning,
        "channels": list(spec.channels), "input": str(b.model.get("input", "spectrum")),
        "method": "integrated_gradients" if method == "ig" else "gradient_x_input",
        "quadrature": "gauss-legendre" if method == "ig" else None,
        "baseline": baseline, "steps": steps, "max_steps_used": int(res["steps"].max()),
        "time_range": [s0 / spec.fs, s1 / spec.fs], "n_windows": int(x.shape[0]),
        "n_windows_skipped_nonfinite": int((~finite).sum()),
        "threshold": thr if math.isfinite(thr) else None, "n_above_threshold": int(above.sum()),
        "group": group, "group_names": names,
        "completeness": {"max_abs_error": float(np.max(np.abs(res["completeness_error"]))),
                         "max_rel_error": float(rel.max()), "tolerance": tol,
                         "ok": bool(np.all((np.abs(res["completeness_error"]) <= tol * np.maximum(
                             np.abs(res["score"] - res["baseline_score"]), 1e-6)))) if method == "ig" else None},
        "device_parity_max_rel_diff": parity,
        "aggregate": agg(np.ones(x.shape[0], dtype=bool)),
        "aggregate_above_threshold": agg(above),
    }
    if per_window:
        rows = []
        flat = per_group.reshape(x.shape[0], -1)
        for i in range(x.shape[0]):
            order = np.argsort(-flat[i])[:top]
            rows.append({"t": float(t_fin[i]), "t_start": float(t_fin[i] - spec.window / spec.fs),
                         "score": float(res["score"][i]), "baseline_score": float(res["baseline_score"][i]),
                         "attr_sum": float(attr[i].sum()), "above_threshold": bool(above[i]),
                         "channel": {c: float(v) for c, v in zip(spec.channels, per_ch[i])},
                         "top": {names[j]: float(flat[i, j]) for j in order}})
        report["windows"] = rows
    report["seconds"] = round(time.perf_counter() - t_begin, 3)
    return report
