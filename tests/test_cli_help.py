"""The CLI's help reads per task and per method, and training says what its data can support."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import noise_recording

from edgefault.cli import main


def _help(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(args + ["--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def test_train_help_is_split_by_task(capsys: pytest.CaptureFixture[str]) -> None:
    top = _help(["train"], capsys)
    assert "anomaly" in top and "classify" in top and "--bands" not in top
    anomaly = _help(["train", "anomaly"], capsys)
    classify = _help(["train", "classify"], capsys)
    assert "--method gaussian (anomaly)" in anomaly and "--method vae (anomaly)" in anomaly
    assert "sfdsc" not in anomaly.split("--method gaussian")[1] and "--atoms" not in anomaly
    assert "--method sfdsc (classify)" in classify and "--arch" not in classify and "--drift-far" not in classify
    # classify calibrates its 'not normal' threshold too: --target-far is shared, described for the classifier
    assert "--target-far" in classify and "not normal" in classify
    assert "--label-columns" in classify and "--label-columns" not in anomaly


@pytest.mark.parametrize("cmd", [["score"], ["info"], ["explain"], ["demo"], ["report"]])
def test_every_positional_and_option_has_help(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from edgefault.cli import build_parser

    p = build_parser()
    sub = next(a for a in p._actions if a.dest == "command").choices[cmd[0]]  # type: ignore[union-attr]
    for a in sub._actions:
        if a.dest != "help":
            assert a.help, f"edgefault {cmd[0]}: {a.dest} has no help"


def test_tiny_baseline_warns_and_strict_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = noise_recording(seconds=3.0, seed=3)
    f = tmp_path / "h.npz"
    np.savez(f, data=rec.data, fs=np.float64(rec.fs), channels=np.array(rec.channels))
    out = tmp_path / "m.efb"
    assert main(["train", "anomaly", str(f), "--window", "256", "--out", str(out), "--drift-far", "off"]) == 0
    cap = capsys.readouterr()
    s = json.loads(cap.out)
    assert s["target_supported"] is False and s["min_supported_far"] > 0.01 and s["n_calib_effective"] > 0
    assert "independent" in cap.err and "--target-far" in cap.err and out.exists()
    out2 = tmp_path / "m2.efb"
    assert main(["train", "anomaly", str(f), "--window", "256", "--out", str(out2), "--drift-far", "off",
                 "--strict"]) == 2
    assert "refused by --strict" in capsys.readouterr().err and not out2.exists()
    # a target the data supports: no warning
    assert main(["train", "anomaly", str(f), "--window", "256", "--out", str(out2), "--drift-far", "off",
                 "--target-far", "0.45", "--strict"]) == 0
    assert json.loads(capsys.readouterr().out)["target_supported"] is True


def _walk(parser, path):  # type: ignore[no-untyped-def]
    import argparse

    yield path, parser
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                yield from _walk(sub, path + [name])


def test_every_action_of_the_whole_parser_has_help() -> None:
    """Issue #18 item 6: walks every (sub)command, train tasks included: no option, positional or
    subcommand choice without help text."""
    import argparse

    from edgefault.cli import build_parser

    missing = []
    for path, parser in _walk(build_parser(), ["edgefault"]):
        for a in parser._actions:
            if a.help is None or (isinstance(a.help, str) and not a.help.strip()):
                missing.append(f"{' '.join(path)}: {a.option_strings or a.dest}")
            if isinstance(a, argparse._SubParsersAction):
                listed = {c.dest for c in a._choices_actions}
                missing += [f"{' '.join(path)} {n}: no help line" for n in a.choices if n not in listed]
    assert not missing, missing


@pytest.mark.parametrize("cmd, positionals", [
    (["train", "anomaly"], ["files"]), (["score"], ["bundle", "files"]), (["info"], ["bundle"]),
    (["explain"], ["bundle", "recording"]), (["report"], ["events"]), ([], ["COMMAND"]), (["train"], ["TASK"]),
])
def test_help_describes_each_positional(cmd: list[str], positionals: list[str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(cmd, capsys)
    block = text.split("positional arguments:")[1].split("options:")[0]
    for name in positionals:
        line = next(l for l in block.splitlines() if l.strip().startswith(name))
        described = line.strip()[len(name):].strip() or block.split(line)[1].splitlines()[1].strip()
        assert described, f"edgefault {' '.join(cmd)} --help: {name} has no description"


@pytest.mark.parametrize("cmd, method, own, others", [
    (["train", "anomaly"], "gaussian", ["--bands"], ["--arch", "--epochs", "--forecast", "--atoms"]),
    (["train", "anomaly"], "vae", ["--arch", "--epochs"], ["--bands", "--atoms"]),
    (["train", "classify"], "sfdsc", ["--atoms"], ["--bands", "--arch"]),
    (["eval"], "vae", ["--arch"], ["--bands", "--atoms"]),
])
def test_method_help_shows_only_that_methods_options(cmd: list[str], method: str, own: list[str],
                                                     others: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    for form in (["--method", method], [f"--method={method}"]):
        text = _help(cmd + form, capsys)
        assert f"--method {method} (" in text
        for opt in own:
            assert opt in text, f"{opt} missing from {cmd} --method {method} --help"
        for opt in others:
            assert opt not in text, f"{opt} (another method's) in {cmd} --method {method} --help"
    # the task's own help still lists every method (classify has one method: the same help)
    assert len(_help(cmd, capsys).splitlines()) >= len(_help(cmd + ["--method", method], capsys).splitlines())


def test_train_task_help_is_not_the_train_help(capsys: pytest.CaptureFixture[str]) -> None:
    top = _help(["train"], capsys)
    assert len(top.splitlines()) < 30 and "--out" not in top and "--method NAME --help" in top


def test_training_states_its_evidence_and_records_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #18 item 5: a tiny baseline (about 80 training / 34 calibration windows) for a 1 %
    target warns naming the numbers and what to do; --strict refuses and leaves an earlier bundle at
    --out alone; an adequate baseline trains with no warning; the bundle's training record holds
    the effective calibration size and the smallest supported target."""
    from edgefault.device.bundle import load_bundle

    rec = noise_recording(seconds=3.0, seed=3)
    tiny = tmp_path / "tiny.npz"
    np.savez(tiny, data=rec.data, fs=np.float64(rec.fs), channels=np.array(rec.channels))
    out = tmp_path / "m.efb"
    argv = ["train", "anomaly", str(tiny), "--window", "256", "--out", str(out), "--drift-far", "off"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    s = json.loads(cap.out)
    assert 60 <= s["n_train_windows"] <= 100 and 25 <= s["n_calib_windows"] <= 40
    warning = next(line for line in cap.err.splitlines() if "warning:" in line)
    for number in (f"{s['n_calib_windows']} calibration windows", f"{s['n_calib_effective']:g} independent",
                   f"down to {s['min_supported_far']:.2g}", "--target-far 0.01", "record more healthy data"):
        assert number in warning, warning
    training = load_bundle(out).manifest["training"]
    assert training["n_calib_effective"] == s["n_calib_effective"] > 0
    assert training["min_supported_far"] == s["min_supported_far"] and training["target_supported"] is False
    before = out.read_bytes()
    assert main(argv + ["--strict"]) == 2
    err = capsys.readouterr().err
    assert "refused by --strict" in err and f"{s['n_calib_effective']:g} independent" in err and "Traceback" not in err
    assert out.read_bytes() == before  # the earlier bundle at --out is left as it was
    assert not list(tmp_path.glob(".*partial*"))

    rec = noise_recording(seconds=40.0, seed=4)
    big = tmp_path / "big.npz"
    np.savez(big, data=rec.data, fs=np.float64(rec.fs), channels=np.array(rec.channels))
    out2 = tmp_path / "big.efb"
    assert main(["train", "anomaly", str(big), "--window", "256", "--out", str(out2), "--drift-far", "off",
                 "--target-far", "0.05", "--strict"]) == 0
    cap = capsys.readouterr()
    s = json.loads(cap.out)
    assert s["target_supported"] is True and s["min_supported_far"] <= 0.05 and s["out"] == str(out2)
    assert "warning" not in cap.err and f"{s['n_calib_effective']:g} independent" in cap.err
    assert load_bundle(out2).manifest["training"]["target_supported"] is True
