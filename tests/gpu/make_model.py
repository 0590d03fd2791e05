#!/usr/bin/env python3
"""make_model.py — a random-weight llama GGUF sized for a throughput check.

Usage: make_model.py --src LLAMA_CPP_SOURCE --out PATH --size gpu|cpu

It is deploy/local/make_tiny_model.py (same tokenizer, same constant-residual
trick so every generation is text and runs to max_tokens) with the shape
changed: "gpu" is 2048 wide, 16 layers, FFN 5632, 16 heads, all matrices f16
(about 1.1 B parameters, 2.2 GB: a token costs what it costs on a real 1-3 B
model); "cpu" is 256 wide, 4 layers, for the rehearsal on a 2-core machine.
"""

import argparse
import sys
from pathlib import Path

SHAPES = {
    "gpu": {"N_EMBD": 2048, "N_LAYER": 16, "N_FF": 5632, "N_HEAD": 16, "N_HEAD_KV": 16},
    "cpu": {"N_EMBD": 256, "N_LAYER": 4, "N_FF": 688, "N_HEAD": 4, "N_HEAD_KV": 4},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--size", choices=sorted(SHAPES), required=True)
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy" / "local"))
    import make_tiny_model as tiny

    for name, value in SHAPES[args.size].items():
        setattr(tiny, name, value)
    plain_linear = tiny.linear
    # Layer matrices in f16 too (the generator keeps them f32 for its 64-wide model).
    tiny.linear = lambda rng, np, n_out, n_in: plain_linear(rng, np, n_out, n_in).astype(np.float16)
    sys.argv = [sys.argv[0], "--src", args.src, "--out", args.out]
    tiny.main()


if __name__ == "__main__":
    main()
