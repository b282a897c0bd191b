"""Throughput of the transformers backbones (ViLT, CLIP, ViT) under MAP-style prompts: training
(forward + backward + AdamW step on prompts and a head) and evaluation samples per second, per
precision, through the backbones' own embed / run_layers / readout. Random inputs, so no dataset
is needed; weights from a local folder or the HF cache. Not part of `make test`.

    # GPU machine, real weights (downloaded beforehand with `hf download dandelin/vilt-b32-mlm`):
    .venv/bin/python benchmarks/hf_backbones.py --backbone vilt --model dandelin/vilt-b32-mlm \
        --precision 32-true bf16-mixed 16-mixed --batch 64
    # anywhere, on the tiny random models of the tests (checks the code path, not the speed):
    .venv/bin/python benchmarks/hf_backbones.py --backbone all --tiny
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from fedbench.backbones.registry import BACKBONES


def build(name: str, model: str | None, tiny: bool, max_text_tokens: int | None):
    spec = BACKBONES.get(name)
    options = spec.options()
    if tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        import hf_fixtures

        model = str(
            {
                "vilt": hf_fixtures.tiny_vilt_dir,
                "clip": hf_fixtures.tiny_clip_dir,
                "vit": hf_fixtures.tiny_vit_dir,
            }[name]()
        )
        max_text_tokens = min(max_text_tokens or 16, 16) if name == "clip" else max_text_tokens
    if model:
        options = replace(options, model=model)
    if max_text_tokens and hasattr(options, "max_text_tokens"):
        options = replace(options, max_text_tokens=max_text_tokens)
    options.validate()
    return spec.build(options)


def random_batch(bb, batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A batch of the backbone's columns: random pixels and word pieces, a third of each missing code."""
    s = bb.image_size
    out = {
        "pixels": torch.randint(0, 256, (batch, 3, s, s), dtype=torch.uint8, generator=gen),
        "code": torch.arange(batch) % 3,
        "label": torch.randint(0, 10, (batch,), generator=gen),
    }
    if hasattr(bb, "vilt"):
        n = bb.options.max_text_tokens
        out["text_ids"] = torch.randint(5, bb.vilt.config.vocab_size, (batch, n), generator=gen)
        out["text_keep"] = torch.ones(batch, n, dtype=torch.bool)
    if getattr(bb, "n_text", 0):
        bb._texts = [f"a photo of thing {i}" for i in range(batch)] + [""]  # stands in for featurize's texts
        out["row"] = torch.arange(batch)
    return out


class PromptedHead(torch.nn.Module):
    """MAP's input-level prompts (``length`` tokens before each of ``layers`` layers) + a head."""

    def __init__(self, bb, layers: int, length: int):
        super().__init__()
        object.__setattr__(self, "bb", bb)
        self.layers, self.length = min(layers, bb.num_layers), length
        self.prompts = torch.nn.Parameter(torch.randn(self.layers, length, bb.hidden_size) * 0.02)
        self.head = torch.nn.Linear(bb.hidden_size, 10)

    def forward(self, batch):
        tokens, keep = self.bb.embed(batch)

        def prompter(i, x, k):
            if i >= self.layers:
                return x, k
            p = self.prompts[i].expand(x.shape[0], -1, -1).to(x.dtype)
            return torch.cat([p, x], 1), torch.cat(
                [torch.ones(p.shape[:2], dtype=torch.bool, device=k.device), k], 1
            )

        hidden = self.bb.run_layers(tokens, keep, prompter)
        return self.head(self.bb.readout(hidden, self.layers * self.length))


def autocast(precision: str, device: torch.device):
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "16-mixed":
        if device.type != "cuda":
            raise SystemExit("16-mixed needs a GPU")
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def measure(model, batches, precision: str, device: torch.device, train: bool) -> float:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "16-mixed")
    n, t0 = 0, 0.0
    for i, batch in enumerate(batches):
        if i == 2:  # two warm-up steps (kernels, allocator)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, n = time.perf_counter(), 0
        with autocast(precision, device), torch.set_grad_enabled(train):
            logits = model(batch)
            loss = torch.nn.functional.cross_entropy(logits.float(), batch["label"])
        if train:
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        n += len(batch["label"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="all", choices=["all", "vilt", "clip", "vit"])
    ap.add_argument(
        "--model", help="an HF id (from the HF cache) or a folder; default: the backbone's default id"
    )
    ap.add_argument("--tiny", action="store_true", help="the tests' tiny random models (CPU smoke run)")
    ap.add_argument("--precision", nargs="+", default=["32-true", "bf16-mixed"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--prompt-layers", type=int, default=6)
    ap.add_argument("--prompt-length", type=int, default=16)
    ap.add_argument("--max-text-tokens", type=int)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    names = ["vilt", "clip", "vit"] if args.backbone == "all" else [args.backbone]
    print(
        f"torch {torch.__version__}, device "
        f"{torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, threads "
        f"{torch.get_num_threads()}, batch {args.batch}, prompts {args.prompt_layers}x{args.prompt_length}"
    )
    for name in names:
        bb = build(name, args.model, args.tiny, args.max_text_tokens)
        gen = torch.Generator().manual_seed(0)
        batches = [random_batch(bb, args.batch, gen) for _ in range(args.steps + 2)]
        bb.to(device)
        batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
        model = PromptedHead(bb, args.prompt_layers, args.prompt_length).to(device)
        seq = bb.embed(batches[0])[0].shape[1] + model.layers * model.length
        params = sum(p.numel() for p in bb.parameters()) / 1e6
        print(
            f"{name}: {bb.options.model}  {params:.1f}M frozen params, {bb.num_layers} layers, hidden "
            f"{bb.hidden_size}, image {bb.image_size}px, final sequence {seq} tokens"
        )
        for precision in args.precision:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            train = measure(model, batches, precision, device, train=True)
            evals = measure(model, batches, precision, device, train=False)
            mem = (
                f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device.type == "cuda" else ""
            )
            print(f"  {precision:10s} train {train:8.1f} samples/s   eval {evals:8.1f} samples/s{mem}")


if __name__ == "__main__":
    main()
