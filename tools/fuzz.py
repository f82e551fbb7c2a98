"""Long fuzzing run: every reader protocol decoder and the wire batch decoder, coverage-guided.

    .venv/bin/pip install atheris            # not a project dependency
    .venv/bin/python tools/fuzz.py                       # 1,000,000 inputs per target
    .venv/bin/python tools/fuzz.py --runs 20000 --json   # a quick look

Each target runs in a process of its own under atheris (libFuzzer), seeded with the byte
fixtures in tests/protocols/fixtures, and checks the decoders' contract on every input:

- a protocol decoder never raises; bad bytes come back as ``Reject`` values with a typed
  ``ProtocolError``; every read it returns is sane (canonical hex tag id, antenna >= 1,
  aware UTC time, finite RSSI); the input is fed in two chunks split where the fuzzer says,
  then flushed, as a serial port or TCP stream would hand it over;
- the wire decoder either returns a batch that passes ``validate()`` and survives an
  encode/decode round trip, or raises ``WireError`` — nothing else.

A contract violation is a crash: libFuzzer stops, writes the input to ``crash-*`` in the
work directory and this script exits 1. The figures go to docs/reliability.md.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "protocols" / "fixtures"
TARGETS = (
    "r2000",
    "tagtrail-active",
    "impinj-iot",
    "impinj-iot-stream",
    "zebra-iotc",
    "llrp",
    "wire",
)
_FIXTURE_DIR = {"impinj-iot-stream": "impinj-iot"}


def _child(target: str, argv: list[str]) -> None:
    """Run libFuzzer on one target (this process; atheris exits it when done)."""
    from datetime import UTC, datetime

    import atheris

    with atheris.instrument_imports():
        from reader_gateway import wire
        from reader_gateway.protocols import make_decoder
        from reader_gateway.protocols.base import DecodeResult, ProtocolError

    at = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    hex_digits = set("0123456789ABCDEF")

    def check(result: DecodeResult) -> None:
        for read in result.reads:
            assert read.tag_id, read
            assert set(read.tag_id) <= hex_digits, read
            assert read.antenna >= 1, read
            assert read.read_at.tzinfo is not None, read
            assert math.isfinite(read.rssi_dbm), read
        for reject in result.rejects:
            assert isinstance(reject.error, ProtocolError), reject

    def decoder_input(data: bytes) -> None:
        split = data[0] if data else 0
        body = data[1:]
        cut = split % (len(body) + 1)
        decoder = make_decoder(target)
        check(decoder.decode(body[:cut], at))
        check(decoder.decode(body[cut:], at))
        check(decoder.flush(at))

    def wire_input(data: bytes) -> None:
        try:
            batch = wire.decode_batch(data)
        except wire.WireError:
            return
        batch.validate()
        again = wire.decode_batch(wire.encode_batch(batch))
        assert again.tag.tolist() == batch.tag.tolist()
        assert again.read_at_us.tolist() == batch.read_at_us.tolist()

    atheris.Setup(argv, wire_input if target == "wire" else decoder_input)
    atheris.Fuzz()


def _seed_corpus(target: str, corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    if target == "wire":
        sample = (
            b'{"v":1,"gateway_id":"gw-1","batch_seq":17,"sent_at_us":1764400000000000,'
            b'"readers":["R0001","R0002"],"reader":[0,0,1],"antenna":[1,2,1],'
            b'"tag":["E2801160600002","AB","CD"],"rssi_dbm":[-61.5,-58.0,-70.25],'
            b'"read_at_us":[1764400000123456,1764400000123457,1764400000123458],'
            b'"seq":[1001,1002,77]}'
        )
        (corpus / "batch.json").write_bytes(sample)
        return
    for path in sorted((FIXTURES / _FIXTURE_DIR.get(target, target)).iterdir()):
        # First byte: where the input is split into two chunks.
        (corpus / path.name).write_bytes(b"\x40" + path.read_bytes())


def _run(target: str, runs: int, workdir: Path) -> dict[str, object]:
    corpus = workdir / f"corpus-{target}"
    _seed_corpus(target, corpus)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", target, f"-runs={runs}", "-max_len=4096",
         "-rss_limit_mb=1024", f"-artifact_prefix={workdir}/{target}-", str(corpus)],
        capture_output=True, text=True, cwd=workdir, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    done = re.search(r"Done (\d+) runs in (\d+) second", proc.stderr)
    cov = re.findall(r"cov: (\d+) ft: (\d+)", proc.stderr)
    crashes = sorted(str(p) for p in workdir.glob(f"{target}-crash-*"))
    return {
        "target": target,
        "runs": int(done.group(1)) if done else None,
        "seconds": round(seconds, 1),
        "inputs_per_s": round(int(done.group(1)) / seconds) if done else None,
        "coverage_edges": int(cov[-1][0]) if cov else None,
        "features": int(cov[-1][1]) if cov else None,
        "corpus_files": len(list(corpus.iterdir())),
        "ok": proc.returncode == 0 and not crashes,
        "crashes": crashes,
        "tail": "" if proc.returncode == 0 else proc.stderr[-2000:],
    }


def main() -> int:
    """Fuzz every target (or those named) and print a table or one JSON document."""
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        target = sys.argv[2]
        _child(target, [sys.argv[0], *sys.argv[3:]])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--workdir", type=Path, help="keep corpora and crashes here")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tagtrail-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for target in args.targets.split(","):
        result = _run(target, args.runs, workdir)
        results.append(result)
        if not args.json:
            print(
                f"{target:18} {result['runs'] or 0:>9} inputs {result['seconds']:>7} s "
                f"{result['inputs_per_s'] or 0:>7}/s  edges {result['coverage_edges']}  "
                f"{'ok' if result['ok'] else 'FAILED ' + str(result['crashes'])}",
                flush=True,
            )
            if not result["ok"]:
                print(result["tail"], file=sys.stderr)
    if args.json:
        import json

        print(json.dumps({"benchmark": "fuzz", "cpu_count": os.cpu_count(), "results": results}))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
