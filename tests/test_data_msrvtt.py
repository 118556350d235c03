"""Tests for frameseek.lab.data.msrvtt: the official annotation JSON (real and tiny) and the JSFUSION CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frameseek.errors import InputError
from frameseek.lab.data.msrvtt import VideoCaptions, load_msrvtt, load_msrvtt_jsfusion

REAL_MSRVTT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "msrvtt"


@pytest.mark.skipif(not REAL_MSRVTT.is_dir(), reason="shared MSR-VTT data not available")
def test_real_msrvtt_annotations() -> None:
    """The shared copy: 21 train clips on disk, 20 captions each, in annotation order."""
    annotations = REAL_MSRVTT / "train_val_videodatainfo.json"
    clips = load_msrvtt(annotations, REAL_MSRVTT / "videos", "train")
    assert len(clips) == 21
    assert all(len(clip.captions) == 20 for clip in clips)
    assert all(clip.path.is_file() and clip.path.stem == clip.video_id for clip in clips)
    assert {clip.split for clip in clips} == {"train"}
    order = [v["video_id"] for v in json.loads(annotations.read_text())["videos"]]
    assert [clip.video_id for clip in clips] == order
    assert "a man is driving a car" in clips[0].captions  # whitespace runs collapsed ("a  man")
    assert load_msrvtt(annotations, REAL_MSRVTT / "videos", None) == clips
    assert load_msrvtt(annotations, REAL_MSRVTT / "videos", "all") == clips
    with pytest.raises(InputError, match="no clips with split 'validate'"):
        load_msrvtt(annotations, REAL_MSRVTT / "videos", "val")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """Three annotated clips (train, validate, test); video3 has no file, video2 is a .webm."""
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "video1.mp4").write_bytes(b"")
    (videos / "video2.webm").write_bytes(b"")
    (videos / "notes.txt").write_text("not a video")
    data = {
        "videos": [
            {"video_id": "video1", "split": "train"},
            {"video_id": "video2", "split": "validate"},
            {"video_id": "video3", "split": "test"},
        ],
        "sentences": [
            {"caption": "a cat plays", "video_id": "video1", "sen_id": 0},
            {"caption": "a dog barks", "video_id": "video2", "sen_id": 1},
            {"caption": "a cat  sleeps ", "video_id": "video1", "sen_id": 2},
            {"caption": "a car", "video_id": "video3", "sen_id": 3},
        ],
    }
    (tmp_path / "videodatainfo.json").write_text(json.dumps(data))
    return tmp_path


def test_tiny_msrvtt_splits_and_missing_files(tiny: Path) -> None:
    """Split filtering (val alias), caption grouping and skipping clips without a video file."""
    annotations, videos = tiny / "videodatainfo.json", tiny / "videos"
    assert load_msrvtt(annotations, videos, "train") == [
        VideoCaptions("video1", videos / "video1.mp4", ["a cat plays", "a cat sleeps"], "train")
    ]
    assert [c.path.name for c in load_msrvtt(annotations, videos, "val")] == ["video2.webm"]
    assert [c.video_id for c in load_msrvtt(annotations, videos, "all")] == ["video1", "video2"]
    with pytest.raises(InputError, match="none of the 1 test clips"):
        load_msrvtt(annotations, videos, "test")
    with pytest.raises(InputError, match="unknown MSR-VTT split"):
        load_msrvtt(annotations, videos, "holdout")
    with pytest.raises(InputError, match="video folder not found"):
        load_msrvtt(annotations, tiny / "nope", "train")


def test_msrvtt_bad_annotation_file(tmp_path: Path) -> None:
    """Non-JSON or wrong-shape files are InputErrors."""
    (tmp_path / "v").mkdir()
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_msrvtt(tmp_path / "a.json", tmp_path / "v", None)
    (tmp_path / "b.json").write_text('{"images": []}')
    with pytest.raises(InputError, match="not an MSR-VTT annotation file"):
        load_msrvtt(tmp_path / "b.json", tmp_path / "v", None)


def test_jsfusion_csv(tmp_path: Path) -> None:
    """1k-A format: one caption per video, split 'test', rows whose clip is missing are skipped."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("video7020.mp4", "video9770.mp4"):
        (videos / name).write_bytes(b"")
    csv_path = tmp_path / "MSRVTT_JSFUSION_test.csv"
    csv_path.write_text(
        "key,vid_key,video_id,sentence\n"
        "ret0,msr9770,video9770,a person is connecting something to system\n"
        'ret1,msr7020,video7020,"a little girl does gymnastics, then bows"\n'
        "ret2,msr9999,video9999,missing clip\n"
    )
    assert load_msrvtt_jsfusion(csv_path, videos) == [
        VideoCaptions(
            "video9770", videos / "video9770.mp4", ["a person is connecting something to system"], "test"
        ),
        VideoCaptions(
            "video7020", videos / "video7020.mp4", ["a little girl does gymnastics, then bows"], "test"
        ),
    ]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a JSFUSION file"):
        load_msrvtt_jsfusion(tmp_path / "bad.csv", videos)
