"""The streaming framer + feature pipeline, seen from Python."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import noise_recording
from edgefault import _core
from edgefault.errors import InputError
from edgefault.device.spec import FeatureSpec

BLOCKS = ({"kind": "time_stats"}, {"kind": "band_energy", "n_bands": 8, "spacing": "log", "fmin": 20.0})


def _spec(channels: int = 3, window: int = 128, hop: int = 48) -> FeatureSpec:
    return FeatureSpec(fs=2000.0, window=window, hop=hop, channels=tuple(f"c{i}" for i in range(channels)),
                       blocks=BLOCKS)


def _signal(n: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, c)).astype(np.float32)


def test_raw_windows_and_features_equal_direct_computation() -> None:
    spec = _spec()
    x = _signal(1000, 3)
    feats, ends, finite, raw = spec.pipeline().push(x, 1.0, True, True)
    starts = np.arange(0, 1000 - 128 + 1, 48)
    assert np.array_equal(ends, starts + 128) and finite.all()
    ex = spec.extractor()
    for i, s in enumerate(starts):
        assert np.array_equal(raw[i], x[s:s + 128].T)
        direct = np.concatenate([ex.compute(x[s:s + 128, c][None])[0] for c in range(3)])
        np.testing.assert_array_equal(feats[i], direct)
    assert feats.shape[1] == spec.feature_dim == len(spec.feature_names)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=30), st.integers(1, 128))
def test_any_chunking_gives_the_same_windows(chunks: list[int], hop: int) -> None:
    spec = _spec(channels=2, window=128, hop=hop)
    x = _signal(sum(chunks), 2, seed=len(chunks))
    ref_f, ref_e, _, _ = spec.pipeline().push(x, 1.0, True, False)
    p = spec.pipeline()
    parts_f, parts_e, s = [], [], 0
    for n in chunks:
        bound = p.max_windows_for(n)
        f, e, _, _ = p.push(x[s:s + n], 1.0, True, False)
        assert f.shape[0] == bound
        parts_f.append(f)
        parts_e.append(e)
        s += n
    np.testing.assert_array_equal(np.concatenate(parts_f), ref_f)
    np.testing.assert_array_equal(np.concatenate(parts_e), ref_e)


@pytest.mark.parametrize("dtype, scale", [(np.int16, 1 / 32768), (np.int32, 1 / 2**31), (np.float64, 0.5)])
def test_integer_and_double_input_with_scale(dtype: type, scale: float) -> None:
    spec = _spec(channels=1)
    rng = np.random.default_rng(3)
    if np.issubdtype(dtype, np.integer):
        q = rng.integers(np.iinfo(dtype).min // 2, np.iinfo(dtype).max // 2, size=(600, 1)).astype(dtype)
    else:
        q = rng.normal(size=(600, 1)).astype(dtype)
    f_q, _, _, _ = spec.pipeline().push(q, scale, True, False)
    f_ref, _, _, _ = spec.pipeline().push((q.astype(np.float64) * scale).astype(np.float32), 1.0, True, False)
    np.testing.assert_allclose(f_q, f_ref, rtol=2e-5, atol=1e-5)


def test_bad_input_is_rejected_and_state_kept() -> None:
    p = _spec(channels=2).pipeline()
    x = _signal(300, 2)
    p.push(x[:100])
    with pytest.raises(ValueError, match="2 channels|expected 2"):
        p.push(_signal(10, 3))
    with pytest.raises(ValueError, match="expects 2 channels"):
        p.push(np.zeros(10, np.float32))
    with pytest.raises(TypeError, match="not supported"):
        p.push(np.zeros((10, 2), np.complex64))
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        p.push(np.zeros((2, 2, 2), np.float32))
    assert p.frames_seen == 100
    f_rest, _, _, _ = p.push(x[100:])
    f_ref, _, _, _ = _spec(channels=2).pipeline().push(x)
    np.testing.assert_array_equal(f_rest, f_ref[-f_rest.shape[0]:])


def test_equal_but_distinct_dtypes_are_accepted() -> None:
    """A pickled or byte-swapped float32 array has a dtype object that is not numpy's singleton."""
    import pickle

    spec = _spec(channels=2)
    x = _signal(500, 2)
    ref, _, _, _ = spec.pipeline().push(x)
    for y in (pickle.loads(pickle.dumps(x)), x.astype(">f4")):
        got, _, _, _ = spec.pipeline().push(y)
        np.testing.assert_array_equal(got, ref)


def test_spec_validation_messages() -> None:
    with pytest.raises(InputError, match="hop"):
        FeatureSpec(fs=1000.0, window=64, hop=65, channels=("a",), blocks=BLOCKS)
    with pytest.raises(InputError, match="duplicate channel"):
        FeatureSpec(fs=1000.0, window=64, hop=32, channels=("a", "a"), blocks=BLOCKS)
    with pytest.raises(InputError, match="unknown keys"):
        FeatureSpec.from_dict({**_spec().to_dict(), "extra": 1})
    with pytest.raises(InputError, match="feature spec"):
        FeatureSpec(fs=1000.0, window=64, hop=32, channels=("a",), blocks=({"kind": "nope"},))
    s = _spec()
    assert FeatureSpec.from_dict(s.to_dict()) == s


def test_core_alarm_and_scorer_bindings_validate() -> None:
    with pytest.raises(ValueError, match="k must be"):
        _core.AlarmState(1.0, 1.0, 5, 3)
    with pytest.raises(ValueError, match="precision"):
        _core.GaussianScorer(np.zeros(2, np.float32), np.ones(2, np.float32), np.eye(3, dtype=np.float32))


# -- sensor health (docs/features.md, "Sensor health") ---------------------------------------------

H_FS, H_WINDOW, H_HOP = 8000.0, 512, 256
FAULT = slice(16 * H_HOP + 77, 26 * H_HOP)


def _health_spec(health: dict | None = None) -> FeatureSpec:
    return FeatureSpec(fs=H_FS, window=H_WINDOW, hop=H_HOP, channels=("x", "y", "z"),
                       blocks=({"kind": "time_stats", "stats": ["rms"]},), health=health)


def _clean(seed: int = 1, seconds: float = 1.3) -> np.ndarray:
    """Broadband noise plus a tone per channel: a healthy 3-channel sensor."""
    rng = np.random.default_rng(seed)
    n = int(seconds * H_FS)
    t = np.arange(n) / H_FS
    tones = np.stack([np.sin(2 * np.pi * f * t) for f in (97.0, 138.0, 179.0)], axis=1)
    return (0.3 * rng.normal(size=(n, 3)) + tones).astype(np.float32)


def _health(x: np.ndarray, health: dict | None = None) -> np.ndarray:
    *_, h = _health_spec(health).pipeline().push(x, 1.0, False, False, health=True)
    assert h.dtype == np.uint8 and h.shape[1] == 3
    return h


def _flagged(h: np.ndarray) -> dict[tuple[int, int], int]:
    """{(channel, FLAG_HEALTH_* bit): windows} over the bits that occur."""
    out = {}
    for c in range(h.shape[1]):
        for bit in (_core.FLAG_HEALTH_FLAT, _core.FLAG_HEALTH_CLIP, _core.FLAG_HEALTH_DROPOUT,
                    _core.FLAG_HEALTH_DC_JUMP):
            n = int(np.count_nonzero(h[:, c] & bit))
            if n:
                out[(c, bit)] = n
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_health_a_clean_signal_never_flags(seed: int) -> None:
    assert not _health(_clean(seed)).any()
    assert not _health(noise_recording(seconds=5.0, fs=H_FS, channels=("x", "y", "z"), seed=seed).data).any()


def _fault(kind: str) -> tuple[np.ndarray, dict | None, int, int]:
    """(signal, health settings, channel, expected FLAG_HEALTH_* bit) for one sensor fault."""
    x = _clean()
    sd = x.std(axis=0)
    if kind == "flat":  # stuck at one reading
        x[FAULT, 1] = 0.37
        return x, None, 1, _core.FLAG_HEALTH_FLAT
    if kind == "flat_relative":  # gain collapsed to 1 %: flat against the healthy std
        x[FAULT, 2] *= 0.01
        return x, {"healthy_std": [float(v) for v in sd]}, 2, _core.FLAG_HEALTH_FLAT
    if kind == "clip":  # saturating at +-1.2 std
        lim = np.float32(1.2 * sd[2])
        x[FAULT, 2] = np.clip(x[FAULT, 2], -lim, lim)
        return x, None, 2, _core.FLAG_HEALTH_CLIP
    if kind == "rails":  # a gain error drives the ADC into its configured rails
        x[FAULT, 0] = np.clip(3 * x[FAULT, 0], -4.0, 4.0)
        return x, {"rails": [-4.0, 4.0]}, 0, _core.FLAG_HEALTH_CLIP
    if kind == "dropout_zeros":  # disconnected for 5 ms: exact zeros
        x[FAULT.start:FAULT.start + 40, 1] = 0.0
        return x, None, 1, _core.FLAG_HEALTH_DROPOUT
    if kind == "dropout_nan":
        x[FAULT.start:FAULT.start + 40, 0] = np.nan
        return x, None, 0, _core.FLAG_HEALTH_DROPOUT
    if kind == "dc_jump":  # the offset jumps by 10 std and stays
        x[FAULT.start:, 0] += np.float32(10 * sd[0])
        return x, None, 0, _core.FLAG_HEALTH_DC_JUMP
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["flat", "flat_relative", "clip", "rails", "dropout_zeros", "dropout_nan", "dc_jump"])
def test_health_each_fault_flags_its_channel_and_check(kind: str) -> None:
    x, health, channel, bit = _fault(kind)
    flagged = _flagged(_health(x, health))
    assert set(flagged) == {(channel, bit)}, flagged
    if kind == "dc_jump":  # once: the first window clean of the step, compared with one before it
        assert flagged[(channel, bit)] == 1
    # the same signal with the check disabled flags nothing
    names = {_core.FLAG_HEALTH_FLAT: "flat", _core.FLAG_HEALTH_CLIP: "clip", _core.FLAG_HEALTH_DROPOUT: "dropout",
             _core.FLAG_HEALTH_DC_JUMP: "dc_jump"}
    others = [n for b, n in names.items() if b != bit]
    assert not _health(x, {**(health or {}), "checks": others}).any()


def test_health_guards_machine_behaviour_is_not_a_sensor_fault() -> None:
    x = _clean()
    burst = x.copy()
    burst[FAULT, 2] *= 30  # a fault's amplitude burst
    ramp = x + np.float32(0.02) * np.arange(x.shape[0], dtype=np.float32)[:, None]  # degradation trend
    n = x.shape[0]
    tone = np.round(100 * np.sin(2 * np.pi * 50 * np.arange(n) / H_FS)) / 100  # 7-bit quantised tone
    quantised = np.repeat(tone[:, None], 3, axis=1).astype(np.float32)
    for sig in (burst, ramp, quantised):
        assert not _health(sig).any()


def test_health_settings_in_the_spec() -> None:
    spec = _health_spec()
    assert "health" not in spec.to_dict()  # absent = the defaults: old bundles serialise as before
    d = spec.health_settings
    assert d["checks"] == ["flat", "clip", "dropout", "dc_jump"]
    assert d == {"checks": ["flat", "clip", "dropout", "dc_jump"], "flat_abs": 1e-07, "flat_rel": 0.05,
                 "healthy_std": None, "clip_eps": 0.0001, "clip_fraction": 0.02, "clip_ratio": 8.0,
                 "clip_levels": 16.0, "rails": None, "rail_fraction": 0.01, "dropout_run": 32, "dc_k": 5.0,
                 "dc_own": 4.0}
    s2 = FeatureSpec.from_dict({**spec.to_dict(), "health": {"dc_k": 3, "rails": [-1, 1], "checks": ["dc_jump"]}})
    assert s2.to_dict()["health"] == {"dc_k": 3, "rails": [-1, 1], "checks": ["dc_jump"]}
    assert FeatureSpec.from_dict(s2.to_dict()) == s2
    assert s2.health_settings["rails"] == [-1.0, 1.0] and s2.health_settings["checks"] == ["dc_jump"]
    for bad, msg in [({"dc_k": -1}, "health.dc_k"), ({"nope": 1}, "unknown key 'nope'"),
                     ({"healthy_std": [1.0]}, "one value per channel"), ({"checks": ["flat", "flat"]}, "twice"),
                     ({"checks": ["loud"]}, "unknown check"), ({"dropout_run": 1.5}, "dropout_run"),
                     ({"rails": [1, 0]}, "rails"), ([1], "health must be an object")]:
        with pytest.raises(InputError, match=msg):
            FeatureSpec.from_dict({**spec.to_dict(), "health": bad})
    # the core object takes the same section
    ex = spec.extractor()
    assert _core.Pipeline(3, H_HOP, ex, {"checks": []}).health["checks"] == []
    with pytest.raises(ValueError, match="health.clip_eps"):
        _core.Pipeline(3, H_HOP, ex, {"clip_eps": 0.7})


def test_health_state_import_and_reset_restart_the_dc_reference() -> None:
    x = _clean()
    y = x + np.float32(20 * x.std())
    p = _health_spec().pipeline()
    p.push(x)
    tail, frames = p.get_state()
    p.set_state(tail, frames)
    *_, h = p.push(y[: 10 * H_HOP], health=True)
    # the window straddling old and new level is compared with none from before the import
    assert not (h & _core.FLAG_HEALTH_DC_JUMP).any()
    q = _health_spec().pipeline()
    q.push(x)
    *_, h = q.push(y[: 10 * H_HOP], health=True)  # without the import: the jump is seen
    assert (h[:, 0] & _core.FLAG_HEALTH_DC_JUMP).any()


def _gaussian_stream(spec: FeatureSpec, x: np.ndarray) -> tuple:
    feats, _, finite = spec.transform(x)
    f = feats[finite]
    d = spec.feature_dim
    mean, scale = f.mean(axis=0), f.std(axis=0) + 1e-3
    scorer = _core.GaussianScorer(mean.astype(np.float32), scale.astype(np.float32), np.eye(d, dtype=np.float32))
    alarm = _core.AlarmState(float(3 * d), float(2 * d), 2, 3)
    drift = _core.DriftMonitor(log_center=float(np.log(d)), score_h=5.0, latent_mean=np.zeros(d, np.float32),
                               latent_projection=np.eye(d, dtype=np.float32), latent_limit=1e3)
    return scorer, alarm, drift


def test_scored_stream_marks_unhealthy_windows_and_does_not_fold_them_in() -> None:
    spec = FeatureSpec(fs=H_FS, window=H_WINDOW, hop=H_HOP, channels=("x", "y", "z"),
                       blocks=({"kind": "time_stats", "stats": ["rms", "kurtosis", "crest_factor"]},))
    clean = _clean(seed=4, seconds=3.0)
    x = clean.copy()
    x[FAULT, 1] = 0.0  # disconnected: flat and dropout
    scorer, alarm, drift = _gaussian_stream(spec, clean)
    stream = _core.ScoredStream(spec.pipeline(), scorer, alarm, drift)
    meta, contrib, health = stream.push(x, 1.0, health=True)
    bad = health.any(axis=1)
    assert bad.any() and not health[:, [0, 2]].any()
    assert (health[bad, 1] == _core.FLAG_HEALTH_FLAT | _core.FLAG_HEALTH_DROPOUT).any()
    flags = meta[:, 1].astype(np.int64)
    np.testing.assert_array_equal((flags & _core.FLAG_SENSOR_FAULT) != 0, bad)
    assert (flags & _core.FLAG_FINITE).all()  # the samples were finite: marked, not NaN
    assert np.isnan(meta[bad, 2]).all() and np.isnan(contrib[bad]).all() and np.isfinite(meta[~bad, 2]).all()
    assert not (flags[bad] & _core.FLAG_ANOMALY).any()
    # the same windows by hand: scores of the healthy windows equal, and the alarm and drift state
    # equal stepping only the healthy windows (valid = finite and healthy)
    s2, a2, d2 = _gaussian_stream(spec, clean)
    feats, ends, finite, _, h2 = spec.pipeline().push(x, 1.0, True, False, health=True)
    np.testing.assert_array_equal(h2, health)
    scores, _ = s2.score(feats)
    np.testing.assert_array_equal(meta[~bad, 2], scores[~bad])
    valid = finite & ~bad
    d2.step(a2, scores, valid, feats)
    assert a2.get_state() == alarm.get_state() and a2.get_state()[2] == int(valid.sum())
    np.testing.assert_equal(d2.get_state(), drift.get_state())
    # without health=True: the old return shape
    s3, a3, d3 = _gaussian_stream(spec, clean)
    res = _core.ScoredStream(spec.pipeline(), s3, a3, d3).push(x)
    assert len(res) == 2
    np.testing.assert_array_equal(res[0], meta)


def test_cwru_recordings_give_no_health_flags(shared_data: Path) -> None:
    """Every CWRU recording at 12 kHz (the 48 kHz healthy baseline resampled), both accelerometers,
    through the default anomaly spec's framing (1024 / 512) and the default health settings."""
    from edgefault.io.readers import read_recording

    with open(shared_data / "cwru" / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    n_windows = 0
    for r in rows:
        rec = read_recording(shared_data / r["path"], fs=12000.0, default_fs=float(r["fs_hz"]))
        spec = FeatureSpec.for_anomaly(12000.0, rec.channels)
        *_, h = spec.pipeline().push(rec.data, 1.0, False, False, health=True)
        assert not h.any(), (r["path"], _flagged(h))
        n_windows += h.size
    assert len(rows) >= 60 and n_windows > 25000


def _clip_reference(w: np.ndarray, eps: float = 1e-4, fraction: float = 0.02, ratio: float = 8.0,
                    min_levels: float = 16.0) -> bool:
    """The CLIP plateau rule of docs/features.md, in numpy (float32 thresholds as in the core)."""
    n = w.size
    mx, mn = float(w.max()), float(w.min())
    r = mx - mn
    if r <= 0:
        return False
    tol = float(np.float32(eps)) * r
    need = max(3, int(np.ceil(float(np.float32(fraction)) * n)))
    for f, top in ((w, mx), (-w, -mn)):
        t = np.float32(top - tol)
        n_top = int(np.count_nonzero(f >= t))
        if n_top < need:
            continue
        counts, prev, gap = [], top, np.inf
        for _ in range(3):
            below = f[f < t]
            if below.size == 0:
                break
            v = float(below.max())
            lo = np.float32(v - tol)
            counts.append(int(np.count_nonzero((f >= lo) & (f < t))))
            gap, prev, t = min(gap, prev - v), v, lo
        if counts and gap > 0 and n_top >= ratio * np.mean(counts) and r >= min_levels * gap:
            return True
    return False


def test_health_clip_decisions_equal_the_reference_rule() -> None:
    """Random windows, clipped or not, quantised or not, with large DC offsets: the core's CLIP bit
    (with its one-compare prefilter) is exactly the rule."""
    rng = np.random.default_rng(7)
    ex = _core.FeatureExtractor(H_FS, 64, [{"kind": "time_stats", "stats": ["rms"]}])
    checked = flagged = 0
    for trial in range(400):
        w = rng.normal(size=64) * rng.choice([1e-3, 1.0, 30.0])
        if trial % 2:
            c = rng.uniform(0.3, 2.5) * w.std()
            w = np.clip(w, -c if trial % 4 == 1 else -np.inf, c)
        if trial % 3 == 0:
            w = np.round(w / w.std() * rng.choice([2, 8, 40, 400])) / 40
        w = (w + rng.choice([0.0, 1.0, -250.0, 9000.0])).astype(np.float32)
        p = _core.Pipeline(1, 64, ex, {"checks": ["clip"]})
        *_, h = p.push(w, 1.0, False, False, health=True)
        got = bool(h[0, 0] & _core.FLAG_HEALTH_CLIP)
        assert got == _clip_reference(w), (trial, w)
        checked += 1
        flagged += got
    assert checked == 400 and 40 < flagged < 360  # both outcomes exercised
