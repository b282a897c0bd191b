"""A CLIP-format byte-level BPE vocabulary (49,408 entries) and merges list built offline and
deterministically, so a random-weight CLIP stand-in tokenises like the real one: same vocabulary
size and id layout, same special tokens, the same kind of work per word.

Layout as in OpenAI's CLIP tokenizer: the 256 byte symbols (GPT-2's byte-to-unicode map), the same
256 with the end-of-word mark ``</w>``, one entry per merge in merge order, then
``<|startoftext|>`` (49,406) and ``<|endoftext|>`` (49,407). The merges are first learned from the
stand-ins' word list (most frequent pair first, words weighted by their Zipf rank), so its words
become single tokens; then filler merges of letters extend every existing token by one letter
until there are 48,894 merges. Fillers are valid merges that rarely fire on the stand-in texts.
"""

from __future__ import annotations

from collections import Counter
from string import ascii_lowercase

from benchmarks.standins.texts import WORDS

VOCAB_SIZE = 49_408
SPECIALS = ("<|startoftext|>", "<|endoftext|>")
END = "</w>"
MERGES = VOCAB_SIZE - 2 * 256 - len(SPECIALS)  # 48,894


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters (CLIP uses the same)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes, extra = list(printable), 0
    order = list(printable)
    for b in range(256):
        if b not in printable:
            order.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(order, codes, strict=True)}


def _symbols(word: str, table: dict[int, str]) -> tuple[str, ...]:
    chars = [table[b] for b in word.encode("utf-8")]
    return (*chars[:-1], chars[-1] + END)


def _merge(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def learned_merges(words: list[str], limit: int) -> list[tuple[str, str]]:
    """Classic BPE on ``words`` (rank r weighted 10**6 // (r + 3)), at most ``limit`` merges."""
    table = bytes_to_unicode()
    corpus = Counter()
    for rank, word in enumerate(words):
        corpus[_symbols(word.lower(), table)] += 10**6 // (rank + 3)
    merges: list[tuple[str, str]] = []
    while len(merges) < limit:
        pairs: Counter = Counter()
        for symbols, count in corpus.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                pairs[pair] += count
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        corpus = Counter({_merge(s, best): c for s, c in corpus.items()})
    return merges


def clip_vocab_and_merges(words: list[str] | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab token -> id with exactly 49,408 entries, the merges in rank order: 48,894 unless two
    learned merges spell the same token, which then has one entry, as in OpenAI's vocab.json)."""
    base = list(bytes_to_unicode().values())
    tokens = base + [b + END for b in base]
    known = set(tokens)
    room = VOCAB_SIZE - len(SPECIALS)
    merges = []
    for a, b in learned_merges(words or WORDS, MERGES):
        merges.append((a, b))
        if a + b not in known:
            tokens.append(a + b)
            known.add(a + b)
    # fillers: every letters-only token of length 1, then 2, ..., extended by one letter and by one
    # word-final letter, until the vocabulary is full
    length = 1
    while len(tokens) < room:
        stems = sorted(t for t in known if len(t) == length and all(c in ascii_lowercase for c in t))
        for stem in stems:
            for tail in (x for letter in ascii_lowercase for x in (letter, letter + END)):
                if len(tokens) < room and stem + tail not in known:
                    merges.append((stem, tail))
                    tokens.append(stem + tail)
                    known.add(stem + tail)
        length += 1
    tokens += list(SPECIALS)
    return {t: i for i, t in enumerate(tokens)}, merges


def merges_text(merges: list[tuple[str, str]]) -> str:
    """merges.txt as OpenAI ships it: a version line, then one ``left right`` pair a line."""
    return "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
