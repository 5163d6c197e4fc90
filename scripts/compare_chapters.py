"""Check that two executed copies of the book's chapters print the same numbers (after a refactor).

    python scripts/compare_chapters.py BEFORE_DIR AFTER_DIR [--chapters 01,04] [-v]

For every chapter in BEFORE_DIR (executed notebooks, e.g. ``book/chapters/emodb`` saved before a change)
and its namesake in AFTER_DIR, every number BEFORE printed must be printed by AFTER (as a multiset: a
table may gain columns, e.g. intervals, but no number may change or vanish). Text/markdown, HTML (tags
stripped) and plain-text outputs count, and stream output (prints) for its numbers; images, pandas
Styler ids and widget ids are ignored. ``-v`` lists the outputs that are not identical. Exit status 1
if a number is missing. Wall-clock timings (chapter 3's demo run) differ between any two runs.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections import Counter
from pathlib import Path

NUMBER = re.compile(r"(?<![\w.])[-+−]?\d+(?:\.\d+)?")


def outputs(path: Path) -> list[tuple[str, str]]:
    """(kind, normalized text) of every output of a notebook's code cells, images left out."""
    out = []
    for cell in json.loads(path.read_text())["cells"]:
        for o in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if o["output_type"] == "stream":
                out.append(("stream", "".join(o["text"])))
                continue
            data = o.get("data", {})
            mime = next((m for m in ("text/markdown", "text/html", "text/plain") if m in data), None)
            if mime is None or (mime == "text/plain" and "".join(data[mime]).startswith("<Figure")):
                continue
            text = "".join(data[mime])
            if mime == "text/html":
                text = re.sub(r"<style.*?</style>", " ", text, flags=re.S)
                text = html.unescape(re.sub(r"<[^>]+>", " ", text))
            out.append((mime, re.sub(r"\s+", " ", re.sub(r"T_[0-9a-f_]+", "T_", text)).strip()))
    return out


def numbers(outs: list[tuple[str, str]]) -> Counter:
    """Every number printed, by value ("40.0" and "40" are one number)."""
    return Counter(repr(float(n.replace("−", "-"))) for _, text in outs for n in NUMBER.findall(text))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--chapters", default=None, help="comma-separated chapter numbers (default: all)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    wanted = args.chapters.split(",") if args.chapters else None
    failed = False
    for before in sorted(args.before.glob("*.ipynb")):
        if wanted and before.stem[:2] not in wanted:
            continue
        after = args.after / before.name
        if not after.exists():
            print(f"{before.stem}: no counterpart in {args.after}")
            failed = True
            continue
        b, a = outputs(before), outputs(after)
        missing = numbers(b) - numbers(a)
        same = sum(x in a for x in b)
        print(
            f"{before.stem}: {same}/{len(b)} outputs identical; {sum(numbers(b).values())} numbers before, "
            f"{sum(missing.values())} missing after" + (f": {dict(missing)}" if missing else "")
        )
        failed |= bool(missing)
        if args.verbose:
            for x in b:
                if x not in a:
                    print(f"    changed {x[0]}: {x[1][:300]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
