"""Tiny downloads in each dataset's original layout, written in the test session: the real file and
folder names, split files in the real format, a few samples per class, 8x8 images whose colour
encodes the sample. Each maker returns what the loader must find (ids per split, labels, texts).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fedbench.data.layouts import STANDIN_MARKER


@pytest.fixture(autouse=True)
def data_env(tmp_path, monkeypatch):
    """Each test gets its own cache folder and forgets the tables read by earlier tests."""
    from fedbench.data import prepare

    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(prepare, "_SOURCES", {})


def build(name: str, split_seed: int = 0, **options):
    """The dataset's ModalData, built as a run builds it (validated options), without the
    process-wide cache of :func:`fedbench.data.registry.load_modal_data`."""
    from fedbench.data.registry import DATASETS
    from fedbench.registry import build_options

    spec = DATASETS.get(name)
    return spec.build(build_options(spec.options, options, "data.options"), split_seed)


def close(pixel: np.ndarray, k: int, tol: int = 10) -> bool:
    """Whether a decoded (JPEG) pixel is the colour the fixture gave sample ``k``."""
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour(k))) <= tol))


def colour(k: int) -> tuple[int, int, int]:
    return ((37 * k) % 256, (91 * k + 50) % 256, (13 * k + 100) % 256)


def image_bytes(k: int, fmt: str = "JPEG", size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour(k)).save(buf, format=fmt, quality=95)
    return buf.getvalue()


def write_image(path: Path, k: int, fmt: str = "JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(k, fmt))
    return path


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# ---- MM-IMDb: single-genre counts Drama 5, Comedy 4, Horror 3, Documentary 3, Romance 2, Thriller 2,
# Action 2, Western 2, Sport 1 (so FedPrime's top 8 leaves Sport out), plus multi-genre and
# out-of-list movies.
SINGLE = (
    ["Drama"] * 5
    + ["Comedy"] * 4
    + ["Horror"] * 3
    + ["Documentary"] * 3
    + ["Romance", "Thriller", "Action", "Western"] * 2
    + ["Sport"]
)
MULTI = [["Drama", "Romance"], ["Action", "Adventure", "Sci-Fi"], ["Talk-Show"], ["Comedy", "News"]]
FEDPRIME_TOP8 = ["Drama", "Comedy", "Horror", "Documentary", "Romance", "Thriller", "Action", "Western"]


def make_mmimdb(root: Path, layout: str = "map") -> dict:
    movies = {}
    for k, genres in enumerate([[g] for g in SINGLE] + MULTI):
        mid = f"{1000000 + 7 * k:07d}"
        split = ("train", "train", "dev", "test")[k % 4]
        plots = [
            f"movie {k} plot zero is medium",
            f"movie {k} plot one is the longest of them all",
            f"movie {k} p2",
        ][: k % 3 + 1]
        movies[mid] = {"k": k, "split": split, "genres": genres, "plots": [] if k == 5 else plots}
    if layout == "map":
        split_dir, images, labels = root, root / "images", root / "labels"
    else:
        split_dir = root / "mmimdb"
        images = labels = split_dir / "dataset"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for mid, m in movies.items():
        write_image(images / f"{mid}.jpeg", m["k"])
        record = {"title": f"Movie {m['k']}", "genres": m["genres"], "year": 2000 + m["k"]}
        if m["plots"]:
            record["plot"] = m["plots"]
        (labels / f"{mid}.json").write_text(json.dumps(record))
    split = {s: [mid for mid, m in movies.items() if m["split"] == s] for s in ("train", "dev", "test")}
    (split_dir / "split.json").write_text(json.dumps(split))
    return {"movies": movies, "split": split, "images": images, "labels": labels}


# ---- UPMC Food-101 (Kaggle layout) with MAP's split.json / class_idx.json / text.json
FOOD = [
    "ramen",
    "apple_pie",
    "baby_back_ribs",
    "baklava",
    "beef_carpaccio",
    "beef_tartare",
    "beet_salad",
    "beignets",
    "bibimbap",
    "sushi",
]


def make_food101(root: Path, map_files: bool = True, header: bool = True) -> dict:
    files, texts, k = {"train": [], "val": [], "test": []}, {}, 0
    for c in FOOD:
        for n in range(5):
            f = f"{c}_{n}.jpg"
            part = "test" if n == 4 else "train"
            write_image(root / "images" / part / c / f, k)
            k += 1
            if not (c == "sushi" and n == 1):  # one image without text: dropped, as MAP does
                texts[f] = f"{c.replace('_', ' ')} recipe number {n}, with a comma"
            files["test" if n == 4 else "val" if n == 3 else "train"].append(f)
    (root / "texts").mkdir(parents=True, exist_ok=True)
    for part in ("train", "test"):
        rows = [
            (f, texts[f], f.rsplit("_", 1)[0])
            for f in sorted(texts)
            if (f.endswith("_4.jpg")) == (part == "test")
        ]
        body = ("image_path,text,food\n" if header else "") + "".join(f'{f},"{t}",{c}\n' for f, t, c in rows)
        (root / "texts" / f"{part}_titles.csv").write_text(body)
    class_idx = {c: i for i, c in enumerate(FOOD)}  # MAP numbers classes in its own (not alphabetical) order
    if map_files:
        (root / "split.json").write_text(json.dumps(files))
        (root / "class_idx.json").write_text(json.dumps(class_idx))
        (root / "text.json").write_text(json.dumps(texts))
    return {"files": files, "texts": texts, "class_idx": class_idx}


# ---- Hateful Memes (the release's layout: img/*.png beside the jsonl files)
def make_hatememes(root: Path, nested: bool = False, phase1_test: bool = False) -> dict:
    base = root / "data" if nested else root
    records = {}
    for split, n in (("train", 8), ("dev_seen", 4), ("test_seen", 4), ("dev_unseen", 2)):
        rows = []
        for _ in range(n):
            k = len(records)
            mid = f"{10000 + 13 * k:05d}"
            write_image(base / "img" / f"{mid}.png", k, "PNG")
            row = {
                "id": int(mid),
                "img": f"img/{mid}.png",
                "label": (k * 7) % 3 % 2,
                "text": f"meme {k} says hello",
            }
            records[mid] = {**row, "split": split}
            rows.append(row)
        name = "test.jsonl" if phase1_test and split == "test_seen" else f"{split}.jsonl"
        if phase1_test and split == "test_seen":
            rows = [{k: v for k, v in r.items() if k != "label"} for r in rows]
        (base / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"records": records, "base": base}


# ---- CUB-200-2011 with Reed's text_c10 (under cvpr2016_cub/)
CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]


def make_cub(root: Path, per_class: int = 10) -> dict:
    base = root / "CUB_200_2011"
    text = root / "cvpr2016_cub" / "text_c10"
    images, labels, split, captions = [], [], [], {}
    for c, cls in enumerate(CUB_CLASSES):
        for n in range(per_class):
            k = len(images) + 1
            stem = f"{cls.split('.', 1)[1]}_{n:04d}_{100 + k}"
            write_image(base / "images" / cls / f"{stem}.jpg", k)
            images.append(f"{k} {cls}/{stem}.jpg")
            labels.append(f"{k} {c + 1}")
            split.append(f"{k} {int(n % 2 == 0)}")
            lines = [
                f"bird {k} caption {j} this bird has a {['red', 'blue', 'tiny'][j % 3]} beak"
                for j in range(10)
            ]
            captions[str(k)] = lines
            (text / cls).mkdir(parents=True, exist_ok=True)
            (text / cls / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    base.mkdir(parents=True, exist_ok=True)
    (base / "images.txt").write_text("\n".join(images) + "\n")
    (base / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (base / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (base / "classes.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CUB_CLASSES)))
    return {"captions": captions, "n": len(images), "base": base, "per_class": per_class}


# ---- Oxford-102 Flowers (.mat files) with Reed's text_c10/class_XXXXX/
def make_flowers(root: Path, per_class: int = 10, classes: int = 3) -> dict:
    from scipy.io import savemat

    labels, sets, captions = [], {"trnid": [], "valid": [], "tstid": []}, {}
    for c in range(classes):
        for n in range(per_class):
            k = len(labels) + 1
            labels.append(c + 1)
            sets["trnid" if n < 2 else "valid" if n < 4 else "tstid"].append(k)
            write_image(root / "jpg" / f"image_{k:05d}.jpg", k)
            lines = [
                f"flower {k} caption {j} petals are {['pink', 'white', 'long'][j % 3]}" for j in range(10)
            ]
            captions[k] = lines
            folder = root / "text_c10" / f"class_{c + 1:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"image_{k:05d}.txt").write_text("\n".join(lines) + "\n")
    savemat(root / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    savemat(root / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in sets.items()})
    return {"labels": labels, "sets": sets, "captions": captions}


# ---- CIFAR binary version and hub parquet copy
def cifar_records(
    n: int, classes: int, seed: int, label_bytes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    coarse = labels % 20
    pixels = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    planes = pixels.transpose(0, 3, 1, 2).reshape(n, -1)
    head = labels[:, None] if label_bytes == 1 else np.stack([coarse, labels], 1)
    return np.concatenate([head.astype(np.uint8), planes], 1), labels, pixels


def make_cifar_binary(root: Path, which: str = "cifar10") -> dict:
    classes, label_bytes = (10, 1) if which == "cifar10" else (100, 2)
    folder = root / ("cifar-10-batches-bin" if which == "cifar10" else "cifar-100-binary")
    folder.mkdir(parents=True, exist_ok=True)
    files = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
    if which != "cifar10":
        files = {"train": ["train.bin"], "test": ["test.bin"]}
    out = {"train": ([], []), "test": ([], [])}
    for split, names in files.items():
        for j, name in enumerate(names):
            n = 20 if which == "cifar10" else 60  # 10 classes used, so each has enough rows to carve from
            recs, labels, pixels = cifar_records(n, 10, j + (0 if split == "train" else 100), label_bytes)
            (folder / name).write_bytes(recs.tobytes())
            out[split][0].append(labels)
            out[split][1].append(pixels)
    # a scaled-down copy says its split sizes as benchmarks/standins does (the release's 10,000
    # records per file do not apply to it)
    marker = {
        "dataset": which,
        "splits": {split: sum(len(labels) for labels in out[split][0]) for split in out},
    }
    (root / STANDIN_MARKER).write_text(json.dumps(marker))
    if which == "cifar10":
        (folder / "batches.meta.txt").write_text(
            "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
        )
    else:
        (folder / "fine_label_names.txt").write_text("".join(f"fine_{i:03d}\n" for i in range(100)))
        (folder / "coarse_label_names.txt").write_text("".join(f"coarse_{i:02d}\n" for i in range(20)))
    return {s: (np.concatenate(v[0]), np.concatenate(v[1])) for s, v in out.items()}


def write_hub_parquet(path: Path, columns: dict, features: dict) -> None:
    """A parquet file as ``datasets`` writes it (Image structs, ClassLabel names in the metadata)."""
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns, features=datasets.Features(features)).to_parquet(str(path))


def make_cifar_parquet(root: Path, which: str = "cifar10") -> dict:
    import datasets

    out = {}
    for split, n in (("train", 30), ("test", 10)):
        recs, labels, pixels = cifar_records(n, 10, 7 if split == "train" else 8, 1)
        pngs = [{"bytes": _png(p), "path": None} for p in pixels]
        if which == "cifar10":
            names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
            cols = {"img": pngs, "label": labels.tolist()}
            feats = {"img": datasets.Image(), "label": datasets.ClassLabel(names=names)}
            folder = "plain_text"
        else:
            cols = {"img": pngs, "fine_label": labels.tolist(), "coarse_label": (labels % 20).tolist()}
            feats = {
                "img": datasets.Image(),
                "fine_label": datasets.ClassLabel(names=[f"fine_{i:03d}" for i in range(100)]),
                "coarse_label": datasets.ClassLabel(names=[f"coarse_{i:02d}" for i in range(20)]),
            }
            folder = "cifar100"
        write_hub_parquet(root / folder / f"{split}-00000-of-00001.parquet", cols, feats)
        out[split] = (labels, pixels)
    return out


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


# ---- Tiny-ImageNet: the original zip's layout and the hub parquet copy
WNIDS = ["n02124075", "n01443537", "n04067472"]  # wnids.txt is not sorted; labels follow sorted order


def make_tinyimagenet(root: Path, per_class: int = 10) -> dict:
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (base / "words.txt").write_text(
        "n01443537\tgoldfish, Carassius auratus\n"
        "n02124075\tEgyptian cat\nn04067472\treel\nn00000001\tentity\n"
    )
    train, k = {}, 0
    for wnid in WNIDS:
        folder = base / "train" / wnid
        for n in range(per_class):
            write_image(folder / "images" / f"{wnid}_{n}.JPEG", k)
            train[f"{wnid}_{n}"] = wnid
            k += 1
        (folder / f"{wnid}_boxes.txt").write_text("")
    val, lines = {}, []
    for n in range(6):
        wnid = WNIDS[n % 3]
        write_image(base / "val" / "images" / f"val_{n}.JPEG", 100 + n)
        val[f"val_{n}"] = wnid
        lines.append(f"val_{n}.JPEG\t{wnid}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    write_image(base / "test" / "images" / "test_0.JPEG", 999)
    return {"train": train, "val": val}


def make_tinyimagenet_parquet(root: Path) -> dict:
    import datasets

    names = ["n04067472", "n01443537", "n02124075"]  # the copy's own label order, not sorted
    out = {}
    for split, n in (("train", 12), ("valid", 6)):
        labels = [i % 3 for i in range(n)]
        imgs = [{"bytes": image_bytes(i, "JPEG", 64), "path": None} for i in range(n)]
        write_hub_parquet(
            root / "data" / f"{split}-00000-of-00001-{'ab12' if split == 'train' else 'cd34'}.parquet",
            {"image": imgs, "label": labels},
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=names)},
        )
        out[split] = [names[v] for v in labels]
    return out
