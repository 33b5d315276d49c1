#!/usr/bin/env python3
"""Runs every registered fuzz target under libFuzzer for a bounded time.

The targets are the ones junction_add_fuzz_target() registered, read from
BUILD/fuzz/targets.txt (name <TAB> committed corpus dir), so a new target is fuzzed without
being listed here. Build them first: scripts/build.sh fuzz (-> build-fuzz/).

Each target starts from its committed corpus (read only) and writes the inputs it finds to a
temporary directory. The run fails (exit 1) on any crash, leak, timeout, out-of-memory or
sanitizer report, printing the target's name, the path of the input that did it (kept under
BUILD/fuzz-artifacts/NAME/) and the end of the target's output. A target that is registered
but not built, has no corpus or executes nothing fails too.

  tests/fuzz/run_all.py                      # every target, 20 s each, nproc at a time
  tests/fuzz/run_all.py --time 300 --grow    # longer, then merge new coverage into the corpora
  tests/fuzz/run_all.py --only 'intercom'    # a subset (regex on the name)

--grow minimises what a run found into the committed corpus (-set_cover_merge=1 CORPUS NEW: a
smallest set of inputs that reach new edges is copied in; the committed seeds stay), for a human to review and commit.
A committed corpus stays under ~200 files / 1 MiB (it replays as a ctest in every build).
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DICT_DIR = Path(__file__).resolve().parent / "dict"
REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|"
                    r"runtime error:|SUMMARY: \w+Sanitizer|==\d+== ERROR")


def targets(build: Path):
    listing = build / "fuzz" / "targets.txt"
    if not listing.is_file():
        sys.exit(f"run_all: {listing} not found: build with scripts/build.sh fuzz first")
    out = []
    for line in listing.read_text().splitlines():
        if line.strip():
            name, corpus = line.split("\t")
            out.append((name, Path(corpus)))
    if not out:
        sys.exit(f"run_all: {listing} lists no target")
    return out


def grow(binary: Path, corpus: Path, new: Path, args):
    """Copies into corpus a smallest set of inputs of new that reach the edges it does not
    (-set_cover_merge; edges only, -use_counters=0: hit-count buckets would keep thousands of
    near-duplicates)."""
    subprocess.run([str(binary), "-set_cover_merge=1", "-use_counters=0", "-use_value_profile=0",
                    f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_limit_mb}", str(corpus), str(new)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def run_one(name, corpus, args, build: Path):
    """Returns (ok, one-line summary, details for a failure)."""
    binary = build / "fuzz" / name
    if not binary.is_file():
        return False, f"{name}: registered but not built ({binary})", ""
    if not corpus.is_dir() or not any(corpus.iterdir()):
        return False, f"{name}: corpus {corpus} is missing or empty", ""
    artifacts = build / "fuzz-artifacts" / name
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    new = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    try:
        cmd = [str(binary), f"-max_total_time={args.time}", f"-timeout={args.timeout}",
               f"-rss_limit_mb={args.rss_limit_mb}", f"-artifact_prefix={artifacts}/",
               "-print_final_stats=1", "-detect_leaks=1"]
        if args.max_len:
            cmd.append(f"-max_len={args.max_len}")
        d = DICT_DIR / f"{name}.dict"
        if d.is_file():
            cmd.append(f"-dict={d}")
        cmd += [str(new), str(corpus)]
        log_path = artifacts / "log.txt"
        start = time.monotonic()
        with open(log_path, "wb") as log:
            try:
                rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=args.time + 120).returncode
            except subprocess.TimeoutExpired:
                rc = "hung (did not stop at -max_total_time)"
        took = time.monotonic() - start
        log_text = log_path.read_text(errors="replace")
        found = sorted(p for p in artifacts.iterdir()
                       if p.name.split("-")[0] in ("crash", "leak", "timeout", "oom", "slow"))
        execs = re.search(r"stat::number_of_executed_units: (\d+)", log_text)
        execs = int(execs.group(1)) if execs else 0
        cov = re.findall(r"cov: (\d+) ft: (\d+)", log_text)
        cov = f"cov {cov[-1][0]} ft {cov[-1][1]}" if cov else "cov ?"
        n_new = len(list(new.iterdir()))
        summary = f"{name}: {execs} execs in {took:.0f} s, {cov}, {n_new} new inputs"
        report = REPORT.search(log_text)
        bad_artifacts = [p for p in found if not p.name.startswith("slow")]
        if rc != 0 or bad_artifacts or report:
            what = f"exit {rc}" if rc != 0 else (report.group(0) if report else "artifact written")
            lines = [f"FAIL {name}: {what}"]
            for p in bad_artifacts:
                lines.append(f"  input: {p}")
                lines.append(f"  reproduce: {binary} {p}")
            if not bad_artifacts:
                lines.append("  (no input saved; see the log)")
            lines.append(f"  log: {log_path}")
            tail = log_text.splitlines()[-60:]
            details = "\n".join(lines + ["  | " + l for l in tail])
            return False, f"{name}: FAILED ({what})", details
        if execs == 0:
            return False, f"{name}: executed nothing", log_text[-3000:]
        if args.grow and n_new:
            before = len(list(corpus.iterdir()))
            grow(binary, corpus, new, args)
            files = list(corpus.iterdir())
            size = sum(p.stat().st_size for p in files)
            summary += f"; corpus {before} -> {len(files)} files, {size // 1024} KiB"
            if len(files) > 200 or size > 1 << 20:
                summary += " (over the 200 files / 1 MiB a committed corpus may hold: trim it)"
        return True, summary, ""
    finally:
        shutil.rmtree(new, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build-fuzz"), help="the fuzz build directory")
    ap.add_argument("--time", type=int, default=int(os.environ.get("JN_FUZZ_TIME", 20)),
                    help="seconds per target (-max_total_time; env JN_FUZZ_TIME)")
    ap.add_argument("--timeout", type=int, default=5, help="seconds per input (-timeout)")
    ap.add_argument("--rss-limit-mb", type=int, default=2048)
    ap.add_argument("--max-len", type=int, default=0, help="-max_len (0: libFuzzer's default)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="targets run at once")
    ap.add_argument("--only", default="", help="regex: run the targets whose name matches")
    ap.add_argument("--grow", action="store_true", help="merge new coverage into the committed corpora")
    args = ap.parse_args()
    build = Path(args.build).resolve()
    todo = [(n, c) for n, c in targets(build) if re.search(args.only, n)]
    if not todo:
        sys.exit(f"run_all: no target matches '{args.only}'")
    os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:detect_odr_violation=0")
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    print(f"fuzzing {len(todo)} targets, {args.time} s each, {args.jobs} at a time", flush=True)
    start = time.monotonic()
    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_one, n, c, args, build): n for n, c in todo}
        for f in concurrent.futures.as_completed(futures):
            ok, summary, details = f.result()
            print(("  ok   " if ok else "  FAIL ") + summary, flush=True)
            if not ok:
                failures.append(details or summary)
    print(f"fuzzing took {time.monotonic() - start:.0f} s", flush=True)
    for d in failures:
        print(d, file=sys.stderr)
    if failures:
        print(f"run_all: {len(failures)} of {len(todo)} fuzz targets failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
