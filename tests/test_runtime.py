from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgefault
from conftest import noise_recording, same_stream
from edgefault import InputError, Runtime
from edgefault.device.bundle import load_bundle
from edgefault.train.gaussian import GaussianAnomalyModel


def _stream(rt: Runtime, x: np.ndarray, chunk: int) -> list:
    out = []
    for s in range(0, x.shape[0], chunk):
        out.extend(rt.push(x[s:s + chunk]))
    return out


@pytest.fixture(scope="module")
def later_signal() -> np.ndarray:
    return noise_recording(seconds=3.0, seed=11).data


def test_any_chunk_size_gives_identical_events(small_bundle: Path, later_signal: np.ndarray) -> None:
    ref = Runtime(small_bundle).push(later_signal)
    assert len(ref) == (later_signal.shape[0] - 256) // 128 + 1
    for chunk in (1, 7, 128, 256, 1000, 100000):
        ev = _stream(Runtime(small_bundle), later_signal, chunk)
        assert [e.seq for e in ev] == list(range(len(ref)))
        assert [e.score for e in ev] == [e.score for e in ref]
        assert [e.t for e in ev] == [e.t for e in ref]


def test_scores_match_offline_model(small_bundle: Path, later_signal: np.ndarray) -> None:
    b = load_bundle(small_bundle)
    feats, ends, finite = b.spec.transform(later_signal)
    m = GaussianAnomalyModel()
    m.mean_, m.scale_, m.precision_ = b.array("mean"), b.array("scale"), b.array("precision")
    m.n_features_in_ = b.spec.feature_dim
    offline = m.score_samples(feats)
    ev = Runtime(b).push(later_signal)
    online = np.array([e.score for e in ev])
    np.testing.assert_allclose(online, offline, rtol=2e-4, atol=1e-3)
    assert np.allclose([e.t for e in ev], ends / b.spec.fs)


def test_event_fields_and_contributions(small_bundle: Path, later_signal: np.ndarray) -> None:
    ev = Runtime(small_bundle).push(later_signal)[5]
    d = ev.to_dict()
    for key in ("t", "score", "threshold", "anomaly", "label", "proba", "contrib", "valid", "alarm"):
        assert key in d
    assert d["label"] is None and d["proba"] is None  # an anomaly model does not classify
    c = ev.contrib
    assert set(c["channel"]) == {"a", "b"}
    assert sum(c["channel"].values()) == pytest.approx(ev.score, rel=1e-3, abs=1e-3)
    assert len(c["feature"]) == 5 and all(k.startswith(("a.", "b.")) for k in c["feature"])
    assert all(".band" in k for k in c["band"])
    assert ev.t_start == pytest.approx(ev.t - 256 / 4000.0)



def test_event_built_directly_is_consistent(small_bundle: Path, later_signal: np.ndarray) -> None:
    """Event(...) with keywords: every property and to_dict work (they used to need flag bits and a
    runtime it did not have: .anomaly raised TypeError), anomaly follows score > threshold, and an
    event rebuilt from a runtime event's to_dict gives the same dict back."""
    from edgefault import Event

    e = Event(seq=3, t=1.5, score=2.0, threshold=1.0)
    assert e.anomaly and not e.alarm and not e.alarm_changed and e.valid and e.flags == ()
    assert e.t_start == 1.5 and e.contrib == {} and e.label is None and e.proba is None
    assert e.drift is None and e.drift_stats is None and not e.drift_changed and not e.retrain
    assert e.retrain_reason is None
    assert not Event(seq=0, t=0.0, score=1.0, threshold=1.0).anomaly  # strictly above, as in the core
    d = Event(seq=4, t=2.0, score=0.5, threshold=1.0, anomaly=False, alarm=True, alarm_changed=True,
              t_start=1.9, contrib={"channel": {"a": 0.5}}).to_dict()
    assert (d["anomaly"], d["alarm"], d["alarm_changed"], d["t_start"], d["contrib"]) == \
        (False, True, True, 1.9, {"channel": {"a": 0.5}})
    bad = Event(seq=5, t=2.5, score=None, threshold=1.0)
    assert not bad.valid and not bad.anomaly and bad.flags == ("nonfinite_input",) and bad.contrib == {}
    assert Event(seq=5, t=2.5, score=None, threshold=1.0, flags=["nonfinite_score"]).flags == ("nonfinite_score",)
    assert "score=None" in repr(bad) and "anomaly=True" in repr(e)
    for kw, match in [({"score": None, "anomaly": True}, "invalid"), ({"score": None, "label": "x"}, "invalid"),
                      ({"score": 1.0, "flags": ("nonfinite_input",)}, "no flags"),
                      ({"score": None, "flags": ("odd",)}, "nonfinite_input"), ({"score": float("nan")}, "NaN")]:
        with pytest.raises(ValueError, match=match):
            Event(seq=0, t=0.0, threshold=1.0, **kw)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Event(seq=0, t=0.0, score=1.0, threshold=1.0, _bits=2)  # type: ignore[call-arg]

    x = later_signal.copy()
    x[3000:3300] = np.nan
    x[6000:7000] *= 30
    events = Runtime(small_bundle, drift=False).push(x)
    assert any(not ev.valid for ev in events) and any(ev.anomaly for ev in events)
    keys = ("seq", "t", "t_start", "score", "threshold", "anomaly", "alarm", "alarm_changed", "flags", "label",
            "proba", "contrib", "health", "t_wall", "t_wall_source")
    for ev in events:
        d = ev.to_dict()
        assert Event(**{k: d[k] for k in keys}).to_dict() == d

def test_fault_raises_alarm_on_the_right_channel(small_bundle: Path) -> None:
    x = noise_recording(seconds=3.0, seed=3).data.copy()
    rng = np.random.default_rng(0)
    # impulsive fault on channel b only: 40 Hz impacts exciting an 800 Hz resonance
    n = x.shape[0]
    t = np.arange(n) / 4000.0
    imp = np.zeros(n)
    imp[:: 100] = 8.0
    ring = np.exp(-t[:200] * 300) * np.sin(2 * np.pi * 800 * t[:200])
    x[:, 1] += np.convolve(imp, ring)[:n].astype(np.float32) + rng.normal(0, 0.01, n).astype(np.float32)
    ev = Runtime(small_bundle).push(x)
    assert np.mean([e.anomaly for e in ev]) > 0.9
    assert ev[-1].alarm
    top = [max(e.contrib["channel"], key=e.contrib["channel"].get) for e in ev if e.anomaly]
    assert np.mean([c == "b" for c in top]) > 0.9


def test_nan_windows_are_flagged_not_scored(small_bundle: Path, later_signal: np.ndarray) -> None:
    x = later_signal.copy()
    x[1000, 0] = np.nan
    x[2000, 1] = np.inf
    rt = Runtime(small_bundle)
    ev = rt.push(x)
    bad = [e for e in ev if not e.valid]
    assert bad and all(e.score is None and "nonfinite_input" in e.flags and e.contrib == {} for e in bad)
    for e in bad:  # exactly the windows that cover a bad sample
        s0 = int(round(e.t_start * 4000))
        assert s0 <= 1000 < s0 + 256 or s0 <= 2000 < s0 + 256
    good = [e for e in ev if e.valid]
    ref = {e.seq: e.score for e in Runtime(small_bundle).push(later_signal)}
    assert all(e.score == ref[e.seq] for e in good)


def test_bad_chunks_are_rejected_without_losing_state(small_bundle: Path, later_signal: np.ndarray) -> None:
    rt = Runtime(small_bundle)
    first = rt.push(later_signal[:1000])
    for bad, match in [
        (later_signal[:10, :1], "expected \\(n_samples, 2\\)"),
        (later_signal[:10, 0], "expected \\(n_samples, 2\\)"),
        (np.zeros((4, 2, 2)), "expected"),
        (np.array([["a", "b"]]), "dtype"),
        (np.zeros((3, 2), dtype=complex), "dtype"),
    ]:
        with pytest.raises(InputError, match=match):
            rt.push(bad)
    rest = rt.push(later_signal[1000:])
    ref = Runtime(small_bundle).push(later_signal)
    assert [e.score for e in first + rest] == [e.score for e in ref]


def test_int16_input_uses_scale(small_bundle: Path, later_signal: np.ndarray) -> None:
    q = np.round(later_signal / 8.0 * 32767).astype(np.int16)
    ev_int = Runtime(small_bundle, input_scale=8.0 / 32767).push(q)
    ev_f = Runtime(small_bundle).push(q.astype(np.float32) * np.float32(8.0 / 32767))
    np.testing.assert_allclose([e.score for e in ev_int], [e.score for e in ev_f], rtol=1e-5)


def test_state_save_restore_continues_exactly(tmp_path: Path, small_bundle: Path, later_signal: np.ndarray) -> None:
    ref = Runtime(small_bundle).push(later_signal)
    for cut in (100, 255, 5000):
        a = Runtime(small_bundle)
        ev_a = a.push(later_signal[:cut])
        a.save_state(tmp_path / "state.npz")
        b = Runtime(small_bundle)
        b.load_state(tmp_path / "state.npz")
        ev_b = b.push(later_signal[cut:])
        both = ev_a + ev_b
        assert [e.seq for e in both] == [e.seq for e in ref]
        assert [e.score for e in both] == [e.score for e in ref]
        assert [e.alarm for e in both] == [e.alarm for e in ref]


def test_state_errors(tmp_path: Path, small_bundle: Path) -> None:
    rt = Runtime(small_bundle)
    (tmp_path / "junk.npz").write_bytes(b"nonsense")
    with pytest.raises(InputError, match="not a readable"):
        rt.load_state(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="not found"):
        rt.load_state(tmp_path / "missing.npz")
    st = rt.get_state()
    st["bundle_id"] = "someoneelse"
    with pytest.raises(InputError, match="belongs to bundle"):
        rt.set_state(st)



def _old_format_state(path: Path, state: dict) -> None:
    """A state file as Runtime.save_state and the daemon wrote it before edgefault.device.state."""
    import json

    meta = {k: v for k, v in state.items() if k != "tail"}
    np.savez(path, tail=state["tail"], meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def test_state_files_old_new_and_daemon_written_all_load(tmp_path: Path, small_bundle: Path,
                                                         later_signal: np.ndarray) -> None:
    """One format: a file from before the shared writer, one with the daemon's extra section and one
    from save_state all restore the same runtime; read_state hands back every section."""
    from edgefault.device.state import read_state, write_state

    a = Runtime(small_bundle)
    a.push(later_signal[:3333])
    st = a.get_state()
    ref = Runtime(small_bundle)
    ref.set_state(st)
    ref_ev = ref.push(later_signal[3333:])
    _old_format_state(tmp_path / "old.npz", st)
    write_state(tmp_path / "daemon.npz", {**st, "daemon": {"format": 1, "seq": 41, "boot": 2}})
    a.save_state(tmp_path / "new.npz")
    for name in ("old.npz", "daemon.npz", "new.npz"):
        b = Runtime(small_bundle)
        b.load_state(tmp_path / name)
        ev = b.push(later_signal[3333:])
        assert [(e.seq, e.score, e.alarm) for e in ev] == [(e.seq, e.score, e.alarm) for e in ref_ev], name
    got = read_state(tmp_path / "daemon.npz")
    assert got["daemon"] == {"format": 1, "seq": 41, "boot": 2}
    np.testing.assert_array_equal(got["tail"], st["tail"])
    assert {k: v for k, v in read_state(tmp_path / "old.npz").items() if k != "tail"} == \
        {k: v for k, v in st.items() if k != "tail"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.npz", "new.npz", "old.npz"]  # no temp file left


def test_state_reader_names_file_and_problem(tmp_path: Path, small_bundle: Path) -> None:
    import io
    import re

    from edgefault.device.state import read_state

    tail = Runtime(small_bundle).get_state()["tail"]

    def npz(name: str, **members: np.ndarray) -> Path:
        buf = io.BytesIO()
        np.savez(buf, **members)
        (tmp_path / name).write_bytes(buf.getvalue())
        return tmp_path / name

    (tmp_path / "junk.npz").write_bytes(b"nonsense")
    np.save(tmp_path / "one.npy", tail)
    (tmp_path / "dir.npz").mkdir()
    cases = [
        (tmp_path / "missing.npz", "not found"),
        (tmp_path / "junk.npz", "not a readable edgefault state: not an npz archive"),
        (tmp_path / "one.npy", "not an npz archive"),
        (tmp_path / "dir.npz", "directory"),
        (npz("nometa.npz", tail=tail), "missing member 'meta'"),
        (npz("empty.npz"), "missing members 'tail', 'meta'"),
        (npz("badjson.npz", tail=tail, meta=np.frombuffer(b"{not json", np.uint8)), "'meta' is not UTF-8 JSON"),
        (npz("badutf8.npz", tail=tail, meta=np.frombuffer(b'{"a": "\xff"}', np.uint8)), "'meta' is not UTF-8 JSON"),
        (npz("list.npz", tail=tail, meta=np.frombuffer(b"[1, 2]", np.uint8)), "'meta' is a JSON list"),
        (npz("strtail.npz", tail=np.array(["a"]), meta=np.frombuffer(b"{}", np.uint8)), "'tail' holds"),
    ]
    rt = Runtime(small_bundle)
    for path, what in cases:
        for load in (read_state, rt.load_state):
            with pytest.raises(InputError, match=re.escape(str(path)) + ".*" + re.escape(what)):
                load(path)
    # readable but not a state of this runtime: set_state's errors, unchanged
    (tmp_path / "other.npz").unlink(missing_ok=True)
    _old_format_state(tmp_path / "other.npz", {**rt.get_state(), "bundle_id": "someoneelse"})
    with pytest.raises(InputError, match="belongs to bundle"):
        rt.load_state(tmp_path / "other.npz")

def test_reset_restarts_counting(small_bundle: Path, later_signal: np.ndarray) -> None:
    rt = Runtime(small_bundle)
    a = rt.push(later_signal)
    rt.reset()
    b = rt.push(later_signal)
    assert [e.score for e in a] == [e.score for e in b] and b[0].seq == 0


def test_import_is_light(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys, edgefault; print(sorted(m for m in ('torch','scipy','sklearn','onnx','pandas') if m in sys.modules))"
    # run outside the source tree so the installed package is what gets imported
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout
    assert out.strip() == "[]"
    assert edgefault.__version__


def test_refused_state_changes_nothing(small_bundle: Path) -> None:
    """Each part of a state can be the bad one; the runtime after a refused set_state is the
    runtime before it (tail, frame count, window number, alarm history), and keeps scoring alike."""
    import copy

    rng = np.random.default_rng(4)
    x = rng.normal(size=(6000, 2)).astype(np.float32)
    rt = Runtime(small_bundle)
    rt.push(x[:3000] * 3)  # some alarm history
    good = rt.get_state()
    bad_parts = {
        "alarm": lambda s: s["alarm"].update(above="x"),
        "alarm_missing": lambda s: s["alarm"].pop("n_valid"),
        "frames": lambda s: s.update(frames_seen=-5),
        "tail": lambda s: s.update(tail=np.zeros((3, 7), dtype=np.float32)),
        "seq": lambda s: s.update(seq="later"),
        "drift": lambda s: s.update(drift={"monitors": 1}),
    }
    other = Runtime(small_bundle)
    other.push(x[:1234])
    for name, spoil in bad_parts.items():
        st = copy.deepcopy(other.get_state())
        spoil(st)
        with pytest.raises(InputError):
            rt.set_state(st)
        now = rt.get_state()
        assert now["frames_seen"] == good["frames_seen"] and now["seq"] == good["seq"], name
        assert now["alarm"] == good["alarm"], name
        np.testing.assert_array_equal(now["tail"], good["tail"], err_msg=name)
    ref = Runtime(small_bundle)
    ref.set_state(good)
    assert same_stream(rt.push(x[3000:])) == same_stream(ref.push(x[3000:]))


def test_push_gap_marks_windows_and_keeps_time(small_bundle: Path, later_signal: np.ndarray) -> None:
    """Lost samples (push_gap) are a marked gap, never a splice: t and seq advance as if they had
    arrived, exactly the windows overlapping them are invalid with the flag 'gap' (also those
    completed by later pushes), nothing of them reaches the alarm state, and the windows after
    the gap score exactly as in an unbroken run."""
    from edgefault.device.runtime import MAX_GAP_EVENTS

    x = later_signal
    ref = Runtime(small_bundle, drift=False).push(x)
    rt = Runtime(small_bundle, drift=False)
    lo, hi = 3000, 3700
    got = rt.push(x[:lo]) + rt.push_gap(hi - lo) + rt.push(x[hi:])
    win, fs = rt.spec.window, rt.fs
    assert [e.seq for e in got] == [e.seq for e in ref] and [e.t for e in got] == [e.t for e in ref]
    for e, r in zip(got, ref):
        end = round(e.t * fs)
        if end - win < hi and end > lo:
            assert e.flags == ("gap",) and e.score is None and not e.anomaly and e.health == {}
        else:
            assert e.valid and e.score == pytest.approx(r.score, rel=1e-5)
    assert rt.push_gap(0) == []
    for bad in (-1, 1.5, "10", None, float("nan")):
        with pytest.raises(InputError, match="n_frames"):
            rt.push_gap(bad)  # type: ignore[arg-type]
    # a gap longer than MAX_GAP_EVENTS windows: the first ones are returned, seq skips the rest
    rt2 = Runtime(small_bundle, drift=False)
    rt2.push(x[:1000])
    n = 10 ** 9
    evs = rt2.push_gap(n)
    assert len(evs) == MAX_GAP_EVENTS and all(e.flags == ("gap",) for e in evs)
    nxt = rt2.push(x[:4 * win])
    hop = rt2.spec.hop
    assert nxt[0].seq == (1000 + n - win) // hop + 1 and nxt[0].t == pytest.approx((win + nxt[0].seq * hop) / fs)
    assert nxt[0].flags == ("gap",) and nxt[-1].valid
    # the marking survives a saved state
    rt3 = Runtime(small_bundle, drift=False)
    rt3.push(x[:lo])
    rt3.push_gap(hi - lo)
    st = rt3.get_state()
    rt4 = Runtime(small_bundle, drift=False)
    rt4.set_state(st)
    assert [e.flags for e in rt4.push(x[hi:])] == [e.flags for e in got if e.t * fs > hi]


def test_events_carry_wall_clock_time(small_bundle: Path, later_signal: np.ndarray) -> None:
    """t_wall: from the source's timestamp of the chunk's first sample ("source"), else the receive
    clock taken as the time of the chunk's last sample ("receive"); bad timestamps are refused."""
    clock = [1.8e9]
    rt = Runtime(small_bundle, drift=False, start_time=5.0, wall_clock=lambda: clock[0])
    x = later_signal
    fs = rt.fs
    a = rt.push(x[:4000])  # receive clock: 1.8e9 is the time of sample 3999 (+1 frame)
    assert all(e.t_wall_source == "receive" for e in a)
    assert a[-1].t_wall == pytest.approx(1.8e9 - (4000 - (a[-1].t - 5.0) * fs) / fs, abs=1e-6)
    b = rt.push(x[4000:8000], t_wall=1.9e9)  # the source says sample 4000 was taken at 1.9e9
    assert all(e.t_wall_source == "source" for e in b)
    for e in b:
        assert e.t_wall == pytest.approx(1.9e9 + (e.t - 5.0) - 4000 / fs, abs=1e-6)
    c = rt.push(x[8000:9000], t_received=2.0e9)
    assert c and c[-1].t_wall == pytest.approx(2.0e9 - (9000 - (c[-1].t - 5.0) * fs) / fs, abs=1e-6)
    d = b[0].to_dict()
    assert d["t_wall"] == b[0].t_wall and d["t_wall_source"] == "source"
    n = rt.samples_seen
    for bad in (float("nan"), float("inf"), "noon", None):
        if bad is None:
            continue
        with pytest.raises(InputError, match="t_wall"):
            rt.push(x[:100], t_wall=bad)  # type: ignore[arg-type]
    assert rt.samples_seen == n  # refused before accepting anything


def test_runtime_refuses_bad_settings_and_states_clearly(small_bundle: Path, later_signal: np.ndarray) -> None:
    """Found by fuzzing: start_time nan/inf, alarm_k >= 2**32 and states holding infinite or huge
    numbers used to be accepted or escape as TypeError / OverflowError."""
    for kw in ({"start_time": float("nan")}, {"start_time": float("inf")}, {"alarm_k": 2 ** 32},
               {"alarm_n": 0}, {"alarm_k": 1.5}):
        with pytest.raises(InputError):
            Runtime(small_bundle, **kw)  # type: ignore[arg-type]
    rt = Runtime(small_bundle, drift=False)
    rt.push(later_signal[:3000])
    good = rt.get_state()
    for key, val in (("frames_seen", float("inf")), ("seq", float("inf")), ("seq", -3), ("gap_until", 2 ** 70)):
        st = dict(good)
        st[key] = val
        with pytest.raises(InputError, match="runtime state"):
            rt.set_state(st)
        assert rt.get_state()["seq"] == good["seq"]
    st = dict(good)
    st["alarm"] = {**good["alarm"], "above": float("inf")}
    with pytest.raises(InputError, match="runtime state"):
        rt.set_state(st)


def test_event_dicts_are_json_safe_and_unscored_windows_explained(small_bundle: Path) -> None:
    """A window whose score overflows to inf is unscored (nonfinite_score), not a valid anomaly,
    and every event dict dumps with allow_nan=False (what the daemon's sinks do)."""
    import json

    rt = Runtime(small_bundle, drift=False)
    x = np.zeros((4000, 2), np.float32)
    x[:] = np.random.default_rng(1).standard_normal((4000, 2)) * 1e18  # features overflow float32
    evs = rt.push(x)
    assert evs and all(e.flags == ("nonfinite_score",) and e.score is None and not e.anomaly for e in evs)
    for e in evs:
        json.dumps(e.to_dict(), allow_nan=False)
    assert not rt.alarm


def test_misaligned_chunks_score_like_aligned_ones(small_bundle: Path, later_signal: np.ndarray) -> None:
    """numpy views at an odd byte offset are valid arrays; the core copies them to aligned memory
    (found by fuzzing under UBSan: a misaligned load in the framer)."""
    for dt in (np.float32, np.float64, np.int16, np.int32):
        x = (later_signal * (1000 if dt in (np.int16, np.int32) else 1)).astype(dt)
        buf = np.zeros(x.nbytes + 1, np.uint8)
        odd = buf[1:].view(dt).reshape(x.shape)
        odd[:] = x
        assert not odd.flags.aligned
        a = Runtime(small_bundle, drift=False).push(x)
        b = Runtime(small_bundle, drift=False).push(odd)
        assert [e.score for e in a] == [e.score for e in b] and len(a) > 10


def test_state_file_with_unsupported_compression_is_refused_clearly(small_bundle: Path, tmp_path: Path) -> None:
    """Found by fuzzing: a damaged state file whose zip member names a compression method zipfile
    lacks raised NotImplementedError from load_state."""
    import zipfile

    rt = Runtime(small_bundle, drift=False)
    rt.push(noise_recording(seconds=0.5, seed=2).data)
    p = tmp_path / "s.npz"
    rt.save_state(p)
    raw = bytearray(p.read_bytes())
    for off in (0, raw.find(b"PK\x01\x02")):  # local header and central directory entry of the first member
        head = 8 if off == 0 else 10
        raw[off + head:off + head + 2] = (99).to_bytes(2, "little")
    p.write_bytes(bytes(raw))
    with pytest.raises(NotImplementedError):  # what zipfile itself raises for it
        zipfile.ZipFile(p).read(zipfile.ZipFile(p).namelist()[0])
    before = rt.get_state()
    with pytest.raises(InputError, match=r"state file .*s\.npz .*cannot be read"):
        rt.load_state(p)
    assert rt.get_state()["seq"] == before["seq"]


def test_push_returns_a_columnar_batch_matching_its_events(small_bundle: Path, later_signal: np.ndarray) -> None:
    x = later_signal.copy()
    x[1000, 0] = np.nan
    rt = Runtime(small_bundle, start_time=5.0)
    b = rt.push(x, t_wall=1_700_000_000.0)
    assert isinstance(b, edgefault.EventBatch) and len(b) == (x.shape[0] - 256) // 128 + 1
    ev = list(b)
    assert [e.seq for e in ev] == b.seq.tolist()
    np.testing.assert_array_equal(b.t, [e.t for e in ev])
    np.testing.assert_array_equal(b.t_start, [e.t_start for e in ev])
    np.testing.assert_allclose(b.t_wall, [e.t_wall for e in ev], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(b.score, [np.nan if e.score is None else e.score for e in ev])
    for col in ("valid", "anomaly", "alarm", "alarm_changed", "threshold", "drift_changed", "retrain"):
        np.testing.assert_array_equal(getattr(b, col), [getattr(e, col) for e in ev], err_msg=col)
    assert not b.valid.all() and b.valid.any()
    assert b.t_wall_source == "source" and b.labels is None and b.proba is None
    assert b.label == [None] * len(b) and (b.label_index == -1).all()
    # contributions: the score's terms per feature, summed per channel as Event.contrib
    assert b.contrib.shape == (len(b), len(b.contrib_names))
    for e, row in zip(ev, b.contrib_channel):
        if e.valid:
            np.testing.assert_allclose(row, [e.contrib["channel"][c] for c in b.channels], rtol=1e-5, atol=1e-6)
        else:
            assert not row.any()
    np.testing.assert_allclose(b.contrib.sum(axis=1)[b.valid], b.score[b.valid], rtol=1e-3, atol=1e-3)
    cols = b.columns()
    assert set(cols) >= {"seq", "t", "score", "flag_bits", "contrib", "contrib_names", "health", "label"}
    assert b.to_dicts() == [e.to_dict() for e in ev]
    # sequence behaviour callers rely on
    assert b[0] is ev[0] and b[-1] is ev[-1] and b[2:4] == ev[2:4]
    assert rt.push(x[:0]) == [] and not rt.push(x[:0])
    both = b + rt.push(x[:1000])
    assert isinstance(both, list) and [e.seq for e in both] == list(range(len(both)))


def test_push_into_fills_a_reused_batch_like_push(small_bundle: Path, later_signal: np.ndarray) -> None:
    ref = _stream(Runtime(small_bundle), later_signal, 300)
    rt = Runtime(small_bundle)
    out = rt.new_batch(8)
    got, kept = [], []
    for s in range(0, later_signal.shape[0], 300):
        b = rt.push_into(later_signal[s:s + 300], out)
        assert b is out
        kept.append((b.seq.copy(), b.score.copy()))
        got.extend(b)  # events outlive the next fill
    assert [e.seq for e in got] == [e.seq for e in ref]
    assert [e.score for e in got] == [e.score for e in ref]
    assert [e.contrib for e in got] == [e.contrib for e in ref]
    assert np.concatenate([s for s, _ in kept]).tolist() == [e.seq for e in ref]
    # a chunk that can complete more windows than the batch holds is refused, nothing accepted
    seen = rt.samples_seen
    with pytest.raises(InputError, match=r"completes \d+ windows but out holds 8.*nothing was accepted"):
        rt.push_into(later_signal[:4000], out)
    assert rt.samples_seen == seen
    with pytest.raises(InputError, match="new_batch"):
        rt.push_into(later_signal[:10], Runtime(small_bundle).new_batch(4))
    with pytest.raises(InputError, match="new_batch"):
        rt.push_into(later_signal[:10], rt.push(later_signal[:300]))
    with pytest.raises(InputError, match="capacity"):
        rt.new_batch(0)
