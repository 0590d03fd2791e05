#!/usr/bin/env python3
"""make_tiny_model.py — write a tiny random-weight llama GGUF for fast, deterministic tests.

Usage: make_tiny_model.py --src LLAMA_CPP_SOURCE --out PATH [--lora-out PATH] [--seed N]

The model is 2 layers, 64 wide, with the llama-spm vocabulary (tokenizer metadata copied
from <src>/models/ggml-vocab-llama-spm.gguf) and weights drawn from a fixed seed, so the
same script writes the same bytes. Its text is noise, but llama-server loads and runs it
like any llama model.

A random model would sometimes sample byte-fallback or control tokens, which this
llama-server turns into HTTP 500 ("does not match the expected Content-only format").
So residual dimension 0 is held at 1: every token embedding has column 0 = 1 and no
layer writes to it (row 0 of every attn_output and ffn_down is 0). In output.weight every
token that is not NORMAL (control, byte, unknown, unused, user-defined; BOS and EOS
included) has a large negative weight on that dimension: it is never sampled, and every
generation runs to max_tokens (tests use `stop` for early stops).

--lora-out also writes a LoRA adapter for that model, the GGUF llama.cpp's
src/llama-adapter.cpp loads (`--lora`): general.type "adapter", adapter.type "lora",
adapter.lora.alpha, and a pair W.lora_a / W.lora_b for W = output.weight and, in every
layer, blk.N.{attn_q,attn_v,attn_output,ffn_up,ffn_down}.weight. In numpy layout lora_a
is (rank, n_in) and lora_b is (n_out, rank), so B @ A has the base weight's shape;
llama.cpp adds scale * alpha / rank * B @ A. The weights are random (seed + 1; the
model's bytes do not change) and about as large as the base weights, so with the
adapter the same prompt, seed and temperature 0 give other text (adapting only the
layers' inputs was not enough: the text stayed the same at scale 1). Residual
dimension 0 stays constant and the banned tokens banned (see lora_targets).
"""

import argparse
import os
import sys
from pathlib import Path

N_LAYER = 2
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 128
N_CTX_TRAIN = 4096
RMS_EPS = 1e-5
ROPE_FREQ_BASE = 10000.0
DEFAULT_SEED = 1234
# Weight of the non-normal tokens on the constant dimension: after the final RMS norm
# that dimension is about 0.3..1, so their logits sit thousands below the normal ones.
BANNED_WEIGHT = -1.0e4
# Scale of the output rows of normal tokens: logits with a standard deviation of about
# 3 give varied, seed-dependent text.
OUTPUT_SCALE = 0.4
# The adapter: rank, alpha (= rank, so a job's scale is the factor on B @ A), and the
# size of B @ A (about that many times a base weight of the same shape).
LORA_RANK = 8
LORA_ALPHA = float(LORA_RANK)
LORA_GAIN = 2.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", required=True, help="llama.cpp source tree (holds gguf-py and models/)")
    p.add_argument("--out", required=True, help="GGUF file to write")
    p.add_argument("--lora-out", help="also write a LoRA adapter GGUF for the model here")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    return p.parse_args()


def copy_tokenizer(gguf, reader, writer) -> list:
    """Copy every tokenizer.* key from the vocab file; return the token types."""
    token_types = None
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        main_type = field.types[0]
        if main_type == gguf.GGUFValueType.ARRAY:
            values = field.contents()
            writer.add_key_value(name, values, main_type, sub_type=field.types[-1])
            if name == gguf.Keys.Tokenizer.TOKEN_TYPE:
                token_types = values
        else:
            writer.add_key_value(name, field.contents(), main_type)
    if token_types is None:
        sys.exit("vocab file has no tokenizer.ggml.token_type")
    return token_types


def linear(rng, np, n_out: int, n_in: int):
    """A weight in GGUF/numpy layout (rows = outputs), scaled to keep activations near 1."""
    return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)


def temp_path(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return out.with_name(out.name + f".tmp{os.getpid()}")


def finish(writer, tmp: Path, out: Path) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)


def lora_targets(n_vocab: int) -> dict:
    """Adapted weight -> (n_out, n_in, writes_residual): a weight that writes into the
    residual stream gets B row 0 = 0; output.weight reads it, so it gets A column 0 = 0."""
    head_dim = N_EMBD // N_HEAD
    targets = {"output.weight": (n_vocab, N_EMBD, False)}
    for i in range(N_LAYER):
        targets[f"blk.{i}.attn_q.weight"] = (N_HEAD * head_dim, N_EMBD, False)
        targets[f"blk.{i}.attn_v.weight"] = (N_HEAD_KV * head_dim, N_EMBD, False)
        targets[f"blk.{i}.attn_output.weight"] = (N_EMBD, N_HEAD * head_dim, True)
        targets[f"blk.{i}.ffn_up.weight"] = (N_FF, N_EMBD, False)
        targets[f"blk.{i}.ffn_down.weight"] = (N_EMBD, N_FF, True)
    return targets


def write_lora(gguf, np, out: Path, n_vocab: int, seed: int) -> None:
    """The LoRA adapter for the tiny model (see the module doc)."""
    tmp = temp_path(out)
    writer = gguf.GGUFWriter(tmp, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_name("llmq-tiny-llama-lora")
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, LORA_ALPHA)
    rng = np.random.default_rng(seed + 1)
    targets = lora_targets(n_vocab)
    for name, (n_out, n_in, writes_residual) in targets.items():
        # A (rank, n_in) and B (n_out, rank): B @ A is about LORA_GAIN / sqrt(n_in).
        a = linear(rng, np, LORA_RANK, n_in)
        b = linear(rng, np, n_out, LORA_RANK) * np.float32(LORA_GAIN)
        if writes_residual:
            b[0, :] = 0.0
        if name == "output.weight":
            a[:, 0] = 0.0
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b)
    finish(writer, tmp, out)
    print(f"wrote {out}: LoRA rank {LORA_RANK} on {len(targets)} weights, seed {seed + 1}",
          file=sys.stderr)


def main() -> None:
    args = parse_args()
    src = Path(args.src)
    sys.path.insert(0, str(src / "gguf-py"))
    import numpy as np
    import gguf

    vocab_path = src / "models" / "ggml-vocab-llama-spm.gguf"
    reader = gguf.GGUFReader(vocab_path)
    out = Path(args.out)
    tmp = temp_path(out)

    writer = gguf.GGUFWriter(tmp, "llama")
    writer.add_name("llmq-tiny-llama")
    writer.add_context_length(N_CTX_TRAIN)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_rope_freq_base(ROPE_FREQ_BASE)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    token_types = np.asarray(copy_tokenizer(gguf, reader, writer), dtype=np.int32)
    n_vocab = len(token_types)
    writer.add_vocab_size(n_vocab)
    banned = token_types != int(gguf.TokenType.NORMAL)

    rng = np.random.default_rng(args.seed)
    head_dim = N_EMBD // N_HEAD

    token_embd = rng.standard_normal((n_vocab, N_EMBD)).astype(np.float32)
    token_embd[:, 0] = 1.0
    output = (rng.standard_normal((n_vocab, N_EMBD)) * OUTPUT_SCALE).astype(np.float32)
    output[:, 0] = np.where(banned, BANNED_WEIGHT, 0.0)

    # The two vocab-sized matrices are F16 (halves the file); norms and layers stay F32.
    writer.add_tensor("token_embd.weight", token_embd.astype(np.float16))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", output.astype(np.float16))
    for i in range(N_LAYER):
        attn_output = linear(rng, np, N_EMBD, N_HEAD * head_dim)
        attn_output[0, :] = 0.0
        ffn_down = linear(rng, np, N_EMBD, N_FF)
        ffn_down[0, :] = 0.0
        layer = {
            "attn_norm": np.ones(N_EMBD, dtype=np.float32),
            "attn_q": linear(rng, np, N_HEAD * head_dim, N_EMBD),
            "attn_k": linear(rng, np, N_HEAD_KV * head_dim, N_EMBD),
            "attn_v": linear(rng, np, N_HEAD_KV * head_dim, N_EMBD),
            "attn_output": attn_output,
            "ffn_norm": np.ones(N_EMBD, dtype=np.float32),
            "ffn_gate": linear(rng, np, N_FF, N_EMBD),
            "ffn_up": linear(rng, np, N_FF, N_EMBD),
            "ffn_down": ffn_down,
        }
        for name, tensor in layer.items():
            writer.add_tensor(f"blk.{i}.{name}.weight", tensor)

    finish(writer, tmp, out)
    print(f"wrote {out}: {N_LAYER} layers, {N_EMBD} wide, {n_vocab} tokens "
          f"({int(banned.sum())} never sampled), seed {args.seed}", file=sys.stderr)
    if args.lora_out:
        write_lora(gguf, np, Path(args.lora_out), n_vocab, args.seed)


if __name__ == "__main__":
    main()
