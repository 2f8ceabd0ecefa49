"""Python threads pushing into one Runtime / one core object at once (issue #12).

The core releases the GIL over its mutable state; every stateful object holds its own lock across
a call, so concurrent calls serialise. Checked here: no crash or deadlock, and the windows equal a
serial run of the same chunks in the order the locks admitted them. That order is read back from
the end frames each push returns (every chunk is two hops long, so every push completes a window),
and every chunk is a distinct signal (its own noise and a constant offset), so a window mixed from
the wrong chunks, lost or doubled changes the scores and fails the comparison.
"""
from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from conftest import noise_recording
from edgefault import Runtime, _core
from edgefault.device.bundle import load_bundle

N_THREADS = 8
PUSHES = 12  # per thread
WINDOW, HOP, FS = 256, 128, 4000.0  # the small bundle's framing
CHUNK = 2 * HOP


@pytest.fixture(scope="module")
def chunks() -> list[np.ndarray]:
    """N_THREADS * PUSHES chunks: slices of a healthy recording, each with its own constant offset."""
    x = noise_recording(seconds=N_THREADS * PUSHES * CHUNK / FS + 1.0, seed=21).data
    return [np.ascontiguousarray(x[i * CHUNK:(i + 1) * CHUNK] + np.float32(1e-3 * i)) for i in
            range(N_THREADS * PUSHES)]


def _run_threads(work: Callable[[int], None], n: int = N_THREADS, timeout: float = 120.0) -> None:
    """Runs work(thread_index) in n threads started together; re-raises the first error and fails on
    a thread still running after timeout (a deadlock)."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(t: int) -> None:
        try:
            barrier.wait()
            work(t)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(t,), daemon=True) for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    assert not any(th.is_alive() for th in threads), "threads still running: deadlock?"
    if errors:
        raise errors[0]


def _push_all(push: Callable[[int], Any]) -> list[tuple[int, Any]]:
    """Every thread pushes its PUSHES chunks in turn; returns (chunk id, push result) per push."""
    out: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for j in range(PUSHES):
            cid = t * PUSHES + j
            res = push(cid)
            with lock:
                out.append((cid, res))

    _run_threads(work)
    return out


def _check_ends(ends: list[np.ndarray]) -> None:
    """Every window exactly once, in order, over all the frames pushed."""
    allends = np.concatenate(ends)
    n_frames = N_THREADS * PUSHES * CHUNK
    np.testing.assert_array_equal(allends, WINDOW + HOP * np.arange((n_frames - WINDOW) // HOP + 1))


def test_runtime_pushes_from_8_threads_equal_a_serial_run(small_bundle: Path, chunks: list[np.ndarray]) -> None:
    rt = Runtime(small_bundle)
    assert rt._stream is not None  # the fused core path (Gaussian), with drift monitors
    rows = _push_all(lambda cid: [(int(round(e.t * FS)), e.score, e.alarm) for e in rt.push(chunks[cid])])
    assert all(r for _, r in rows)  # every push completed a window, so each can be placed
    order = sorted(rows, key=lambda r: r[1][0][0])  # the order the stream's locks admitted the pushes
    _check_ends([np.array([w[0] for w in r]) for _, r in order])
    assert rt.samples_seen == N_THREADS * PUSHES * CHUNK

    serial = Runtime(small_bundle)
    replay = [[(int(round(e.t * FS)), e.score, e.alarm) for e in serial.push(chunks[cid])] for cid, _ in order]
    assert replay == [r for _, r in order]  # push by push: ends, scores (bit-identical) and alarm state
    got = collections.Counter(w[1] for _, r in rows for w in r)
    assert got == collections.Counter(w[1] for r in replay for w in r)  # the multiset of window scores
    assert sum(w[1] is not None for r in replay for w in r) > 0.9 * sum(len(r) for r in replay)  # healthy: scored
    assert serial.get_state()["alarm"] == rt.get_state()["alarm"]
    assert serial.get_state()["drift"] == rt.get_state()["drift"]

    # The comparison can fail: the same chunks with the first two admitted swapped give other scores.
    swapped = Runtime(small_bundle)
    ids = [cid for cid, _ in order]
    ids[0], ids[1] = ids[1], ids[0]
    other = [[(int(round(e.t * FS)), e.score, e.alarm) for e in swapped.push(chunks[cid])] for cid in ids]
    assert collections.Counter(w[1] for r in other for w in r) != got


def _stream_objects(small_bundle: Path) -> tuple[Any, ...]:
    b = load_bundle(small_bundle)
    spec = b.spec
    pipeline = spec.pipeline()
    scorer = _core.GaussianScorer(b.array("mean"), b.array("scale"), b.array("precision"))
    alarm = _core.AlarmState(40.0, 30.0, 2, 3)
    d = spec.feature_dim
    drift = _core.DriftMonitor(log_center=2.0, score_h=4.0, latent_mean=np.zeros(d, np.float32),
                               latent_projection=np.eye(d, dtype=np.float32)[:4], latent_limit=30.0)
    return pipeline, scorer, alarm, drift, _core.ScoredStream(pipeline, scorer, alarm, drift)


def test_core_scored_stream_from_8_threads_equals_a_serial_run(small_bundle: Path, chunks: list[np.ndarray]) -> None:
    pipeline, scorer, alarm, drift, stream = _stream_objects(small_bundle)
    stop = threading.Event()
    reads = [0]

    def reader() -> None:  # state export and getters while pushes run: each takes its object's lock
        while not stop.is_set():
            tail, frames = pipeline.get_state()
            assert tail.shape == (min(frames, WINDOW - 1), 2)
            alarm.get_state(), drift.get_state(), alarm.threshold, pipeline.frames_seen, drift.score_stat
            reads[0] += 1

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        rows = _push_all(lambda cid: stream.push(chunks[cid], 1.0, health=True))
    finally:
        stop.set()
        th.join(60)
    assert not th.is_alive() and reads[0] > 0
    order = sorted(rows, key=lambda r: r[1][0][0, 0])
    _check_ends([r[0][:, 0].astype(np.int64) for _, r in order])

    *_, stream2 = _stream_objects(small_bundle)
    for cid, (meta, contrib, health) in order:
        m2, c2, h2 = stream2.push(chunks[cid], 1.0, health=True)
        np.testing.assert_array_equal(meta, m2)  # end frame, flags, score, threshold, drift stats
        np.testing.assert_array_equal(contrib, c2)
        np.testing.assert_array_equal(health, h2)
        assert not health.any()
    # without health=True the old return shape: (meta, contrib)
    assert len(stream2.push(chunks[0], 1.0)) == 2


def test_core_pipeline_from_8_threads_equals_a_serial_run(small_bundle: Path, chunks: list[np.ndarray]) -> None:
    spec = load_bundle(small_bundle).spec
    p = spec.pipeline()
    rows = _push_all(lambda cid: p.push(chunks[cid], 1.0, True, True, health=True))
    order = sorted(rows, key=lambda r: int(r[1][1][0]))
    _check_ends([r[1] for _, r in order])
    q = spec.pipeline()
    for cid, res in order:
        for a, b in zip(res, q.push(chunks[cid], 1.0, True, True, health=True)):
            np.testing.assert_array_equal(a, b)  # features, end frames, finite, raw windows, health


def test_stateless_calls_on_shared_objects_from_8_threads(small_bundle: Path) -> None:
    """Objects whose only mutable state is scratch (scorer row, extractor FFT buffers, coder
    workspaces): concurrent calls give what each call gives alone."""
    b = load_bundle(small_bundle)
    scorer = _core.GaussianScorer(b.array("mean"), b.array("scale"), b.array("precision"))
    ex = b.spec.extractor()
    rng = np.random.default_rng(5)
    feats = [rng.normal(size=(40, b.spec.feature_dim)).astype(np.float32) for _ in range(N_THREADS)]
    wins = [rng.normal(size=(20, WINDOW)).astype(np.float32) for _ in range(N_THREADS)]
    dic = rng.normal(size=(32, 48)).astype(np.float32)
    dic /= np.linalg.norm(dic, axis=0)
    omp = _core.OmpCoder(dic, 6)
    sig = [rng.normal(size=(30, 32)).astype(np.float32) for _ in range(N_THREADS)]
    want = [(scorer.score(f), ex.compute(w), omp.encode(s)) for f, w, s in zip(feats, wins, sig)]
    bad: list[int] = []

    def work(t: int) -> None:
        for _ in range(30):
            sc, ct = scorer.score(feats[t])
            fe = ex.compute(wins[t])
            codes, r2, nact = omp.encode(sig[t])
            ok = (np.array_equal(sc, want[t][0][0]) and np.array_equal(ct, want[t][0][1])
                  and np.array_equal(fe, want[t][1]) and np.array_equal(codes, want[t][2][0]))
            if not ok:
                bad.append(t)
                return

    _run_threads(work)
    assert not bad


def test_alarm_and_drift_updates_from_8_threads_lose_no_window() -> None:
    alarm = _core.AlarmState(5.0, 4.0, 2, 3)
    drift_alarm = _core.AlarmState(5.0, 4.0, 2, 3)
    drift = _core.DriftMonitor(score_h=50.0, latent_mean=np.zeros(3, np.float32),
                               latent_projection=np.eye(3, dtype=np.float32), latent_limit=1e6)
    rng = np.random.default_rng(2)
    scores = rng.gamma(2.0, 1.0, size=(N_THREADS, 50, 64)).astype(np.float32)
    latent = rng.normal(size=(64, 3)).astype(np.float32)
    valid = np.ones(64, bool)

    def work(t: int) -> None:
        for s in scores[t]:
            alarm.update(s, valid)
            drift.step(drift_alarm, s, valid, latent)
            alarm.threshold, alarm.get_state(), drift.get_state(), drift.monitors

    _run_threads(work)
    total = scores.size
    assert alarm.get_state()[2] == total  # n_valid: every window counted once
    assert drift_alarm.get_state()[2] == total
