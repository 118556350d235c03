"""Tests for frameseek.lab.data.captions: Flickr8k (both formats, real data), Flickr30k, COCO, CSV/JSONL pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frameseek.errors import InputError
from frameseek.lab.data.captions import (
    CaptionSample,
    group_by_image,
    load_coco,
    load_dataset,
    load_flickr8k,
    load_flickr30k,
    load_pairs,
)

REAL_FLICKR8K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "flickr8k"


def _touch_images(folder: Path, names: list[str]) -> None:
    """Create empty placeholder image files (the loaders never decode them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def _write_split_lists(root: Path, train: list[str], dev: list[str]) -> None:
    """Write the official-style train and dev lists (no test list, like the shared data)."""
    (root / "Flickr_8k.trainImages.txt").write_text("\n".join(train) + "\n")
    (root / "Flickr_8k.devImages.txt").write_text("\n".join(dev) + "\n")


@pytest.fixture
def flickr8k_csv(tmp_path: Path) -> Path:
    """A captions.txt root with a quoted comma, an unquoted comma, escaped quotes and a dev image."""
    tmp_path = tmp_path / "flickr8k"
    _touch_images(tmp_path / "images", ["a.jpg", "b.jpg", "c.jpg"])
    (tmp_path / "captions.txt").write_text(
        "image,caption\n"
        "a.jpg,A dog runs .\n"
        'a.jpg,"A dog , brown , runs ."\n'
        "b.jpg,A cat sits , then sleeps .\n"
        'b.jpg,"A sign that says "" sale "" ."\n'
        "c.jpg,A bird .\n"
    )
    _write_split_lists(tmp_path, train=["b.jpg", "a.jpg"], dev=["c.jpg"])
    return tmp_path


def test_flickr8k_csv_commas_quotes_and_split_order(flickr8k_csv: Path) -> None:
    """Split on the first comma, unquote quoted captions and follow the split list's order (b before a)."""
    samples = load_flickr8k(flickr8k_csv, "train")
    assert [(s.image_id, s.caption) for s in samples] == [
        ("b.jpg", "A cat sits , then sleeps ."),
        ("b.jpg", 'A sign that says " sale " .'),
        ("a.jpg", "A dog runs ."),
        ("a.jpg", "A dog , brown , runs ."),
    ]
    assert samples[0] == CaptionSample(
        flickr8k_csv / "images" / "b.jpg", "A cat sits , then sleeps .", "b.jpg"
    )
    assert [s.image_id for s in load_flickr8k(flickr8k_csv, "dev")] == ["c.jpg"]
    assert len(load_flickr8k(flickr8k_csv, "all")) == 5


def test_flickr8k_missing_split_list_is_a_one_line_input_error(flickr8k_csv: Path) -> None:
    """The test list is absent: the error names the missing file."""
    with pytest.raises(InputError, match=r"Flickr_8k\.testImages\.txt") as info:
        load_flickr8k(flickr8k_csv, "test")
    assert "\n" not in str(info.value)


def test_flickr8k_listed_image_missing_on_disk(flickr8k_csv: Path) -> None:
    """A split image that is not on disk is reported rather than silently shrinking the split."""
    (flickr8k_csv / "images" / "c.jpg").unlink()
    with pytest.raises(InputError, match=r"1 of 1 images .* c\.jpg"):
        load_flickr8k(flickr8k_csv, "dev")


def test_flickr8k_token_format(tmp_path: Path) -> None:
    """The original Flickr8k.token.txt (`name#n<TAB>caption`) with Flicker8k_Dataset/ and Flickr8k_text/."""
    _touch_images(tmp_path / "Flicker8k_Dataset", ["x.jpg", "y.jpg"])
    text = tmp_path / "Flickr8k_text"
    text.mkdir()
    (text / "Flickr8k.token.txt").write_text(
        "x.jpg#0\tA man , smiling .\nx.jpg#1\tA man .\ny.jpg#0\tTwo kids play .\nz.jpg.1#0\tstray row\n"
    )
    (text / "Flickr_8k.trainImages.txt").write_text("x.jpg\ny.jpg\n")
    (text / "Flickr_8k.testImages.txt").write_text("y.jpg\n")
    samples = load_flickr8k(tmp_path, "train")
    assert [(s.image_id, s.caption) for s in samples] == [
        ("x.jpg", "A man , smiling ."),
        ("x.jpg", "A man ."),
        ("y.jpg", "Two kids play ."),
    ]
    assert samples[0].image_path == tmp_path / "Flicker8k_Dataset" / "x.jpg"
    assert [s.caption for s in load_flickr8k(tmp_path, "test")] == ["Two kids play ."]
    assert len(load_flickr8k(tmp_path, "all")) == 3  # the stray row's image does not exist


def test_flickr8k_bad_inputs(tmp_path: Path, flickr8k_csv: Path) -> None:
    """Unknown split, missing folder and missing captions are InputErrors."""
    with pytest.raises(InputError, match="unknown split"):
        load_flickr8k(flickr8k_csv, "validation")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not found"):
        load_flickr8k(tmp_path / "nope", "train")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"captions\.txt or Flickr8k\.token\.txt"):
        load_flickr8k(empty, "train")


def test_group_by_image() -> None:
    """Unique images keep first-seen order; every caption maps to its image's index."""
    a, b = Path("a.jpg"), Path("b.jpg")
    samples = [CaptionSample(a, "1", "a"), CaptionSample(b, "2", "b"), CaptionSample(a, "3", "a")]
    assert group_by_image(samples) == ([a, b], ["1", "2", "3"], [0, 1, 0])
    assert group_by_image([]) == ([], [], [])


@pytest.mark.skipif(not REAL_FLICKR8K.is_dir(), reason="shared Flickr8k data not available")
def test_real_flickr8k_splits() -> None:
    """Official splits of the shared copy: train 6000 / 30000, dev 1000 / 5000, test list absent."""
    train = load_flickr8k(REAL_FLICKR8K, "train")
    images, captions, index = group_by_image(train)
    assert (len(images), len(captions)) == (6000, 30000)
    official = (REAL_FLICKR8K / "Flickr_8k.trainImages.txt").read_text().split()
    assert [p.name for p in images] == official
    assert all(p.is_file() for p in images[:50])
    assert max(index) == 5999
    dev_images, dev_captions, _ = group_by_image(load_flickr8k(REAL_FLICKR8K, "dev"))
    assert (len(dev_images), len(dev_captions)) == (1000, 5000)
    assert not set(images) & set(dev_images)
    assert any(", " in c or " ," in c for c in dev_captions)
    assert not any(c.startswith('"') for c in captions + dev_captions)
    with pytest.raises(InputError, match="testImages"):
        load_flickr8k(REAL_FLICKR8K, "test")


@pytest.fixture
def flickr30k_root(tmp_path: Path) -> Path:
    """Kaggle layout: flickr30k_images/flickr30k_images/*.jpg, results.csv and a Karpathy split file."""
    tmp_path = tmp_path / "flickr30k"
    _touch_images(tmp_path / "flickr30k_images" / "flickr30k_images", ["1.jpg", "2.jpg", "3.jpg"])
    (tmp_path / "results.csv").write_text(
        "image_name| comment_number| comment\n"
        "1.jpg| 0| A man , in red .\n"
        "1.jpg| 1| A man .\n"
        "2.jpg| 0| Dogs play .\n"
        "2.jpg| 4 A dog runs across the grass .\n"
        "3.jpg| 0| A | pipe .\n"
    )
    karpathy = {
        "images": [
            {"filename": "2.jpg", "split": "train", "sentences": [{"raw": "k2"}]},
            {"filename": "1.jpg", "split": "train", "sentences": [{"raw": "k1"}]},
            {"filename": "3.jpg", "split": "val", "sentences": [{"raw": "k3"}]},
        ]
    }
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps(karpathy))
    return tmp_path


def test_flickr30k_results_csv_with_karpathy_splits(flickr30k_root: Path) -> None:
    """Pipe-separated captions (incl. the known row missing a pipe), Karpathy order, val -> dev."""
    train = load_flickr30k(flickr30k_root, "train")
    assert [(s.image_id, s.caption) for s in train] == [
        ("2.jpg", "Dogs play ."),
        ("2.jpg", "A dog runs across the grass ."),
        ("1.jpg", "A man , in red ."),
        ("1.jpg", "A man ."),
    ]
    assert train[0].image_path == flickr30k_root / "flickr30k_images" / "flickr30k_images" / "2.jpg"
    assert [s.caption for s in load_flickr30k(flickr30k_root, "dev")] == ["A | pipe ."]
    assert load_flickr30k(flickr30k_root, "test") == []
    assert len(load_flickr30k(flickr30k_root, "all")) == 5


def test_flickr30k_token_and_karpathy_only(flickr30k_root: Path) -> None:
    """Without results.csv the token file is used; without both, Karpathy's raw sentences."""
    (flickr30k_root / "results.csv").unlink()
    (flickr30k_root / "results_20130124.token").write_text("3.jpg#0\tA kite .\n")
    assert [s.caption for s in load_flickr30k(flickr30k_root, "dev")] == ["A kite ."]
    (flickr30k_root / "results_20130124.token").unlink()
    assert [s.caption for s in load_flickr30k(flickr30k_root, "train")] == ["k2", "k1"]
    (flickr30k_root / "dataset_flickr30k.json").unlink()
    with pytest.raises(InputError, match="no Flickr30k captions"):
        load_flickr30k(flickr30k_root, "train")


def test_flickr30k_missing_split_file(flickr30k_root: Path) -> None:
    """Named splits need dataset_flickr30k.json; 'all' does not."""
    (flickr30k_root / "dataset_flickr30k.json").unlink()
    with pytest.raises(InputError, match=r"dataset_flickr30k\.json"):
        load_flickr30k(flickr30k_root, "train")
    assert len(load_flickr30k(flickr30k_root, "all")) == 5


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    """COCO layout: annotations/captions_val2017.json and val2017/ (one listed image is missing)."""
    _touch_images(tmp_path / "val2017", ["000000000001.jpg", "000000000002.jpg"])
    data = {
        "images": [
            {"id": 2, "file_name": "000000000002.jpg"},
            {"id": 1, "file_name": "000000000001.jpg"},
            {"id": 9, "file_name": "000000000009.jpg"},
        ],
        "annotations": [
            {"image_id": 1, "id": 10, "caption": "A cat.\n"},
            {"image_id": 2, "id": 11, "caption": " A bus, red."},
            {"image_id": 1, "id": 12, "caption": "A cat sleeping."},
            {"image_id": 9, "id": 13, "caption": "Missing image."},
        ],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_val2017.json").write_text(json.dumps(data))
    return tmp_path


def test_coco(coco_root: Path) -> None:
    """Images in the file's order, captions stripped, images missing from disk skipped."""
    samples = load_coco(coco_root / "annotations" / "captions_val2017.json", coco_root / "val2017")
    assert [(s.image_id, s.caption) for s in samples] == [
        ("2", "A bus, red."),
        ("1", "A cat."),
        ("1", "A cat sleeping."),
    ]
    assert samples[0].image_path == coco_root / "val2017" / "000000000002.jpg"
    with pytest.raises(InputError, match="none of the images"):
        load_coco(coco_root / "annotations" / "captions_val2017.json", coco_root / "annotations")


def test_load_dataset_coco_file_or_folder(coco_root: Path) -> None:
    """coco accepts the captions JSON (image folder found beside annotations/) or the dataset root."""
    by_file = load_dataset("coco", coco_root / "annotations" / "captions_val2017.json", "all")
    by_folder = load_dataset("COCO", coco_root, "dev")
    assert by_file == by_folder
    assert len(by_file) == 3
    with pytest.raises(InputError, match=r"captions_train2017\.json"):
        load_dataset("coco", coco_root, "train")


def test_load_pairs_csv(tmp_path: Path) -> None:
    """A CSV with image_path/text columns; relative paths resolve against the CSV's folder."""
    sub = tmp_path / "set"
    sub.mkdir()
    absolute = tmp_path / "abs.jpg"
    (sub / "pairs.csv").write_text(
        f'id,image_path,text\n1,pics/a.jpg,"A dog, running"\n2,{absolute},A cat\n3,,no image\n'
    )
    samples = load_pairs(sub / "pairs.csv")
    assert samples == [
        CaptionSample(sub / "pics" / "a.jpg", "A dog, running", "pics/a.jpg"),
        CaptionSample(absolute, "A cat", str(absolute)),
    ]


def test_load_pairs_csv_unquoted_comma_in_last_column(tmp_path: Path) -> None:
    """An unquoted comma in a trailing caption column is kept as part of the caption."""
    (tmp_path / "p.csv").write_text("image,caption\na.jpg,A dog , running .\n")
    assert [s.caption for s in load_pairs(tmp_path / "p.csv")] == ["A dog , running ."]


def test_load_pairs_jsonl(tmp_path: Path) -> None:
    """JSON Lines with image/caption keys (blank lines ignored)."""
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"image": "a.jpg", "caption": "A dog"}\n\n{"filepath": "b/c.jpg", "text": "Two cats"}\n')
    assert load_pairs(path) == [
        CaptionSample(tmp_path / "a.jpg", "A dog", "a.jpg"),
        CaptionSample(tmp_path / "b" / "c.jpg", "Two cats", "b/c.jpg"),
    ]
    assert load_dataset("jsonl", path, "all") == load_pairs(path)


def test_load_pairs_errors(tmp_path: Path) -> None:
    """Missing file, missing columns, bad JSON and empty files are one-line InputErrors."""
    with pytest.raises(InputError, match="not found"):
        load_pairs(tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("name,label\na.jpg,dog\n")
    with pytest.raises(InputError, match="image column"):
        load_pairs(tmp_path / "bad.csv")
    (tmp_path / "bad.jsonl").write_text('{"image": "a.jpg", "caption": "x"}\nnot json\n')
    with pytest.raises(InputError, match="line 2"):
        load_pairs(tmp_path / "bad.jsonl")
    (tmp_path / "empty.csv").write_text("image,caption\n")
    with pytest.raises(InputError, match="no \\(image, caption\\) pairs"):
        load_pairs(tmp_path / "empty.csv")


def test_load_dataset_dispatch(flickr8k_csv: Path, flickr30k_root: Path) -> None:
    """Names dispatch to the loaders; val is accepted for dev; unknown names are InputErrors."""
    assert load_dataset("flickr8k", flickr8k_csv, "train") == load_flickr8k(flickr8k_csv, "train")
    assert load_dataset("flickr8k", flickr8k_csv, "val") == load_flickr8k(flickr8k_csv, "dev")
    assert load_dataset("flickr30k", flickr30k_root, "dev") == load_flickr30k(flickr30k_root, "dev")
    (flickr8k_csv / "pairs.csv").write_text("image,caption\nimages/a.jpg,A dog\n")
    assert (
        load_dataset("csv", flickr8k_csv / "pairs.csv", "all")[0].image_path
        == flickr8k_csv / "images" / "a.jpg"
    )
    with pytest.raises(InputError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet", flickr8k_csv, "train")


def test_tuxpaint_stamps(tmp_path: Path) -> None:
    """Tux Paint's layout: <name>.png beside <name>.txt (English first, then translations); a PNG without
    a description is skipped, a repeated description keeps its first image, and RGBA loads on white."""
    from PIL import Image

    from frameseek.lab.features import load_image

    (tmp_path / "animals" / "frogs").mkdir(parents=True)
    (tmp_path / "vehicles").mkdir()
    clear = Image.new("RGBA", (8, 6), (0, 0, 0, 0))
    for name in ("animals/frogs/frog", "animals/frogs/frog-1", "vehicles/bus", "vehicles/bus_mirror"):
        clear.save(tmp_path / f"{name}.png")
    (tmp_path / "animals/frogs/frog-1.txt").write_text("A frog.\nde.utf8=Ein Frosch.\n", encoding="utf-8")
    (tmp_path / "animals/frogs/frog.txt").write_text("a  FROG.\n", encoding="utf-8")  # sorts after frog-1
    (tmp_path / "vehicles/bus.txt").write_text("\nA yellow school bus.\nfr.utf8=Un bus.\n", encoding="utf-8")
    (tmp_path / "vehicles/bus.ogg").write_bytes(b"")
    samples = load_dataset("tuxpaint", tmp_path, "all")
    assert [(s.image_id, s.caption) for s in samples] == [
        ("animals/frogs/frog-1.png", "A frog."),
        ("vehicles/bus.png", "A yellow school bus."),
    ]
    assert load_image(samples[0].image_path).getpixel((3, 3)) == (255, 255, 255)
    with pytest.raises(InputError, match="one split"):
        load_dataset("tuxpaint", tmp_path, "train")
    with pytest.raises(InputError, match="tuxpaint-stamps-default"):
        load_dataset("tuxpaint", tmp_path / "missing", "all")
