"""Preference data: Pick-a-Pic v2 and generic schemas, ties, corrupt rows counted with their index, the cache."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from mmpref.data.dataset import EpochSampler, PreferenceDataset, collate
from mmpref.data.images import image_problem, paired_crop_flip
from mmpref.data.scan import scan
from mmpref.data.schema import detect_schema
from mmpref.data.sources import open_source
from mmpref.errors import DataError
from mmpref.testing.data import pickapic_rows, write_pairs_folder, write_pickapic_parquet


def scan_file(path, ties="drop", max_bad=0.5, schema="auto"):
    source = open_source(str(path))
    name = detect_schema(source.dataset.column_names, schema, str(path))
    report = scan(source.dataset, name, source=str(path), base_dir=source.base_dir, ties=ties,
                  check_media=image_problem, max_bad_fraction=max_bad)
    return source, report


def first_pixels(media):
    """Decode like the adapter, without augmentation: the [G, 3, R, R] pixels of a row."""
    import random

    images = [Image.open(io.BytesIO(m)).convert("RGB") for m in media]
    return paired_crop_flip(images, 32, random.Random(0), random_flip=False)[0]


def test_pickapic_winner_first_ties_and_corrupt_rows_counted(tmp_path):
    corrupt = ("undecodable", "missing_caption", "bad_label", "empty_image")
    path = write_pickapic_parquet(tmp_path / "p.parquet", n=6, ties=2, corrupt=corrupt)
    rows = pickapic_rows(6, ties=2, corrupt=corrupt)
    source, report = scan_file(path)
    assert report.schema == "pickapic" and report.total == 12
    assert report.rows == list(range(6)) and report.ties == 2 and not report.ties_kept
    assert report.swap == [False, True] * 3  # label_0 == 0 puts jpg_1 first
    bad = dict(report.bad)
    assert sorted(bad) == [8, 9, 10, 11]
    assert "jpg_1: cannot decode image" in bad[8]
    assert bad[9] == "missing caption"
    assert "bad label_0 0.3" in bad[10]
    assert bad[11] == "jpg_0: cannot decode image (image bytes are empty)" or "jpg_0" in bad[11]
    summary = report.summary()
    assert "12 rows (pickapic) -> 6 pairs used" in summary and "2 ties dropped" in summary
    assert "4 bad rows skipped (33.3%)" in summary and "row 8: jpg_1" in summary
    assert report.to_json()["bad"][0] == {"row": 8, "reason": bad[8]}

    # The dataset yields the winner first: row 1 has label_0 = 0, so its chosen image is jpg_1.
    ds = PreferenceDataset(source.dataset, report, None, lambda media, rng: {"pixel_values": first_pixels(
        [m["bytes"] if isinstance(m, dict) else m for m in media])}, seed=0)
    item = ds[1]
    expected = first_pixels([rows[1]["jpg_1"], rows[1]["jpg_0"]])
    torch.testing.assert_close(item["pixel_values"], expected)
    assert item["row"].item() == 1 and item["desirable"].tolist() == [True, False]
    batch = collate([ds[0], ds[1]])
    assert batch["pixel_values"].shape == (2, 2, 3, 32, 32) and batch["prompt"] == ["a picture number 0", "a picture number 1"]


def test_ties_kept_as_soft_targets(tmp_path):
    path = write_pickapic_parquet(tmp_path / "p.parquet", n=4, ties=2)
    _, report = scan_file(path, ties="soft")
    assert report.used == 6 and report.ties == 2 and report.ties_kept
    assert report.target == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    assert "2 ties kept as soft targets 0.5" in report.summary()


def test_too_many_bad_rows_stop_with_one_clear_line(tmp_path):
    path = write_pickapic_parquet(tmp_path / "p.parquet", n=4, corrupt=("undecodable", "bad_label"))
    with pytest.raises(DataError) as err:
        scan_file(path, max_bad=0.1)
    message = str(err.value)
    assert "2 of 6 rows (33.3%) cannot be used" in message and "data.max_bad_fraction=0.1" in message
    assert "row 4: jpg_1" in message and "\n" not in message


def test_generic_pairs_folder_with_relative_paths(tmp_path):
    folder = write_pairs_folder(tmp_path / "pairs", n=3)
    (folder / "images" / "001_rejected.png").write_bytes(b"broken")
    source, report = scan_file(folder)
    assert report.schema == "pairs" and report.rows == [0, 2] and report.bad[0][0] == 1
    assert "rejected: cannot decode image" in report.bad[0][1]
    assert source.base_dir == folder


def test_schema_errors_name_the_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "a", "img": b"x"}]), path)
    with pytest.raises(DataError, match="cannot tell the schema from columns text, img"):
        scan_file(path)
    with pytest.raises(DataError, match="schema 'pickapic' needs columns caption, jpg_0, jpg_1, label_0"):
        scan_file(path, schema="pickapic")
    with pytest.raises(DataError, match="no such file"):
        open_source(str(tmp_path / "missing.parquet"))


def test_sampler_order_depends_only_on_seed_and_epoch():
    a, b = EpochSampler(10, seed=3), EpochSampler(10, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    first = list(a)
    assert first == list(b) and sorted(first) == list(range(20, 30))
    a.set_epoch(3)
    assert [i - 30 for i in a] != [i - 20 for i in first]


def test_encoded_cache_is_written_once_and_reused(tmp_path):
    from accelerate import Accelerator

    from mmpref.adapters.text_to_image import TextToImageAdapter, TextToImageParams
    from mmpref.data.cache import build_or_load, data_identity
    from mmpref.testing.tiny import build_tiny_sd

    pipe = build_tiny_sd(tmp_path / "sd", "sdxl")
    adapter = TextToImageAdapter(TextToImageParams(pretrained=str(pipe), resolution=32))
    adapter.load(torch.device("cpu"), torch.float32)
    path = write_pickapic_parquet(tmp_path / "p.parquet", n=5)
    source, report = scan_file(path)
    ds = PreferenceDataset(source.dataset, report, None, adapter.media_transform(), seed=0)
    identity = {"model": adapter.cache_identity(), "data": data_identity(ds)}
    acc = Accelerator(cpu=True)
    cache, folder, built = build_or_load(adapter, ds, tmp_path / "cache", identity, acc, dtype="float32", batch_size=2)
    assert built and len(cache) == 5 and (folder / "manifest.json").exists()
    again, folder2, built2 = build_or_load(adapter, ds, tmp_path / "cache", identity, acc, dtype="float32", batch_size=2)
    assert folder2 == folder and not built2
    row = again.with_format("torch")[3]
    assert row["latents"].shape == (2, 4, 16, 16) and row["prompt_embeds"].shape[-1] == 32
    # The cached text conditioning is what the adapter computes for that prompt.
    direct = adapter.encode_prompts([row["prompt"]])
    torch.testing.assert_close(row["prompt_embeds"], direct["prompt_embeds"][0])
    torch.testing.assert_close(row["time_ids"], ds[3]["time_ids"])
    # A different resolution is a different cache.
    other = {"model": {**adapter.cache_identity(), "resolution": 64}, "data": data_identity(ds)}
    assert build_or_load(adapter, ds, tmp_path / "cache", other, acc, dtype="float32", batch_size=2)[1] != folder
    assert np.isfinite(row["latents"].numpy()).all()


def test_arrow_save_to_disk_imagefolder_and_datasets_name_sources(tmp_path):
    """Generic pairs as image bytes (datasets Image feature) in every local form, and a one-image imagefolder."""
    import json
    import shutil

    import datasets

    from mmpref.testing.data import jpeg_bytes

    rng = np.random.default_rng(0)
    image = datasets.Image()
    rows = [{"prompt": f"p{i}", "chosen": {"bytes": jpeg_bytes(rng), "path": None},
             "rejected": {"bytes": jpeg_bytes(rng) if i != 2 else b"junk", "path": None}} for i in range(4)]
    features = datasets.Features({"prompt": datasets.Value("string"), "chosen": image, "rejected": image})
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(tmp_path / "saved"))
    shutil.copytree(tmp_path / "saved", tmp_path / "arrows", ignore=shutil.ignore_patterns("*.json"))
    for source in (tmp_path / "saved", tmp_path / "saved" / "data-00000-of-00001.arrow", tmp_path / "arrows",
                   tmp_path / "arrows"):  # twice: the scan's own cache-*.arrow in that folder is not data
        opened, report = scan_file(source)
        assert report.schema == "pairs" and report.rows == [0, 1, 3], source
        assert report.bad == [(2, "rejected: cannot decode image (not a recognised image format)")]
        assert isinstance(opened.dataset[0]["chosen"], dict), "Image columns reach the scan undecoded"
    assert any(p.name.startswith("cache-") for p in (tmp_path / "arrows").iterdir())

    folder = tmp_path / "imagefolder"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "metadata.jsonl").write_text("\n".join(
        json.dumps({"file_name": f"{i}.png", "prompt": f"q{i}", "label": i % 2}) for i in range(3)))
    (folder / "2.png").write_bytes(b"broken")
    _, report = scan_file(folder)
    assert report.schema == "single" and report.rows == [0, 1] and report.target == [0.0, 1.0]
    assert report.bad[0][0] == 2 and "image: cannot decode image" in report.bad[0][1]

    with pytest.raises(DataError) as err:  # a datasets name; offline here, so it fails with one clear line
        open_source("nobody/no-such-dataset", split="train")
    assert "loading it as a datasets name failed" in str(err.value) and "\n" not in str(err.value)
