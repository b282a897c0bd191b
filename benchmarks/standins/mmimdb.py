"""MM-IMDb stand-in in the archive's layout (data.md §1.1, fedbench/data/mmimdb.py):

    mmimdb/split.json          {"train": [ids], "dev": [ids], "test": [ids]}, 7-digit IMDb id strings
    mmimdb/dataset/<id>.jpeg   poster (portrait, about 2:3)
    mmimdb/dataset/<id>.json   IMDbPY-style record: genres, plot (1 to 5 plots of 50 to 300 words),
                               and the other keys a real record carries (title, year, cast, ...)

Real counts: 25,959 movies, train 15,552 / dev 2,608 / test 7,799 (data.md §1.1, MAP's split.json).
Genres: each movie gets 1 to 5 (a quarter of them exactly one, as FedPrime's single-genre cut
needs), drawn without replacement in proportion to the real genre counts (Drama commonest), with
the rare genres outside MAP's 23 (News, Adult, ...) that the loader drops.
"""

from __future__ import annotations

import numpy as np

from benchmarks.standins.common import Report, Writer, scaled
from benchmarks.standins.images import Pictures
from benchmarks.standins.names import MMIMDB_GENRES
from benchmarks.standins.texts import Texts

SPLITS = {"train": 15_552, "dev": 2_608, "test": 7_799}
GENRES_PER_MOVIE = {1: 0.25, 2: 0.30, 3: 0.30, 4: 0.10, 5: 0.05}
PLOTS_PER_MOVIE = {1: 0.45, 2: 0.25, 3: 0.15, 4: 0.10, 5: 0.05}
MIN_PER_SPLIT = 20  # enough single-genre movies per split for FedPrime's cut at small scales


def record(mid: str, genres: list[str], rng: np.random.Generator, texts: Texts) -> dict:
    """One movie's json, keys as IMDbPY writes them (only genres and plot are read)."""
    n_plots = int(rng.choice(list(PLOTS_PER_MOVIE), p=list(PLOTS_PER_MOVIE.values())))
    plots = [texts.paragraph(50, 300) for _ in range(n_plots)]
    return {
        "rating": round(float(rng.uniform(1.5, 9.5)), 1),
        "votes": int(rng.integers(5, 500_000)),
        "genres": genres,
        "title": texts.sentence(1, 5)[:-1],
        "year": int(rng.integers(1915, 2015)),
        "kind": "movie",
        "imdbID": mid,
        "director": [texts.name() for _ in range(int(rng.integers(1, 3)))],
        "cast": [texts.name() for _ in range(int(rng.integers(3, 16)))],
        "countries": ["USA"],
        "languages": ["English"],
        "runtimes": [str(int(rng.integers(70, 180)))],
        "plot outline": texts.paragraph(20, 60),
        "plot": plots,
        "cover url": f"http://ia.media-imdb.com/images/M/{mid}._V1_SX100_SY140_.jpg",
    }


def make(out: Writer, rng: np.random.Generator, scale: float) -> Report:
    sizes = {s: scaled(n, scale, MIN_PER_SPLIT) for s, n in SPLITS.items()}
    total = sum(sizes.values())
    ids = [f"{i:07d}" for i in rng.choice(np.arange(1, 3_800_000), size=total, replace=False)]
    names, weights = list(MMIMDB_GENRES), np.array(list(MMIMDB_GENRES.values()), dtype=float)
    weights /= weights.sum()
    pictures, texts = Pictures(rng, "JPEG", side=(30, 64), aspect=(1.35, 1.6)), Texts(rng)
    split, at, single = {}, 0, 0
    for s, n in sizes.items():
        split[s] = ids[at : at + n]
        at += n
    for mid in ids:
        k = int(rng.choice(list(GENRES_PER_MOVIE), p=list(GENRES_PER_MOVIE.values())))
        genres = sorted(
            names[g] for g in rng.choice(len(names), size=k, replace=False, p=weights)
        )  # IMDb lists them A-Z
        single += k == 1
        out.blob(f"mmimdb/dataset/{mid}.jpeg", pictures.make())
        out.json(f"mmimdb/dataset/{mid}.json", record(mid, genres, rng, texts))
    out.json("mmimdb/split.json", split, indent=1)
    return Report(
        "mmimdb",
        out.root,
        total,
        {s: len(v) for s, v in split.items()},
        notes={"single-genre movies": single},
    )
