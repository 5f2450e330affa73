"""Benchmark: parse a generated 15,000-person SEN2 XML return into canonical events.

Target (issue 4): the whole import, publishing included, under 30 s for a county the size of
Hertfordshire (about 15,000 active plans); parsing should take a few seconds. Run from the
repository root:

    .venv/bin/python bench/bench_sen2_parse.py [--persons 15000] [--csv]

It prints the file size, the seconds and persons per second to parse (and to serialise every
event to JSON, as publishing would), and the peak memory of the parse. The whole import through
Kafka and PostgreSQL is timed by bench/bench_intake.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from services.intake.domain.sen2 import iter_sen2_csv, iter_sen2_xml
from services.intake.domain.sen2_synthetic import write_sen2_csv, write_sen2_xml

KEY = b"benchmark-case-id-key-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=15_000)
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--csv", action="store_true", help="also time the COLLECT CSV export")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sen2.xml"
        started = time.perf_counter()
        generated = write_sen2_xml(path, args.persons, args.year, seed=2025)
        print(f"generated {generated.persons:,} persons, {generated.requests:,} requests, "
              f"{path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.2f} s")

        started = time.perf_counter()
        imported = iter_sen2_xml(path, case_id_key=KEY)
        items = sum(1 for _ in imported)
        parse_seconds = time.perf_counter() - started
        print(f"parse XML:            {parse_seconds:6.2f} s  {args.persons / parse_seconds:9,.0f} persons/s  "
              f"({items:,} items, {imported.counts.rejections} rejections)")

        started = time.perf_counter()
        size = sum(len(item.to_json()) for item in iter_sen2_xml(path, case_id_key=KEY) if hasattr(item, "to_json"))
        total = time.perf_counter() - started
        print(f"parse XML + to_json:  {total:6.2f} s  {args.persons / total:9,.0f} persons/s  "
              f"({size / 1e6:.1f} MB JSON)")

        tracemalloc.start()
        for _ in iter_sen2_xml(path, case_id_key=KEY):
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"peak memory of the parse (tracemalloc): {peak / 1e6:.1f} MB")

        if args.csv:
            export = Path(folder) / "export"
            write_sen2_csv(export, args.persons, args.year, seed=2025)
            started = time.perf_counter()
            count = sum(1 for _ in iter_sen2_csv(export, case_id_key=KEY))
            seconds = time.perf_counter() - started
            print(f"parse CSV export:     {seconds:6.2f} s  {args.persons / seconds:9,.0f} persons/s  "
                  f"({count:,} items)")


if __name__ == "__main__":
    main()
