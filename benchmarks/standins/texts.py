"""Seeded English-looking text for the stand-ins: words drawn from one fixed list with a Zipf-like
frequency (rank r drawn in proportion to 1 / (r + 3)), so token counts, text lengths and the
tokenizer's work look like real titles, plots and captions, and the same seed gives the same text
on every machine (nothing here depends on installed packages or locale).
"""

from __future__ import annotations

import numpy as np

# Roughly in order of frequency: function words first, then common nouns, verbs and adjectives, then
# the domains of the datasets (food, film, birds, flowers, memes).
WORDS = """
the of and to a in is that for it with as was on be by he at from his an are this or had not but which
one they have you were all she her their there been has when who will more no if out so said what up its
about into than them can only other new some could time these two may then do first any my now such like
our over man me even most made after also did many before must through back years where much your way
well down should because each just those people how too little state good very make world still own see
men work long get here between both life being under never day same another know while last might us
great old year off come since against go came right used take three small house large water food dark
light family city night story young world home place head hand part school eyes face girl boy woman
war love friend father mother son daughter brother sister wife husband death murder police town
country road river sea island mountain forest garden village street car train ship plane money job
find found tells meets becomes tries decides learns discovers returns leaves falls takes gives goes
lives dies kills saves loses wins begins ends helps loves wants needs keeps turns shows brings runs
secret strange dangerous beautiful famous rich poor lonely brave young small big old new last first
together alone against behind during after before while where when whose every each nothing something
soon later again never always often away around toward across along inside outside above below
recipe cook cooking baked fried grilled roasted homemade easy quick best classic simple healthy fresh
sweet spicy crispy creamy cheesy chocolate butter sugar flour egg eggs milk cream cheese salt pepper
garlic onion tomato lemon rice noodles pasta bread cake pie soup salad sauce chicken beef pork fish
shrimp crab salmon tuna bacon potato potatoes beans corn apple strawberry vanilla honey dinner lunch
breakfast dessert kitchen dish dishes restaurant menu plate bowl serving minutes oven pan style
film movie director actor actress hero villain detective agent soldier doctor teacher student king
queen prince princess captain officer killer thief gang crime mystery adventure journey mission
escape battle fight race game team town stranger past future truth lies revenge dream fear hope
bird wings wing beak bill belly breast crown head tail feathers throat nape eyebrow rump back
flower petals petal stamen stamens pistil center leaves stem pollen bloom bud sepals
red blue green yellow white black brown gray grey orange purple pink dark light bright pale deep
long short large small thin thick pointed rounded curved straight striped spotted speckled smooth
has have having are with that this these its very and some many several multiple bunch layer
meme when your face look says said guys everyone nobody somebody literally basically actually
people person kids women men white black muslim christian jewish country government president
""".split()
WORDS = list(dict.fromkeys(WORDS))  # each word once, at its first (most frequent) rank


class Texts:
    """Words, sentences and paragraphs drawn from :data:`WORDS` by one seeded generator.

    Indices are drawn in blocks of many thousands (one numpy call) and consumed in slices, because
    generating millions of words one call at a time would dominate the stand-ins' write time."""

    BLOCK = 1 << 18

    def __init__(self, rng: np.random.Generator, words: list[str] | None = None):
        self.rng = rng
        self.words = list(words or WORDS)
        weights = 1.0 / (np.arange(len(self.words)) + 3.0)
        self.cdf = np.cumsum(weights / weights.sum())
        self.buffer = np.empty(0, dtype=np.int64)
        self.pos = 0

    def _indices(self, n: int) -> list[int]:
        if self.pos + n > len(self.buffer):
            fresh = np.searchsorted(self.cdf, self.rng.random(max(self.BLOCK, n)), side="right")
            self.buffer = np.concatenate([self.buffer[self.pos :], np.minimum(fresh, len(self.words) - 1)])
            self.pos = 0
        out = self.buffer[self.pos : self.pos + n].tolist()
        self.pos += n
        return out

    def words_of(self, n: int) -> list[str]:
        return [self.words[i] for i in self._indices(n)]

    def length(self, low: int, high: int) -> int:
        """A length in [low, high], skewed short (a triangular draw peaking at a third of the range),
        as titles and captions are."""
        mode = low + (high - low) / 3
        return int(round(self.rng.triangular(low, mode, high))) if high > low else low

    def sentence(self, low: int, high: int, extra: list[str] | None = None) -> str:
        """One sentence of ``low``..``high`` words, capitalised, with a full stop; ``extra`` words
        (a class name) are put in at a random place."""
        words = self.words_of(self.length(low, high))
        if extra:
            at = int(self.rng.integers(0, len(words) + 1))
            words[at:at] = extra
        words[0] = words[0].capitalize()
        return " ".join(words) + "."

    def phrase(self, low: int, high: int, extra: list[str] | None = None) -> str:
        """Like :meth:`sentence` but lower case and unpunctuated (captions, meme text)."""
        return self.sentence(low, high, extra)[:-1].lower()

    def paragraph(self, low: int, high: int) -> str:
        """``low``..``high`` words in sentences of 6 to 24 words (a plot synopsis)."""
        total, parts = self.length(low, high), []
        while total > 0:
            n = min(total, int(self.rng.integers(6, 25)))
            parts.append(self.sentence(n, n))
            total -= n
        return " ".join(parts)

    def name(self) -> str:
        """A capitalised two-word name (a director, a cast member)."""
        a, b = self.words_of(2)
        return f"{a.capitalize()} {b.capitalize()}"
