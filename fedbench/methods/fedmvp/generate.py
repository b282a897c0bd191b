"""The ``generate`` completer: the paper's completion, with generative models (GPU machines).

The official code fills a missing text with a generated caption and a missing image with a
DALLE2 image conditioned on the text. Generation works on raw inputs, so this completer returns
raw texts and images; the backbone then featurises them like any other sample and the
registration wraps the features in a :class:`~.completion.Completion`
(``filled`` from the codes, ``source`` -1).

- a *captioner* maps images to texts: :class:`HFCaptioner` runs any ``transformers`` model whose
  ``generate`` takes ``pixel_values`` (BLIP, a VisionEncoderDecoder such as ViT-GPT2). It calls
  ``generate`` directly: transformers 5 removed the ``image-to-text`` pipeline task.
- a *painter* maps texts to images: :class:`DiffusersPainter` wraps a ``diffusers`` text-to-image
  pipeline (transformers has none); it is imported only when used and untested here.

The painter's prompt can carry the sample's class name, as the paper's coarse-to-fine prompt
(supplementary Table 2 of arXiv 2406.11048v1: "A photo of {common yellowthroat}, a kind of {bird},
{original text}."): :data:`PAPER_PROMPT` with ``kind`` "bird" (CUB-200) or "flower" (Oxford-102).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from fedbench.batch import COMPLETE, IMAGE_MISSING, TEXT_MISSING

__all__ = ["PAPER_PROMPT", "DiffusersPainter", "GenerateCompleter", "HFCaptioner", "painter_prompt"]

PAPER_PROMPT = "A photo of {label}, a kind of {kind}, {text}."


def painter_prompt(template: str | None, text: str, label: str | None = None, kind: str = "") -> str:
    """The text a painter draws from: the caption itself (no template), or the template filled
    with the class name ``label``, the ``kind`` of object and the caption."""
    if template is None:
        return text
    if label is None and "{label}" in template:
        raise ValueError("GenerateCompleter: the prompt template names the class ({label}); pass class_names")
    return template.format(label=label, kind=kind, text=text)


Captioner = Callable[[Sequence[Any]], list[str]]  # PIL images -> captions
Painter = Callable[[Sequence[str]], list[Any]]  # texts -> PIL images


class GenerateCompleter:
    """Fills raw missing inputs: captions for missing texts, paintings for missing images."""

    name = "generate"

    def __init__(self, captioner: Captioner, painter: Painter, prompt: str | None = None, kind: str = ""):
        """``prompt``: a template for the painter (None: the caption alone; :data:`PAPER_PROMPT`:
        the paper's, with the class name and ``kind``)."""
        self.captioner, self.painter, self.prompt, self.kind = captioner, painter, prompt, kind

    def complete_raw(
        self,
        texts: Sequence[str | None],
        images: Sequence[Any],
        codes: Sequence[int] | torch.Tensor,
        class_names: Sequence[str] | None = None,
    ) -> tuple[list[str], list[Any]]:
        """Texts and images of N samples with every missing entry generated from the other one
        (``class_names``: each sample's class, for a prompt template that names it)."""
        codes = [int(c) for c in codes]
        if not len(texts) == len(images) == len(codes) or (
            class_names is not None and len(class_names) != len(codes)
        ):
            raise ValueError(
                "GenerateCompleter: texts, images, codes (and class_names) must have the same length"
            )
        if any(c not in (COMPLETE, TEXT_MISSING, IMAGE_MISSING) for c in codes):
            raise ValueError("GenerateCompleter: unknown modality code")
        texts, images = list(texts), list(images)
        need_text = [k for k, c in enumerate(codes) if c == TEXT_MISSING]
        need_image = [k for k, c in enumerate(codes) if c == IMAGE_MISSING]
        if need_text:
            for k, caption in zip(need_text, self.captioner([images[k] for k in need_text]), strict=True):
                texts[k] = caption
        if need_image:
            prompts = [
                painter_prompt(
                    self.prompt, texts[k], None if class_names is None else class_names[k], self.kind
                )
                for k in need_image
            ]
            for k, picture in zip(need_image, self.painter(prompts), strict=True):
                images[k] = picture
        return texts, images


class HFCaptioner:
    """Captions images with a transformers image-conditioned generator, in batches, greedily."""

    def __init__(self, model, image_processor, tokenizer, max_new_tokens: int = 30, batch_size: int = 16):
        self.model, self.image_processor, self.tokenizer = model.eval(), image_processor, tokenizer
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu", **kwargs) -> HFCaptioner:
        """Load model, image processor and tokenizer saved together under ``path`` (offline)."""
        from transformers import (
            AutoImageProcessor,
            AutoModelForImageTextToText,
            AutoTokenizer,
            VisionEncoderDecoderModel,
        )

        path = str(path)
        try:
            model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
        except ValueError:  # VisionEncoderDecoder checkpoints are not in that auto class
            model = VisionEncoderDecoderModel.from_pretrained(path, local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return cls(model.to(device), processor, tokenizer, **kwargs)

    @torch.no_grad()
    def __call__(self, images: Sequence[Any]) -> list[str]:
        captions: list[str] = []
        device = next(self.model.parameters()).device
        for start in range(0, len(images), self.batch_size):
            chunk = list(images[start : start + self.batch_size])
            pixels = self.image_processor(images=chunk, return_tensors="pt")["pixel_values"].to(device)
            ids = self.model.generate(
                pixel_values=pixels, max_new_tokens=self.max_new_tokens, do_sample=False
            )
            captions += [c.strip() for c in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return captions


class DiffusersPainter:
    """Draws images for texts with a diffusers text-to-image pipeline (e.g. Stable Diffusion)."""

    def __init__(self, pipeline, num_inference_steps: int = 25, batch_size: int = 4, seed: int = 0):
        self.pipeline, self.steps, self.batch_size, self.seed = (
            pipeline,
            num_inference_steps,
            batch_size,
            seed,
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cuda", **kwargs) -> DiffusersPainter:
        from diffusers import AutoPipelineForText2Image  # optional dependency, GPU machines

        pipe = AutoPipelineForText2Image.from_pretrained(str(path), local_files_only=True)
        return cls(pipe.to(device), **kwargs)

    def __call__(self, texts: Sequence[str]) -> list[Any]:
        images: list[Any] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            generator = torch.Generator().manual_seed(self.seed + start)  # reproducible per position
            images += self.pipeline(prompt=chunk, num_inference_steps=self.steps, generator=generator).images
        return images
