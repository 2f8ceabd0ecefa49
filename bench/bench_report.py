"""`edgefault report` on a large events file: build time, peak memory, page size.

    python bench/bench_report.py [--events 1000000] [--keep DIR]

The events are `edgefault demo`'s (2 channels, contributions per channel / band / feature, one
alarm span per 90 s run), repeated with shifted times up to --events lines. The peer measured in
the same run is a bare `json.loads` pass over the same file (the floor for any report that parses
every line with the standard library).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--keep", help="folder for the events file and the page (default: a temp folder)")
    args = ap.parse_args()
    from edgefault.demo import run_demo
    from edgefault.report.html import write_report

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    run_demo(out_dir=str(work), quiet=True)
    base = [json.loads(line) for line in (work / "events.jsonl").read_text().splitlines()]
    dur = base[-1]["t"] - base[0]["t_start"] + (base[1]["t"] - base[0]["t"])
    path = work / "events_big.jsonl"
    with path.open("w") as fh:
        for i in range(args.events):
            r, j = divmod(i, len(base))
            e = dict(base[j])
            e["seq"], e["t"], e["t_start"] = i, e["t"] + r * dur, e["t_start"] + r * dur
            fh.write(json.dumps(e) + "\n")
    size_in = path.stat().st_size
    t0 = time.perf_counter()
    with path.open() as fh:
        for line in fh:
            json.loads(line)
    t_json = time.perf_counter() - t0
    t0 = time.perf_counter()
    data, size = write_report(path, work / "report.html")
    t_rep = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"events: {data.n_events} ({size_in / 1e6:.0f} MB), alarm spans: {len(data.spans)}")
    print(f"json.loads pass (peer): {t_json:.2f} s")
    print(f"edgefault report: {t_rep:.2f} s ({t_rep / t_json:.2f}x the json.loads pass; read {data.read_seconds:.2f} s), "
          f"page {size / 1024:.0f} KiB, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
