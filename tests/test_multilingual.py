"""Queries in any language: lite's multilingual tower (multilingual-e5-small and USE joined, + a fitted
head), the routing that keeps English on lite's own path, the Multi30k loader, the fit's data rules and
``frameseek eval --dataset multi30k``."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from frameseek import api, cli
from frameseek.errors import ModelError
from frameseek.lab.data.multi30k import flickr_id, for_photos, read_multi30k
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.handle import ModelHandle
from frameseek.models.language import is_english
from frameseek.models.multilingual import CONFIG_FILE, WEIGHTS_FILE, MultilingualTower
from frameseek.models.registry import packaged_weights
from test_search import require_trained, shared_model  # tests/ is on sys.path (like conftest)
from videos import require_bikes

FLICKR8K = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "flickr8k").resolve()
CYCLIST = (3.0, 5.5)  # bikes.mp4: a cyclist in a helmet on a bike beside a van (data README)
PARKED_BIKE = (7.5, 9.7)  # a bike parked against a wall on cobblestones by a bollard


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("multilingual-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def model(home: Path) -> DualEncoder:
    require_trained()
    return shared_model()


@pytest.fixture(scope="module")
def tower(model: DualEncoder) -> MultilingualTower:
    found = MultilingualTower.load(model.source_folder)
    assert found is not None, f"no {CONFIG_FILE} beside lite's weights in {model.source_folder}"
    return found


@pytest.fixture(scope="module")
def searcher(model: DualEncoder) -> api.Searcher:
    return api.Searcher(model)


# ---- language --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["a cyclist wearing a helmet", "dog", "people on a beach", "two men playing football in the park"],
)
def test_english_queries_are_recognised_as_english(text: str) -> None:
    assert is_english(text)


@pytest.mark.parametrize(
    "text",
    [
        "ein Radfahrer mit Helm",
        "un cycliste portant un casque",
        "un ciclista con casco",
        "cyklista s helmou na kole",
        "велосипедист в шлеме",
        "戴头盔的骑自行车的人",
    ],
)
def test_queries_in_other_languages_are_not_taken_for_english(text: str) -> None:
    assert not is_english(text)


def test_a_single_word_goes_by_the_english_vocabulary_when_there_is_one() -> None:
    vocabulary = frozenset({"dog", "bike", "skateboard"})
    assert is_english("dog", vocabulary)
    assert is_english("skateboards", vocabulary)
    assert not is_english("Fahrrad", vocabulary)


# ---- the tower -------------------------------------------------------------------------------------------
def test_the_head_loads_offline_and_without_torch(home: Path) -> None:
    """A new process with the hub off: the tower loads from lite's folder and embeds a German sentence,
    and torch is never imported for it."""
    folder = packaged_weights("lite")
    if folder is None or not (folder / CONFIG_FILE).is_file():
        pytest.fail("lite's multilingual head is not installed")
    script = (
        "import sys, numpy as np\n"
        "from frameseek.models.multilingual import MultilingualTower\n"
        f"tower = MultilingualTower.load({str(folder)!r})\n"
        "e = tower.encode(['ein Hund rennt am Strand'])\n"
        "assert e.shape == (1, 512) and abs(float(np.linalg.norm(e)) - 1) < 1e-4, e.shape\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "FRAMESEEK_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_head_was_fitted_for_the_installed_lite(model: DualEncoder, tower: MultilingualTower) -> None:
    assert tower.config["model_fingerprint"] == model.fingerprint
    assert tower.config["fit"]["rule"].startswith("Flickr8k TRAIN photos")
    assert "nothing about a Flickr8k DEV or TEST photo" in tower.config["fit"]["rule"]
    assert tower.inputs_from == ("e5", "use")


def test_a_translation_lands_next_to_its_english_sentence_in_lites_space(
    model: DualEncoder, tower: MultilingualTower
) -> None:
    english = [
        "a dog runs on the beach",
        "a man rides a bicycle down the street",
        "two children play football in a park",
        "a woman is cooking in a kitchen",
        "a snowboarder jumps in the air",
    ]
    german = [
        "ein Hund rennt am Strand",
        "ein Mann fährt mit dem Fahrrad die Straße entlang",
        "zwei Kinder spielen Fußball in einem Park",
        "eine Frau kocht in einer Küche",
        "ein Snowboarder springt in die Luft",
    ]
    similarity = tower.encode(german) @ model.encode_texts(english).T
    assert list(similarity.argmax(axis=1)) == list(range(len(english)))


def test_an_english_query_keeps_lites_own_path(model: DualEncoder) -> None:
    query = "a cyclist wearing a helmet"
    routed = ModelHandle(model).encode_texts([query])
    assert np.array_equal(routed, model.encode_texts([query]))


def test_a_mixed_batch_keeps_each_querys_own_path(model: DualEncoder, tower: MultilingualTower) -> None:
    texts = ["a red car", "ein rotes Auto fährt auf der Straße"]
    routed = ModelHandle(model).encode_texts(texts)
    assert np.array_equal(routed[0], model.encode_texts(texts[:1])[0])
    assert np.allclose(routed[1], tower.encode(texts[1:])[0], atol=1e-6)


@pytest.mark.parametrize(
    ("query", "scene"),
    [
        ("ein Radfahrer mit Helm auf einem Fahrrad", CYCLIST),
        ("un cycliste avec un casque", CYCLIST),
        ("una bicicleta aparcada contra una pared", PARKED_BIKE),
        pytest.param(
            "un ciclista con casco en bicicleta",
            CYCLIST,
            marks=pytest.mark.xfail(
                strict=True,
                reason="known miss (BENCHMARKS.md, Queries in any language): no Spanish in the head's fit; "
                "the top moment is at 6.04 s, just after the cyclist (3.0-5.5 s); 'un ciclista con casco' "
                "alone finds 5.04 s",
            ),
        ),
    ],
)
def test_a_query_in_german_french_or_spanish_finds_its_scene_in_bikes(
    searcher: api.Searcher, query: str, scene: tuple[float, float]
) -> None:
    response = searcher.search(require_bikes(), query, top_k=3)
    best = response.results[0]
    assert scene[0] - 0.5 <= best.time <= scene[1], [(r.time, r.score) for r in response.results]


def test_a_damaged_head_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"format": "frameseek-multilingual-head"}))
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="damaged multilingual head"):
        MultilingualTower.load(tmp_path)


def test_a_model_folder_without_a_head_has_no_tower(tmp_path: Path) -> None:
    assert MultilingualTower.load(tmp_path) is None


def test_a_head_whose_inputs_do_not_match_its_encoders_is_a_model_error(tmp_path: Path) -> None:
    """A head fitted on e5 + USE (896 inputs) but listing e5 alone, or naming an unknown encoder."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    arrays = {
        "w1": rng.normal(size=(8, 896)),
        "b1": np.zeros(8),
        "w2": rng.normal(size=(4, 8)),
        "b2": np.zeros(4),
        "skip": rng.normal(size=(4, 896)),
    }
    save_file({k: v.astype(np.float32) for k, v in arrays.items()}, str(tmp_path / WEIGHTS_FILE))
    for inputs_from in (["e5"], ["e5", "clip"]):
        config = {"format": "frameseek-multilingual-head", "inputs_from": inputs_from}
        (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
        with pytest.raises(ModelError, match="damaged multilingual head"):
            MultilingualTower.load(tmp_path)
    (tmp_path / CONFIG_FILE).write_text(
        json.dumps({"format": "frameseek-multilingual-head", "inputs_from": ["e5", "use"]})
    )
    tower = MultilingualTower.load(tmp_path)
    assert tower is not None and tower.encode(["ein Hund im Schnee"]).shape == (1, 4)


# ---- Multi30k and evaluation -----------------------------------------------------------------------------
def dev_photos(n: int) -> list[str]:
    listing = FLICKR8K / "Flickr_8k.devImages.txt"
    if not listing.is_file():
        pytest.fail(f"Flickr8k DEV list missing: {listing}")
    return [line.strip() for line in listing.read_text().splitlines() if line.strip()][:n]


def tiny_multi30k(folder: Path, photos: list[str]) -> Path:
    """A Multi30k-shaped folder: the named Flickr8k photos plus one photo on no Flickr8k list (as a TEST
    photo would be), four languages, one of them gzipped as in the repository's raw/ folder."""
    folder.mkdir()
    ids = [flickr_id(p) for p in photos] + ["99999999999"]
    (folder / "val.txt").write_text("".join(f"{i}.jpg\n" for i in ids))
    lines = {
        "en": ["a person outdoors", "people in a group", "a dog in the snow"],
        "de": ["eine Person im Freien", "Menschen in einer Gruppe", "ein Hund im Schnee"],
        "fr": ["une personne dehors", "des gens en groupe", "un chien dans la neige"],
        "cs": ["osoba venku", "lidé ve skupině", "pes ve sněhu"],
    }
    for lang, texts in lines.items():
        body = "".join(t + "\n" for t in texts[: len(ids)])
        if lang == "cs":
            with gzip.open(folder / f"val.{lang}.gz", "wt", encoding="utf-8") as handle:
                handle.write(body)
        else:
            (folder / f"val.{lang}").write_text(body, encoding="utf-8")
    return folder


def test_multi30k_gives_sentences_only_for_the_named_photos(tmp_path: Path) -> None:
    photos = dev_photos(2)
    lines = read_multi30k(tiny_multi30k(tmp_path / "m30k", photos))
    assert len(lines) == 3 and lines[2].captions["cs"] == "pes ve sněhu"
    rows = for_photos(lines, photos)
    assert [name for name, _ in rows] == photos  # the photo on no list is never handed out
    assert rows[0][1]["de"] == "eine Person im Freien"


def test_photos_outside_flickr8k_join_the_fit_only_with_the_test_list(tmp_path: Path) -> None:
    """Multi30k photos on no Flickr8k list join the fit when the TEST list is given; a DEV photo's or a
    TEST photo's lines never do, and a list that names a TRAIN photo is refused."""
    from frameseek.lab.data.sentence_pairs import read_held_out_photos, training_pairs

    dev = dev_photos(2)
    train = [line.strip() for line in (FLICKR8K / "Flickr_8k.trainImages.txt").read_text().splitlines()]
    data = tiny_multi30k(tmp_path / "m30k", dev)  # 2 DEV photos + photo 99999999999, on no list
    (data / "train.txt").write_text("88888888888.jpg\n77777777777.jpg\n")
    for lang, texts in {
        "en": ["a red kite", "a blue boat"],
        "de": ["ein roter Drachen", "ein blaues Boot"],
    }.items():
        (data / f"train.{lang}").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    test_list = tmp_path / "Flickr_8k.testImages.txt"
    test_list.write_text("".join(f"{n}_abcdef.jpg\n" for n in [77777777777, *range(1, 1000)]))
    held = read_held_out_photos(test_list, FLICKR8K)
    assert "77777777777" in held and len(held) == 1000

    without = training_pairs(FLICKR8K, data, None, limit=20)
    assert len(without) == 20 and not any(p.source.startswith("multi30k-outside") for p in without)
    pairs = training_pairs(FLICKR8K, data, None, held, limit=20)
    outside = [p for p in pairs if p.source.startswith("multi30k-outside")]
    assert pairs[:20] == without
    assert sorted((p.text, p.target) for p in outside) == [
        ("a dog in the snow", "a dog in the snow"),
        ("a red kite", "a red kite"),
        ("ein Hund im Schnee", "a dog in the snow"),
        ("ein roter Drachen", "a red kite"),
        ("pes ve sněhu", "a dog in the snow"),
        ("un chien dans la neige", "a dog in the snow"),
    ]
    assert all(p.target not in ("a person outdoors", "people in a group", "a blue boat") for p in pairs)
    assert len(training_pairs(FLICKR8K, data, None, held, limit=20, outside_photos=1)) in (22, 24)

    bad = tmp_path / "not-the-test-list.txt"
    bad.write_text("".join(f"{n}\n" for n in [*train[:1], *range(1, 1000)]))
    with pytest.raises(api.InputError, match="not Flickr8k's TEST list"):
        read_held_out_photos(bad, FLICKR8K)
    (tmp_path / "short.txt").write_text("1_a.jpg\n")
    with pytest.raises(api.InputError, match="not Flickr8k's TEST list"):
        read_held_out_photos(tmp_path / "short.txt", FLICKR8K)


def test_outside_photos_without_the_test_list_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "fit-multilingual",
        "--data",
        str(FLICKR8K),
        "--out",
        str(tmp_path / "h"),
        "--outside-photos",
        "5",
    ]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.count("\n") == 0 and "--flickr8k-test" in err, err
    assert not (tmp_path / "h").exists()


def test_the_lab_encodes_each_sentence_once(home: Path) -> None:
    """The per-sentence cache: a longer, reordered list encodes only the sentences it has not seen."""
    from frameseek.lab.sentence_cache import cached

    seen: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        seen.append(texts)
        return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)

    first = cached("test-lengths", ["a cat", "a dog", "a cat"], encode)
    again = cached("test-lengths", ["a bird", "a dog", "a cat"], encode)
    assert seen == [["a cat", "a dog"], ["a bird"]]
    assert first.tolist() == [[5, 2], [5, 1], [5, 2]] and again.tolist() == [[6, 1], [5, 1], [5, 2]]
    assert cached("test-lengths", ["a dog"], encode).tolist() == [[5, 1]] and len(seen) == 2


def test_eval_reports_recall_per_language_on_multi30k(tmp_path: Path, model: DualEncoder) -> None:
    data = tiny_multi30k(tmp_path / "m30k", dev_photos(2))
    result = CliRunner().invoke(
        cli.app,
        [
            "eval",
            "--dataset",
            "multi30k",
            "--data",
            str(data),
            "--images",
            str(FLICKR8K),
            "--split",
            "dev",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = report["text_to_image"]
    assert report["images"] == 2 and set(rows) == {"en", "de", "fr", "cs", "en-tower"}
    assert rows["en"]["through_tower"] == 0 and rows["de"]["through_tower"] == 2
    assert all(0 <= row["R@1"] <= 100 for row in rows.values())


def test_eval_on_multi30k_without_the_photos_folder_is_one_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_multi30k(tmp_path / "m30k", dev_photos(2))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "--dataset", "multi30k", "--data", str(data)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert err.count("\n") == 0 and "--images" in err


def test_fit_multilingual_writes_a_head_that_loads_with_its_record(
    tmp_path: Path, model: DualEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small real fit (60 Flickr8k TRAIN captions, each aligned with its photo, one epoch): the head lands
    atomically in --out with the record of how it was fitted, and loads as a tower."""
    monkeypatch.setattr("frameseek.models.factory.create_model", lambda name, **options: model)
    out = tmp_path / "head"
    result = CliRunner().invoke(
        cli.app,
        [
            "fit-multilingual",
            "--data",
            str(FLICKR8K),
            "--out",
            str(out),
            "--limit",
            "60",
            "--epochs",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    tower = MultilingualTower.load(out)
    assert tower is not None and tower.config["fit"]["sentences"] == {"flickr8k": 60}
    assert tower.inputs_from == ("e5", "use") and tower.config["head"]["inputs"] == 384 + 512
    record = tower.config["fit"]
    assert record["selected_on"] == "held-out photos' text→image R@1" and record["held_out_photos"] >= 1
    assert len(record["held_out_recall_at_1_by_epoch"]) == 2  # the ridge map, then the one epoch
    assert set(record["held_out_recall_at_1_by_source"]) == {"flickr8k"}  # the kept epoch's, per source
    kept = record["held_out_recall_at_1_by_epoch"][record["best_epoch"]]
    assert record["held_out_recall_at_1_by_source"]["flickr8k"] == pytest.approx(kept, abs=0.01)
    assert tower.encode(["ein Hund"]).shape == (1, 512)
