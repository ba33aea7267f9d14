"""Run every benchmark on one throwaway PostgreSQL and write docs/benchmarks.md with PNG plots.

    python bench/run_all.py            # full run (tens of minutes on 2 cores): docs/benchmarks.md
    python bench/run_all.py --smoke    # seconds per benchmark, for CI: prints, writes nothing
    python bench/run_all.py --smoke --out /tmp/b.md   # smoke, and write the report there

Every number in the report was measured in the same run, side by side with its baseline. The
report starts with the machine it ran on; benchmarks on a shared 2-core machine are noisy, so read
the ratios, not the absolute numbers. Exits non-zero if a benchmark failed or found an overspend
or a broken audit chain.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run_all.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _report
from bench._common import REPO, Result, bench_server, machine, print_result

BENCHMARKS = (
    "credits",
    "scale",
    "gate_overhead",
    "db_breakdown",
    "mcp_e2e",
    "mediator_profile",
    "http_tool_overhead",
    "otel_overhead",
    "one_org",
    "gate_cpu",
    "gate_parts",
    "audit_scale",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds each, for CI")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run just these")
    parser.add_argument("--dsn", help="superuser DSN of a server to use instead of an embedded one")
    parser.add_argument(
        "--out",
        type=Path,
        help="report path (default: docs/benchmarks.md, or nothing with --smoke)",
    )
    args = parser.parse_args()
    out: Path | None = args.out or (None if args.smoke else REPO / "docs" / "benchmarks.md")
    results: list[Result] = []
    failed: list[str] = []
    started = time.monotonic()
    with bench_server(args.dsn) as server:
        facts = {
            **machine(),
            "postgres": server.version,
            "postgres_kind": server.kind,
            "commit": _commit(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "mode": "smoke" if args.smoke else "full",
        }
        for name in args.only or BENCHMARKS:
            module = __import__(f"bench.{name}", fromlist=["run"])
            t0 = time.monotonic()
            try:
                got = module.run(server, args.smoke)
            except Exception:
                failed.append(name)
                print(f"\n== {name} FAILED\n{traceback.format_exc()}", file=sys.stderr)
                continue
            for r in got:
                r.source = r.source or name
                print_result(r)
                r.notes.append(f"measured in {time.monotonic() - t0:.0f} s")
            results.extend(got)
    facts["total_seconds"] = f"{time.monotonic() - started:.0f}"
    if out is not None:
        _report.write(out, facts, results, failed)
        out.with_suffix(".json").write_text(
            json.dumps(
                {"machine": facts, "results": [asdict(r) for r in results], "failed": failed},
                indent=2,
                default=str,
            )
        )
        print(f"\nwrote {out}")
    bad = [n for r in results for n in r.notes if n.startswith("FAILED")]
    return 1 if failed or bad else 0


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
