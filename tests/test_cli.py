"""The command line: in-process through typer's CliRunner / ``main()``, and a few real subprocess runs."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from frameseek import api, cli
from frameseek.cli import options
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import create_model
from frameseek.models.registry import packaged_weights
from frameseek.video.decode import frame_at, probe
from test_search import shared_model, small_clips  # tests/ is on sys.path (like conftest)
from videos import require_bikes

RESULT_KEYS = {"video", "time", "timecode", "score", "start", "end", "thumbnail"}
METRIC_KEYS = {
    "download_bytes", "download_mb_per_s", "extraction_frames_per_s", "encoding_frames_per_s",
    "search_latency_ms", "cpu_percent", "peak_rss_mb", "frames_processed", "index_reused",
}  # fmt: skip
CLI_SOURCE = Path(cli.__file__).parent
TIMECODE = re.compile(r"\b\d\d:\d\d:\d\d\.\d{3}\b")
SUBPROCESS_TIMEOUT = 300


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One FRAMESEEK_HOME for the module (like ``fs_home``), so bikes.mp4 is indexed once."""
    root = tmp_path_factory.mktemp("cli-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(root))
        mp.setenv("COLUMNS", "200")  # wide enough that rich does not fold the table
        yield root


@pytest.fixture(scope="module")
def model(home: Path) -> DualEncoder:
    return shared_model()


@pytest.fixture(scope="module")
def model_arg(model: DualEncoder, tmp_path_factory: pytest.TempPathFactory) -> str:
    """What to pass to --model: the packaged ``lite`` preset, else a checkpoint folder of the same model."""
    if packaged_weights("lite") is not None:
        return "lite"
    folder = tmp_path_factory.mktemp("checkpoint") / "lite-random"
    model.save_pretrained(folder)
    return str(folder)


@pytest.fixture(autouse=True)
def loaded_once(monkeypatch: pytest.MonkeyPatch, model: DualEncoder, model_arg: str) -> None:
    """In-process runs reuse the already loaded model for --model MODEL_ARG (other names load for real)."""

    def load(name: str, **options: Any) -> DualEncoder:
        return model if name == model_arg else create_model(name, **options)

    monkeypatch.setattr("frameseek.models.factory.create_model", load)


@pytest.fixture(scope="module")
def bikes() -> Path:
    return require_bikes()


def invoke(*args: str) -> tuple[str, str]:
    """Run the typer app in-process; (stdout, stderr); fails with the output when the exit code is not 0."""
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    return result.stdout, result.stderr


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``frameseek.cli.main`` (the console script's entry point) in-process: (code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m frameseek.cli ARGS`` in a real subprocess with this module's FRAMESEEK_HOME."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FRAMESEEK_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "frameseek.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def assert_one_line_error(code: int, out: str, err: str) -> str:
    assert code != 0
    assert "Traceback" not in err and "Traceback" not in out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert out.strip() == ""
    return lines[0]


def check_json(data: dict[str, object], top_k: int = 5) -> list[dict[str, object]]:
    assert {"source", "model", "query", "results", "metrics"} <= set(data)
    results = data["results"]
    assert isinstance(results, list) and 1 <= len(results) <= top_k
    for hit in results:
        assert set(hit) >= RESULT_KEYS
        assert TIMECODE.fullmatch(hit["timecode"])
        assert hit["start"] <= hit["time"] <= hit["end"]
        assert Path(hit["thumbnail"]).is_file()
    metrics = data["metrics"]
    assert isinstance(metrics, dict) and set(metrics) >= METRIC_KEYS
    return results


# ------------------------------------------------------------------------------------------ search


def test_search_prints_a_table(bikes: Path, model_arg: str) -> None:
    out, _ = invoke("search", str(bikes), "a cyclist wearing a helmet", "--top-k", "3", "--fps", "1",
                    "--model", model_arg)  # fmt: skip
    for column in ("time", "score", "segment", "video", "thumbnail"):
        assert column in out
    assert "a cyclist wearing a helmet" in out
    assert 1 <= len(TIMECODE.findall(out)) <= 3
    assert "bikes.mp4" in out
    assert re.search(r"frames \d+ · index (built|reused)", out)  # the metrics line
    assert not out.lstrip().startswith("{")


def test_search_json(bikes: Path, model_arg: str) -> None:
    invoke("search", str(bikes), "an index for the next query", "--json", "--model", model_arg)
    out, _ = invoke("search", str(bikes), "cars in a traffic jam", "--json", "--model", model_arg)
    data = json.loads(out)  # the whole of stdout is one JSON object
    results = check_json(data)
    assert data["source"] == str(bikes)
    assert data["query"] == "cars in a traffic jam"
    assert data["model"] == "lite"
    assert all(hit["video"] == str(bikes.resolve()) for hit in results)
    assert data["metrics"]["index_reused"] is True  # built by the first run
    assert data["metrics"]["frames_processed"] == 0


def test_a_search_that_finds_nothing_says_so_in_one_line_and_lists_the_closest_as_weak(
    bikes: Path, model_arg: str
) -> None:
    out, _ = invoke("search", str(bikes), "an elephant on the moon", "--model", model_arg)
    line = re.search(r"No moment in bikes\.mp4 matches 'an elephant on the moon' well; closest shown, "
                     r"confidence (\d\.\d\d)", out)  # fmt: skip
    assert line is not None, out
    assert "confidence" in out and re.search(r"\blow \d\.\d\d", out)  # the level and the number
    data = json.loads(
        invoke("search", str(bikes), "an elephant on the moon", "--json", "--model", model_arg)[0]
    )
    assert data["found"] is False and data["results"]  # the closest moments are still listed
    best = max(hit["confidence"] for hit in data["results"])
    assert best < api.FOUND_AT and line.group(1) == f"{best:.2f}"


def test_a_search_that_finds_says_nothing_of_the_kind_and_shows_each_confidence(
    bikes: Path, model_arg: str
) -> None:
    out, _ = invoke("search", str(bikes), "cars in a traffic jam", "--model", model_arg)
    assert "No moment" not in out and "confidence" in out
    data = json.loads(
        invoke("search", str(bikes), "cars in a traffic jam", "--json", "--model", model_arg)[0]
    )
    assert data["found"] is True
    confidences = [hit["confidence"] for hit in data["results"]]
    assert confidences == sorted(confidences, reverse=True) and confidences[0] >= api.FOUND_AT
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert f"{api.confidence_level(confidences[0])} {confidences[0]:.2f}" in out


def test_min_confidence_keeps_only_the_moments_that_reach_it(bikes: Path, model_arg: str) -> None:
    everything = json.loads(invoke("search", str(bikes), "a bike parked against a wall", "--json",
                                   "--model", model_arg)[0])  # fmt: skip
    confidences = sorted(hit["confidence"] for hit in everything["results"])
    assert len(confidences) >= 2
    cut = (confidences[0] + confidences[-1]) / 2
    kept = json.loads(invoke("search", str(bikes), "a bike parked against a wall", "--json",
                             "--min-confidence", str(cut), "--model", model_arg)[0])  # fmt: skip
    assert [h["confidence"] for h in kept["results"]] == [
        c for c in sorted(confidences, reverse=True) if c >= cut
    ]
    assert kept["found"] == everything["found"]


def test_count_prints_how_many_moments_match_and_lists_them(bikes: Path, model_arg: str) -> None:
    out, _ = invoke("search", str(bikes), "cars in a traffic jam", "--count", "--model", model_arg)
    data = json.loads(
        invoke("search", str(bikes), "cars in a traffic jam", "--count", "--json", "--model", model_arg)[0]
    )
    n = data["count"]
    assert n == sum(hit["confidence"] >= api.FOUND_AT for hit in data["results"]) >= 1
    moments = "1 moment" if n == 1 else f"{n} moments"
    assert f"{moments} in bikes.mp4 match" in out and "'cars in a traffic jam'" in out


def test_then_within_answers_a_sequence_in_json(bikes: Path, model_arg: str) -> None:
    data = json.loads(invoke("search", str(bikes), "cars in a traffic jam", "--then", "a bike locked to a railing",
                             "--within", "10", "--json", "--model", model_arg)[0])  # fmt: skip
    assert data["query"] == "cars in a traffic jam, then a bike locked to a railing (within 10 s)"
    assert isinstance(data["count"], int)
    for hit in data["results"]:
        assert hit["start"] <= hit["time"] <= hit["end"]


def test_search_with_an_image(bikes: Path, model_arg: str, tmp_path: Path) -> None:
    frame = frame_at(bikes, 4.0)
    picture = tmp_path / "query.png"  # lossless: the same pixels as the sampled frame
    Image.fromarray(frame.image).save(picture)
    out, _ = invoke("search", str(bikes), "--image", str(picture), "--json", "--model", model_arg)
    data = json.loads(out)
    check_json(data)
    assert data["query"] is None
    assert data["results"][0]["time"] == pytest.approx(4.0)
    out, _ = invoke("search", str(bikes), "a cyclist", "--image", str(picture), "--json",
                    "--model", model_arg)  # fmt: skip
    assert json.loads(out)["query"] == "a cyclist"


def test_an_image_query_over_the_pixel_limit_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], bikes: Path, model_arg: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    picture = tmp_path / "big.png"
    Image.new("RGB", (500, 400), "white").save(picture)
    monkeypatch.setenv("FRAMESEEK_MAX_PIXELS", "180000")  # bikes.mp4 is 640×272: the video still passes
    code, out, err = run_main(capsys, "search", str(bikes), "--image", str(picture), "--model", model_arg)
    line = assert_one_line_error(code, out, err)
    assert "big.png is too large (500×400; the limit is 180000 pixels)" in line and code == 2


def test_search_export(bikes: Path, model_arg: str, tmp_path: Path) -> None:
    folder = tmp_path / "hits"
    out, _ = invoke("search", str(bikes), "a cyclist wearing a helmet", "--top-k", "2", "--json",
                    "--export", str(folder), "--model", model_arg)  # fmt: skip
    data = json.loads(out)
    exports = data["exports"]
    assert len(exports) == len(data["results"]) >= 1
    for item, hit in zip(exports, data["results"], strict=True):
        with Image.open(item["frame"]) as image:
            assert image.format == "JPEG"
        info = probe(item["clip"])
        assert info.duration == pytest.approx(hit["end"] - hit["start"], abs=0.1)
        assert Path(item["clip"]).parent == folder


def test_search_json_in_a_subprocess(bikes: Path, model_arg: str) -> None:
    invoke("search", str(bikes), "warm up the index", "--model", model_arg)
    proc = run_process("search", str(bikes), "a cyclist wearing a helmet", "--top-k", "2", "--fps", "1",
                       "--json", "--model", model_arg)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    check_json(data, top_k=2)
    if model_arg == "lite":  # same model, same fingerprint: the index written in-process is reused
        assert data["metrics"]["index_reused"] is True
        assert data["metrics"]["frames_decoded"] == 0


# ------------------------------------------------------------------------------------------ library


def test_index_then_search_library(model_arg: str) -> None:
    clips = small_clips()
    out, _ = invoke("index", *map(str, clips), "--fps", "0.25", "--library-name", "trio", "--json",
                    "--model", model_arg)  # fmt: skip
    data = json.loads(out)
    assert data["library"] == "trio"
    assert [Path(v["video"]) for v in data["videos"]] == [c.resolve() for c in clips]
    assert all(v["frames"] > 0 and Path(v["index"]).is_dir() for v in data["videos"])

    out, _ = invoke("index", *map(str, clips), "--fps", "0.25", "--library-name", "trio",
                    "--model", model_arg)  # fmt: skip
    assert "index reused" in out and all(c.stem in out for c in clips)  # table; nothing rebuilt

    out, _ = invoke("search", "--library", "a person talking", "--library-name", "trio", "--top-k", "8",
                    "--json", "--model", model_arg)  # fmt: skip
    data = json.loads(out)
    results = check_json(data, top_k=8)
    assert data["source"] == "library:trio"
    assert {hit["video"] for hit in results} <= {str(c.resolve()) for c in clips}
    assert len({hit["video"] for hit in results}) >= 2


def test_frame_limit_gives_a_notice_and_a_larger_limit_rebuilds(
    model_arg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = small_clips()[0]
    monkeypatch.setenv("FRAMESEEK_MAX_FRAMES", "2")
    out, err = invoke("index", str(clip), "--fps", "0.5", "--library-name", "capped", "--model", model_arg)
    notice = rf"note: {re.escape(clip.stem)}: only the first 2 sampled frames \(up to 00:00:02\.\d{{3}}\) are indexed"
    assert re.search(notice, err), err
    out, _ = invoke("index", str(clip), "--fps", "0.5", "--library-name", "capped", "--json",
                    "--model", model_arg)  # fmt: skip
    data = json.loads(out)
    assert data["videos"][0]["frames"] == 2 and data["metrics"]["index_reused"] is True
    assert len(data["notices"]) == 1

    monkeypatch.delenv("FRAMESEEK_MAX_FRAMES")  # the default limit would sample more: rebuilt, no notice
    out, _ = invoke("index", str(clip), "--fps", "0.5", "--library-name", "capped", "--json",
                    "--model", model_arg)  # fmt: skip
    data = json.loads(out)
    assert data["videos"][0]["frames"] > 2 and data["metrics"]["index_reused"] is False
    assert data["notices"] == []


# ------------------------------------------------------------------------------------------ models


def test_models_lists_the_presets() -> None:
    out, _ = invoke("models", "--json")
    names = [row["name"] for row in json.loads(out)]
    assert names == ["lite", "resnet50-distilbert", "clip-vit-b32", "siglip2-base"]
    out, _ = invoke("models")
    assert all(name in out for name in names)


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["search", "{missing}", "a dog"], "no such file"),
        (["search", "{bikes}", ""], "query is empty"),
        (["search", "{bikes}", "   "], "query is empty"),
        (["search", "{bikes}", "a dog", "--top-k", "0"], "top-k"),
        (["search", "{bikes}", "a dog", "--min-confidence", "1.5"], "min-confidence must be between 0 and 1"),
        (["search", "{bikes}", "a dog", "--min-confidence", "-0.1"], "min-confidence"),
        (["search", "{bikes}", "a dog", "--model", "no-such-model"], "unknown model"),
        (["search", "{bikes}", "a dog", "--fps", "0"], "fps"),
        (["search", "{bikes}", "--image", "{missing}"], "missing.mp4: no such file"),
        (["search", "{bikes}"], "give a text QUERY"),
        (["search", "--library", "a dog", "--library-name", "nothing-here"], "no videos"),
        (["search", "--library", "a dog", "--library-name", "../up"], "library name"),
        (["search", "{bikes}", "a dog", "--within", "5"], "--within needs a next step"),
        (["search", "{bikes}", "a dog", "--then", "a cat", "--within", "-2"], "--within must be"),
        (["search", "{bikes}", "a dog", "--then", "a cat", "--within", "nan"], "--within must be"),
        (["search", "{bikes}", "a dog", "--first", "--last"], "--first and --last"),
        (["search", "{bikes}", "a dog", "--count", "--first"], "--count lists every"),
        (["search", "{bikes}", "a dog", "--then", "a cat", "--while", "a bird"], "--while goes with one"),
        (["search", "{bikes}", "a dog", "--min-duration", "0"], "--min-duration must be"),
        (["search", "--library", "a dog", "--count"], "leave out --library"),
    ],
)
def test_bad_input_is_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str],
    bikes: Path,
    tmp_path: Path,
    model_arg: str,
    args: list[str],
    needle: str,
) -> None:
    missing = tmp_path / "missing.mp4"
    argv = [a.format(missing=missing, bikes=bikes) for a in args]
    if "--model" not in argv:
        argv += ["--model", model_arg]
    code, out, err = run_main(capsys, *argv)
    line = assert_one_line_error(code, out, err)
    assert needle.lower() in line.lower()


def test_errors_in_a_subprocess(bikes: Path, tmp_path: Path) -> None:
    proc = run_process("search", str(bikes), "a dog", "--model", "no-such-model")
    line = assert_one_line_error(proc.returncode, proc.stdout, proc.stderr)
    assert "unknown model" in line
    proc = run_process("search", str(tmp_path / "missing.mp4"), "a dog")
    line = assert_one_line_error(proc.returncode, proc.stdout, proc.stderr)
    assert "missing.mp4" in line


def test_an_unexpected_error_is_one_line_naming_its_type(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> list[dict[str, Any]]:
        raise RuntimeError("the preset table\nis broken")

    monkeypatch.setattr(api, "describe_presets", broken)
    code, out, err = run_main(capsys, "models")
    line = assert_one_line_error(code, out, err)
    assert (
        line
        == "error: unexpected RuntimeError: the preset table is broken (set FRAMESEEK_DEBUG=1 for the traceback)"
    )
    assert code == 1


def test_main_exits_zero_on_success(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "version")
    assert code == 0 and out.strip() and "error" not in err


# ------------------------------------------------------------------------------------------ shape


def test_help_imports_no_torch() -> None:
    script = (
        "import sys\n"
        "from frameseek.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "search" in done.stdout and done.stdout.strip().splitlines()[-1] == "False"


def imports_of(path: Path) -> set[str]:
    """The project modules (and ``module.name`` pairs) a file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("frameseek")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("frameseek"):
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_the_command_line_imports_only_the_public_api() -> None:
    """Each command module uses ``frameseek.api``, its own package and the other doors' launchers; only
    ``cli/lab.py`` (train, eval) and ``cli/languages.py`` (fit-multilingual) reach into the lab."""
    allowed = (
        "frameseek.api",
        "frameseek.cli.",
        "frameseek.service.command.",
        "frameseek.mcp_server.command.",
        "frameseek.app.",
    )
    lab_commands = {"lab", "languages"}
    paths = sorted(CLI_SOURCE.glob("*.py"))
    assert {p.stem for p in paths} >= {"main", "options", "output", "search", "index", "lab", "library"}
    bad = {
        p.name: sorted(
            name
            for name in imports_of(p)
            if not name.startswith(allowed)
            and not (p.stem in lab_commands and name.startswith("frameseek.lab."))
        )
        for p in paths
    }
    assert not {name: found for name, found in bad.items() if found}, bad
    assert imports_of(CLI_SOURCE / "search.py") >= {"frameseek.api"}  # the rule above really saw imports


def test_every_command_module_is_short_and_says_its_job() -> None:
    for path in CLI_SOURCE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert text.count("\n") < 300, path.name
        assert ast.get_docstring(ast.parse(text)), path.name


def test_the_options_default_model_is_the_apis() -> None:
    assert options.DEFAULT_MODEL == api.DEFAULT_MODEL
