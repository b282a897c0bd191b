"""The batch contract: what every part of fedbench agrees a batch, a modality code and a test
condition are. It sits at the bottom of the import graph: data, backbones, methods, federation and
tracking import it; it imports nothing from fedbench.

A batch is a ``dict[str, Tensor]``. Every batch carries ``label`` and ``code``; the other keys
are the backbone's own featurised inputs (for the embedded backbone: ``text_ids``, ``text_keep``
and ``image``, a row of its image-token bank), gathered by the backbone's feature table.
"""

from __future__ import annotations

# ----- keys every batch carries --------------------------------------------------------------
LABEL = "label"  # [B] int64 class index (single-label) or [B, C] float 0/1 (multi-label)
CODE = "code"  # [B] int64 modality code, below

# ----- modality codes (MAP's missing table) --------------------------------------------------
COMPLETE = 0
TEXT_MISSING = 1
IMAGE_MISSING = 2
MODALITY_CODES = {COMPLETE: "complete", TEXT_MISSING: "text missing", IMAGE_MISSING: "image missing"}

# ----- training missing types ----------------------------------------------------------------
MISSING_TYPES = ("text", "image", "both")
MISSING_TYPE_HELP = {
    "text": "missing samples lack their text",
    "image": "missing samples lack their image",
    "both": "missing samples lack the text or the image (never both), split by missing.both_ratio",
}

# ----- evaluation conditions -----------------------------------------------------------------
BOTH_MIX_RATE = 0.7  # the "both_missing" condition: 35% text-missing, 35% image-missing
BOTH_MIX_RATIO = 0.5
CONDITION_HELP = {
    "as_train": "test samples miss modalities at the same rate and type as in training",
    "both_missing": "a 0.7 missing rate split between text-missing and image-missing samples",
    "complete": "every test sample has both image and text",
    "text_only": "every image is missing (text only)",
    "image_only": "every text is missing (image only)",
}
TEST_CONDITIONS = tuple(CONDITION_HELP)
