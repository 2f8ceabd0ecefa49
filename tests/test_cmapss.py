"""C-MAPSS reader and the `edgefault eval --dataset cmapss` protocol (real FD001 data where present)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefault.io.cmapss import FD001_CONSTANT, SENSOR_NAMES, load_subset, read_cmapss, read_rul
from edgefault.errors import InputError
from edgefault.evaluation.cmapss import early_cycles, select_sensors
from edgefault.evaluation.protocols import assert_disjoint_units, split_units


@pytest.fixture(scope="module")
def cmapss_dir(shared_data: Path) -> Path:
    d = shared_data / "cmapss"
    if not (d / "train_FD001.txt").is_file():
        pytest.skip(f"C-MAPSS FD001 not found in {d}")
    return d


def _row(unit: int, cycle: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed + 1000 * unit + cycle)
    vals = [f"{v:.4f}" for v in rng.normal(size=24)]
    return f"{unit} {cycle} " + " ".join(vals)


def _write(tmp_path: Path, lines: list[str], name: str = "train_FD009.txt") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


# -- reader ------------------------------------------------------------------------------------------
def test_reader_counts_and_values_match_the_file(cmapss_dir: Path) -> None:
    train, test = load_subset(cmapss_dir, "FD001")
    ref = np.loadtxt(cmapss_dir / "train_FD001.txt")
    assert len(train) == 100 == len(np.unique(ref[:, 0]))
    assert sum(u.n_cycles for u in train) == ref.shape[0] == 20631
    np.testing.assert_array_equal(np.concatenate([u.sensors for u in train]), ref[:, 5:])
    np.testing.assert_array_equal(np.concatenate([u.settings for u in train]), ref[:, 2:5])
    assert [u.unit for u in train] == list(range(1, 101))
    assert all(u.rul_end == 0 and u.life == u.n_cycles for u in train)
    assert train[0].n_cycles == int(np.sum(ref[:, 0] == 1))
    np.testing.assert_array_equal(train[4].rul(), train[4].n_cycles - np.arange(1, train[4].n_cycles + 1))
    ref_t = np.loadtxt(cmapss_dir / "test_FD001.txt")
    assert len(test) == 100 and sum(u.n_cycles for u in test) == ref_t.shape[0]
    rul = np.array([int(t) for t in (cmapss_dir / "RUL_FD001.txt").read_text().split()])
    assert [u.rul_end for u in test] == rul.tolist()
    assert test[0].life == test[0].n_cycles + rul[0]
    np.testing.assert_array_equal(test[0].channels(["s2", "setting1"]), ref_t[ref_t[:, 0] == 1][:, [6, 2]])


def test_auto_sensors_drop_exactly_the_constant_ones(cmapss_dir: Path) -> None:
    train, _ = load_subset(cmapss_dir, "FD001")
    keep = select_sensors(train, 0.3)
    assert sorted(set(SENSOR_NAMES) - set(keep), key=SENSOR_NAMES.index) == list(FD001_CONSTANT)


def test_reader_accepts_blank_lines_and_signs(tmp_path: Path) -> None:
    p = _write(tmp_path, ["", _row(1, 1), _row(1, 2), "   ", _row(2, 1)])
    units = read_cmapss(p)
    assert [(u.unit, u.n_cycles) for u in units] == [(1, 2), (2, 1)]
    assert units[0].rul_end == 0  # a train_* file runs to failure
    r = tmp_path / "RUL.txt"
    r.write_text("\n+12 \n7\n")
    assert read_rul(r).tolist() == [12, 7]
    t = read_cmapss(_write(tmp_path, [_row(1, 1), _row(2, 1)], "test_FD009.txt"), rul=r)
    assert [u.rul_end for u in t] == [12, 7] and t[1].life == 8


@pytest.mark.parametrize("lines, match", [
    ([_row(1, 1), "1 2 0.1 0.2"], r"line 2: expected 26 numbers"),
    ([_row(1, 1), _row(1, 2).replace(" ", " x", 1)[:-7] + " 1.0"], r"line 2: .* is not a number"),
    ([_row(1, 1), _row(1, 3)], r"line 2: unit 1 has cycle 3, expected 2"),
    ([_row(1, 2)], r"line 1: unit 1 has cycle 2, expected 1"),
    ([_row(1, 1), _row(2, 1), _row(1, 2)], r"line 3: unit 1 appears again"),
    ([_row(1, 1).replace("1 1 ", "1 1.5 ", 1)], r"line 1: cycle must be a positive integer"),
    ([_row(1, 1).replace("1 1 ", "0 1 ", 1)], r"line 1: unit number must be a positive integer"),
    ([_row(1, 1).replace("1 1 ", "1e30 1 ", 1)], r"line 1: unit number must be a positive integer"),
    ([_row(1, 1).rsplit(" ", 1)[0] + " nan"], r"line 1: column 26 \(s21\) is 'nan'"),
    (["", "  "], r"no data rows"),
])
def test_reader_rejects_malformed_rows(tmp_path: Path, lines: list[str], match: str) -> None:
    with pytest.raises(InputError, match=match):
        read_cmapss(_write(tmp_path, lines))


def test_reader_rejects_bad_files_and_rul(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such C-MAPSS file"):
        read_cmapss(tmp_path / "missing.txt")
    (tmp_path / "bin.txt").write_bytes(b"1 1 \xff\n")
    with pytest.raises(InputError, match="non-ASCII"):
        read_cmapss(tmp_path / "bin.txt")
    p = _write(tmp_path, [_row(1, 1), _row(2, 1)], "test_FD009.txt")
    r = tmp_path / "RUL.txt"
    r.write_text("5\n")
    with pytest.raises(InputError, match="2 units but 1 remaining-life values"):
        read_cmapss(p, rul=r)
    for text, match in [("5\n-1\n", "line 2: remaining life must be a non-negative integer"),
                        ("5 6\n", "line 1: expected one remaining-life value"),
                        ("abc\n", "is not a number"), ("\n\n", "no remaining-life values")]:
        r.write_text(text)
        with pytest.raises(InputError, match=match):
            read_rul(r)
    with pytest.raises(InputError, match="not a folder"):
        load_subset(tmp_path / "nope")
    with pytest.raises(InputError, match="has no column"):
        read_cmapss(_write(tmp_path, [_row(1, 1)]))[0].channels(["s22"])
    assert read_cmapss(p)[0].rul_end is None  # a test file without RUL values: remaining life unknown
    with pytest.raises(InputError, match="remaining life is unknown"):
        read_cmapss(p)[0].rul()


# -- protocol ----------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 150), a=st.floats(0.05, 1), b=st.floats(0.05, 1), c=st.floats(0.05, 1),
       seed=st.integers(0, 2**31))
def test_unit_split_is_a_partition(n: int, a: float, b: float, c: float, seed: int) -> None:
    ids = list(range(7, 7 + n))
    s = split_units(ids, [a, b, c], seed=seed)
    sets = [set(s[r]) for r in ("train", "calib", "test")]
    assert all(sets) and sum(len(x) for x in sets) == n and set().union(*sets) == set(ids)
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert s == split_units(ids, [a, b, c], seed=seed)


def test_unit_split_checks() -> None:
    s = split_units(range(1, 101), [0.5, 0.2, 0.3], seed=0)
    assert [len(s[r]) for r in ("train", "calib", "test")] == [50, 20, 30]
    assert s != split_units(range(1, 101), [0.5, 0.2, 0.3], seed=1)
    assert sum(len(v) for v in split_units(range(1, 101), [0.5, 0.2, 0.3], max_units=10).values()) == 10
    with pytest.raises(InputError, match="unit 3 is in both the train and the test units"):
        assert_disjoint_units({"train": [1, 2, 3], "calib": [4], "test": [3, 5]})
    with pytest.raises(InputError, match="duplicate"):
        split_units([1, 1, 2, 3], [0.5, 0.2, 0.3])
    with pytest.raises(InputError, match="at least 3 units"):
        split_units([1, 2], [0.5, 0.2, 0.3])


def _args(data: Path, **kw: object) -> argparse.Namespace:
    from edgefault.cli import build_parser

    argv = ["eval", "--dataset", "cmapss", "--data", str(data)]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return build_parser().parse_args(argv)


@pytest.fixture(scope="module")
def gaussian_report(cmapss_dir: Path) -> dict:
    from edgefault.evaluation.experiments import run_eval

    r = run_eval(_args(cmapss_dir, seeds=1))
    assert r["seeds"] == [0] and len(r["runs"]) == 1
    return r["runs"][0]


def test_eval_split_is_leak_free_and_figures_are_sane(gaussian_report: dict) -> None:
    r = gaussian_report
    split = r["split"]
    assert sorted(split["train"] + split["calib"] + split["test"]) == list(range(1, 101))
    assert_disjoint_units(split)
    g = r["models"]["gaussian"]
    assert g["n_test_units"] == 30 and len(g["units"]) == 30
    assert {u["unit"] for u in g["units"]} == set(split["test"])
    # Early-life false alarms near the 1 % target (per window), few units with any early alarm.
    assert g["early_far_per_window"] <= 0.03
    assert g["early_units_with_alarm"] <= 0.15
    # Far above chance: most engines alarmed before failure, early life separable from the end.
    assert g["detection_rate"] >= 0.7
    assert g["auroc_early_vs_last_k"] >= 0.85
    lt = g["lead_time_cycles"]
    assert lt["n"] >= 20 and 5 <= lt["median"] <= 150 and lt["q25"] <= lt["median"] <= lt["q75"]
    a = g["attribution"]
    assert a["n_anomalous_near_failure_windows"] > 100
    assert not set(a["top1_counts"]) & set(FD001_CONSTANT)
    tf = g["test_file_check"]
    assert tf["n_units"] == 100
    assert tf["alarm_at_end_rul_gt_100"] <= 0.1 < tf["alarm_at_end_rul_le_30"]
    assert tf["auroc_end_score_rul_le_30_vs_rest"] >= 0.75


def test_eval_early_life_definition(cmapss_dir: Path, gaussian_report: dict) -> None:
    train, _ = load_subset(cmapss_dir)
    by_id = {u.unit: u for u in train}
    g = gaussian_report["models"]["gaussian"]
    for u in g["units"]:
        unit = by_id[u["unit"]]
        assert u["early_cycles"] == int(np.floor(0.3 * unit.n_cycles)) == early_cycles(unit, 0.3)
        if u["first_alarm_after_early_life"] is not None:
            assert u["early_cycles"] < u["first_alarm_after_early_life"] <= u["life"]


def test_eval_cli_writes_report_and_rejects_bad_options(cmapss_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from edgefault.cli import main

    out = tmp_path / "r.json"
    assert main(["eval", "--dataset", "cmapss", "--data", str(cmapss_dir), "--max-units", "30", "--window", "20",
                 "--seeds", "2", "--seed", "3", "--inject-sd", "0", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["window_cycles"] == 20 and r["seeds"] == [3, 4]
    assert all(sum(len(v) for v in run["split"].values()) == 30 for run in r["runs"])
    assert r["runs"][0]["split"] != r["runs"][1]["split"]
    s = r["summary"]["gaussian"]["detection_rate"]
    vals = [run["models"]["gaussian"]["detection_rate"] for run in r["runs"]]
    assert s["n"] == 2 and s["mean"] == pytest.approx(np.mean(vals)) and s["std"] == pytest.approx(np.std(vals))
    assert "injected_step" not in r["runs"][0]["models"]["gaussian"]
    capsys.readouterr()
    for bad, msg in [(["--sensors", "s2,s99"], "unknown sensors"), (["--early-fraction", "0.9"], "early-fraction"),
                     (["--method", "sfdsc"], "available: gaussian, vae"), (["--window", "200"], "early-life cycles")]:
        assert main(["eval", "--dataset", "cmapss", "--data", str(cmapss_dir), *bad]) == 2
        assert msg in capsys.readouterr().err


def test_attribution_names_an_injected_sensor(gaussian_report: dict) -> None:
    g = gaussian_report["models"]["gaussian"]
    inj = g["injected_step"]
    n = len(gaussian_report["sensors"])
    assert inj["chance"] == pytest.approx(1 / n)
    # A one-sd step on one sensor over early life: flagged, and contrib names that sensor far above chance.
    assert inj["flagged_fraction"] >= 0.8
    assert inj["top1_is_injected_sensor"] >= 0.5
    assert set(inj["top1_is_injected_sensor_by_sensor"]) == set(gaussian_report["sensors"])
    eff = gaussian_report["sensor_effect_size_train_units"]
    assert set(eff) == set(gaussian_report["sensors"]) and min(abs(v) for v in eff.values()) > 1.0


def test_eval_vae_waveform_beside_gaussian(cmapss_dir: Path) -> None:
    """--method vae: a waveform VAE and the Gaussian on the same split, both through the Runtime."""
    for mod in ("torch", "onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(mod, reason=f"the VAE path needs {mod} (the [train] extra)")
    from edgefault.evaluation.experiments import run_eval

    r = run_eval(_args(cmapss_dir, method="vae", seeds=1, max_units=50, epochs=15, inject_sd=2))
    run = r["runs"][0]
    assert set(run["models"]) == {"gaussian", "vae"} and set(r["summary"]) == {"gaussian", "vae"}
    v = run["models"]["vae"]
    assert v["input"] == "waveform" and v["n_calib_windows"] > 100
    assert v["onnx_score_max_rel_diff"] <= 1e-4
    assert v["n_test_units"] == len(run["split"]["test"]) == 15
    assert v["auroc_early_vs_last_k"] >= 0.85 and v["detection_rate"] >= 0.7
    assert v["early_far_per_window"] <= 0.06
    sensors = set(run["sensors"])
    assert set(v["attribution"]["top1_counts"]) <= sensors and v["attribution"]["n_anomalous_near_failure_windows"] > 50
    inj = v["injected_step"]
    assert inj["top1_is_injected_sensor"] >= 5 * inj["chance"]


def test_runtime_scores_match_a_numpy_reference(cmapss_dir: Path, tmp_path: Path) -> None:
    """The Gaussian's per-cycle windows through Runtime.push equal a numpy recomputation: window
    mean and population std per sensor, standardised, squared Mahalanobis distance; the channel
    contributions sum to the score."""
    from edgefault import kinds
    from edgefault.cli import build_parser
    from edgefault.evaluation.cmapss import _early_blocks, _train, stream_unit
    from edgefault.device.runtime import Runtime
    from edgefault.device.spec import FeatureSpec

    train, _ = load_subset(cmapss_dir)
    sensors = select_sensors(train[:30], 0.3)
    w = 25
    spec = FeatureSpec(fs=1.0, window=w, hop=1, channels=tuple(sensors),
                       blocks=({"kind": "time_stats", "stats": ["mean", "std"]},), taper="rect")
    tb, _ = _early_blocks(train[:30], sensors, 0.3, w)
    cb, _ = _early_blocks(train[30:45], sensors, 0.3, w)
    args = build_parser().parse_args(["eval", "--dataset", "cmapss", "--target-far", "0.01", "--k", "3", "--n", "5"])
    bundle, info = _train(kinds.get("gaussian"), sensors, spec, tb, cb, args, 0, [], tmp_path / "g.efb")
    rt = Runtime(bundle)
    unit = train[60]
    x = unit.channels(sensors).astype(np.float32).astype(np.float64)
    r = stream_unit(rt, x)
    win = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)  # (m, n_sensors, w)
    feats = np.stack([win.mean(axis=2), win.std(axis=2)], axis=2).reshape(win.shape[0], -1)
    def score(f: np.ndarray) -> np.ndarray:
        z = (f - bundle.array("mean")) / bundle.array("scale")
        return np.einsum("ij,jk,ik->i", z, bundle.array("precision").astype(np.float64), z)

    np.testing.assert_array_equal(r["cycle"], np.arange(w, unit.n_cycles + 1))
    # The core hands out float32 features: with the reference's features rounded the same way the
    # scores agree to float32 precision ...
    np.testing.assert_allclose(r["score"], score(feats.astype(np.float32).astype(np.float64)), rtol=1e-5)
    # ... and float32 window means of sensors at levels ~ 9000 (s9, s14) move the score by < 0.5 %.
    np.testing.assert_allclose(r["score"], score(feats), rtol=5e-3)
    contrib = r["contrib"]
    assert isinstance(contrib, list)
    tot = np.array([sum(c.values()) for c in contrib])
    np.testing.assert_allclose(tot, r["score"], rtol=1e-3, atol=1e-2)
    assert info["features"][:2] == [f"{sensors[0]}.mean", f"{sensors[0]}.std"]


def test_eval_vae_forecast_head(cmapss_dir: Path) -> None:
    for mod in ("torch", "onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(mod, reason=f"the VAE path needs {mod} (the [train] extra)")
    from edgefault.cli import build_parser
    from edgefault.evaluation.experiments import run_eval

    args = build_parser().parse_args(["eval", "--dataset", "cmapss", "--data", str(cmapss_dir), "--method", "vae",
                                      "--forecast", "--seeds", "1", "--max-units", "40", "--epochs", "10",
                                      "--inject-sd", "0"])
    v = run_eval(args)["runs"][0]["models"]["vae"]
    assert v["forecast_horizon"] == 30 // 8
    assert v["auroc_early_vs_last_k"] >= 0.85 and v["detection_rate"] >= 0.7
    assert v["early_far_per_window"] <= 0.06


def test_early_life_far_states_its_evidence(gaussian_report: dict) -> None:
    """The early-life FAR comes with its effective size and CI; the CI must not refute 2x the target,
    and the onsets of the debounced alarm are counted for the k/n the bundle used."""
    from edgefault.device.thresholds import smallest_checkable_far, wilson_interval

    g = gaussian_report["models"]["gaussian"]
    ev = g["early_far_evidence"]
    assert ev["far"] == pytest.approx(g["early_far_per_window"]) and ev["n_windows"] == g["n_early_windows"]
    # 30 cycles per window at hop 1: far fewer independent windows than windows
    assert 10 < ev["n_effective"] < ev["n_windows"] / 5 and ev["autocorr_time_windows"] > 5
    assert ev["ci95"] == pytest.approx(list(wilson_interval(ev["far"] * ev["n_effective"], ev["n_effective"])))
    assert ev["ci95"][0] <= ev["far"] <= ev["ci95"][1]
    assert ev["smallest_target_checkable"] == pytest.approx(smallest_checkable_far(ev["n_effective"]))
    assert ev["within_2x_target"] != "fails" and ev["ci95"][0] <= 2 * gaussian_report["target_far"]
    on = g["early_false_alarm_onsets"]
    assert (on["alarm_k"], on["alarm_n"]) == (gaussian_report["k"], gaussian_report["n"]) == (3, 5)
    assert on["time_unit"] == "1000 cycles" and on["healthy_time"] == pytest.approx(g["n_early_windows"] / 1000)
    assert on["onsets"] >= round(g["early_units_with_alarm"] * g["n_test_units"])  # each such unit: >= 1 onset
