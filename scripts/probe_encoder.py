"""Linear probes on the untrained encoder (see eesr_lib/probes.py for why).

    python scripts/probe_encoder.py [--dataset emodb] [--results results]

Writes ``results/<dataset>/probes/encoder_at_init.json`` (rows, seed, provenance, wall time);
book chapter 7 plots it. A minute or two on 2 CPU cores for EMODB.
"""

from __future__ import annotations

import argparse
import time

from eesr_lib.corpora import load_corpus
from eesr_lib.features import corpus_features
from eesr_lib.probes import encoder_probe
from eesr_lib.provenance import provenance
from eesr_lib.results import RESULTS_DIR, probe_file, write_json_atomic


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="emodb")
    p.add_argument("--data-root", default=None)
    p.add_argument("--results", default=str(RESULTS_DIR))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t0 = time.time()
    corpus = load_corpus(args.dataset, args.data_root)
    specs, _ = corpus_features(corpus)
    rows = encoder_probe(specs, corpus.y, args.seed)
    out = probe_file(args.results, corpus.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "rows": rows,
        "seed": args.seed,
        "n_utterances": len(specs),
        "labels": list(corpus.labels),
        "provenance": {**provenance("cpu"), "wall_time_s": round(time.time() - t0, 2)},
    }
    write_json_atomic(record, out)
    for r in rows:
        print(f"{r['features']:40s} norm={r['norm'] or '-':9s} probe UA {r['ua']:5.1f} ± {r['ua_std']:.1f}")


if __name__ == "__main__":
    main()
