"""Importers on the real shared NEU / MVTec pill sets, on generated class folders, and through the CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from inspection.cli.data_cmds import data_app
from inspection.core.errors import ManifestError
from inspection.data.importers import import_folder, import_mvtec, import_neu
from inspection.data.importers.neu import NEU_CLASSES
from inspection.data.manifest import Manifest, load_manifest, manifest_hash

PILL_DEFECTS = ["color", "combined", "contamination", "crack", "faulty_imprint", "pill_type", "scratch"]
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="session")
def neu(neu_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """NEU imported once per session (copies 1,800 small JPEGs)."""
    return import_neu(neu_dir, tmp_path_factory.mktemp("neu"))


@pytest.fixture(scope="session")
def pill(pill_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """MVTec pill imported once per session."""
    return import_mvtec(pill_dir, tmp_path_factory.mktemp("pill"))


def _out(m: Manifest) -> Path:
    return m.image_root.parent  # copy=True: <out_dir>/images


# --- NEU -------------------------------------------------------------------------------------------------------


def test_neu_classes_and_counts(neu: Manifest) -> None:
    assert len(neu.rows) == 1800 and neu.classes == NEU_CLASSES and neu.task == "multiclass"
    # 300 each, incl. the hyphenated rolled-in_scale whose name also contains "_".
    assert Counter(neu.rows["label"]) == dict.fromkeys(NEU_CLASSES, 300)


def test_neu_multi_defect(neu: Manifest) -> None:
    multi = neu.rows[neu.rows["meta_multi_defect"] == "1"]
    assert len(multi) == 123 and neu.info["multi_defect_images"] == 123
    assert all("|" in c for c in multi["meta_box_classes"])
    for boxes, classes in zip(neu.rows["meta_boxes"], neu.rows["meta_box_classes"], strict=True):
        parsed = json.loads(boxes)
        assert parsed and all(
            len(b) == 5 and 0 <= b[1] < b[3] <= 200 and 0 <= b[2] < b[4] <= 200 for b in parsed
        )
        assert classes == "|".join(sorted({b[0] for b in parsed}))


def test_neu_duplicate_pair_shares_split(neu: Manifest) -> None:
    pair = neu.rows.set_index("path").loc[["patches_101.jpg", "patches_105.jpg"]]
    assert pair["sha256"].nunique() == 1 and pair["split"].nunique() == 1
    assert neu.info["duplicates"] == [["patches_101.jpg", "patches_105.jpg"]]


def test_neu_split_proportions(neu: Manifest) -> None:
    counts = Counter(zip(neu.rows["label"], neu.rows["split"], strict=True))
    for cls in NEU_CLASSES:
        for split, n in zip(SPLITS, (180, 60, 60), strict=True):
            assert abs(counts[cls, split] - n) <= 1, (cls, split, counts[cls, split])


def test_neu_copy_is_self_contained_and_deterministic(neu: Manifest, neu_dir: Path, tmp_path: Path) -> None:
    out = _out(neu)
    assert all((out / "images" / p).is_file() for p in neu.rows["path"])
    assert manifest_hash(load_manifest(out / "manifest.csv")) == manifest_hash(neu)
    # Same inputs + seed → the same bytes; paths do not depend on copying, so a referenced import matches too.
    ref = import_neu(neu_dir, tmp_path / "ref", copy=False)
    assert (tmp_path / "ref" / "manifest.csv").read_bytes() == (out / "manifest.csv").read_bytes()
    assert ref.image_root == (neu_dir / "IMAGES").resolve() and not (tmp_path / "ref" / "images").exists()
    assert load_manifest(tmp_path / "ref" / "manifest.csv").image_root.resolve() == ref.image_root


def _fake_neu(root: Path) -> None:
    """A tiny NEU layout: 3 images per class, annotations for some."""
    (root / "IMAGES").mkdir(parents=True)
    (root / "ANNOTATIONS").mkdir()
    rng = np.random.default_rng(0)
    for cls in NEU_CLASSES:
        for i in range(1, 4):
            cv2.imwrite(str(root / "IMAGES" / f"{cls}_{i}.jpg"), rng.integers(0, 255, (20, 20), np.uint8))
    objs = "".join(
        f"<object><name> {n} </name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10.0</xmax><ymax>12</ymax></bndbox></object>"
        for n in ("inclusion", "scratches", "inclusion")
    )
    (root / "ANNOTATIONS" / "inclusion_1.xml").write_text(f"<annotation>{objs}</annotation>")


def test_neu_missing_xml_and_bad_images(tmp_path: Path) -> None:
    src = tmp_path / "neu"
    _fake_neu(src)
    m = import_neu(src, tmp_path / "out")
    row = m.rows.set_index("path")
    assert row.at["inclusion_1.jpg", "meta_box_classes"] == "inclusion|scratches"
    assert row.at["inclusion_1.jpg", "meta_multi_defect"] == "1"
    assert json.loads(row.at["inclusion_1.jpg", "meta_boxes"])[0] == ["inclusion", 1, 2, 10, 12]
    no_xml = row.loc["crazing_1.jpg", ["meta_boxes", "meta_box_classes", "meta_multi_defect"]]
    assert no_xml.tolist() == ["", "", ""]

    (src / "IMAGES" / "scratches_3.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ManifestError, match=r"(?s)1 unreadable image.*scratches_3\.jpg: truncated JPEG"):
        import_neu(src, tmp_path / "out2")
    m = import_neu(src, tmp_path / "out3", skip_bad=True)
    assert m.info["skipped"] == [
        {"path": "scratches_3.jpg", "reason": "truncated JPEG (no end-of-image marker)"}
    ]
    assert "scratches_3.jpg" not in set(m.rows["path"])
    assert not (tmp_path / "out3" / "images" / "scratches_3.jpg").exists()

    cv2.imwrite(str(src / "IMAGES" / "rust_1.jpg"), np.zeros((4, 4), np.uint8))
    with pytest.raises(ManifestError, match="rust_1.jpg"):
        import_neu(src, tmp_path / "out4", skip_bad=True)


# --- MVTec pill ------------------------------------------------------------------------------------------------


def test_pill_classes(pill: Manifest) -> None:
    assert pill.classes == ["good", *PILL_DEFECTS] and pill.ok_classes == ["good"] and pill.task == "okng"
    assert len(pill.rows) == 267 + 26 + 141
    src_split = Counter(zip(pill.rows["meta_source_split"], pill.rows["label"], strict=True))
    assert src_split["train", "good"] == 267 and src_split["test", "good"] == 26


def test_pill_every_defect_in_every_split(pill: Manifest) -> None:
    present = set(zip(pill.rows["label"], pill.rows["split"], strict=True))
    missing = [(c, s) for c in pill.classes for s in SPLITS if (c, s) not in present]
    assert not missing


def test_pill_lookalikes_are_told_apart(pill: Manifest) -> None:
    """Good pills in one pose link on the coarse hash; the fine grid keeps only the one tablet shot twice (by eye)."""
    from inspection.data.leak_check import leak_check

    near = pill.info["near_duplicates"]
    assert near["lookalike_images"] == 0 and near["clusters"] == [["test/pill_type/002.jpg", "test/pill_type/004.jpg"]]
    assert leak_check(pill).near_duplicates_of_test == 0


def test_pill_masks_copied(pill: Manifest) -> None:
    out = _out(pill)
    good = pill.rows["label"] == "good"
    assert (pill.rows.loc[good, "meta_mask"] == "").all()
    for path, label, mask in pill.rows.loc[~good, ["path", "label", "meta_mask"]].itertuples(index=False):
        assert mask == f"masks/{label}/{Path(path).stem}_mask.png"
        assert (out / mask).is_file()
    assert len(list((out / "masks").rglob("*.png"))) == 141
    assert all((out / "images" / p).is_file() for p in pill.rows["path"])
    load_manifest(out / "manifest.csv")


# --- class folders ---------------------------------------------------------------------------------------------


def _fake_folders(root: Path) -> None:
    """ok/ (5, one nested, one .PNG), dent/ (4), scratch/ (4): distinct tiny images."""
    n = 0
    for cls, count in (("ok", 5), ("dent", 4), ("scratch", 4)):
        for i in range(count):
            sub = root / cls / ("line2" if cls == "ok" and i == 0 else "")
            sub.mkdir(parents=True, exist_ok=True)
            ext = ".PNG" if cls == "ok" and i == 1 else ".png"
            cv2.imwrite(str(sub / f"{i}{ext}"), np.full((6, 6), n * 7, np.uint8))
            n += 1


def test_folder_with_labelers(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _fake_folders(src)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,alice,bob,\nok/line2/0.png,ok,dent,\n./dent/0.png,dent,,\nscratch/1.png,,scratch,\n")
    m = import_folder(src, tmp_path / "out", ok_classes=["ok"], labels_csv=csv)
    assert m.classes == ["dent", "ok", "scratch"] and m.task == "okng" and len(m.rows) == 13
    assert "ok/1.PNG" in set(m.rows["path"])
    rows = m.rows.set_index("path")
    assert rows.loc["ok/line2/0.png", ["labeler_alice", "labeler_bob"]].tolist() == ["ok", "dent"]
    assert rows.loc["dent/0.png", ["labeler_alice", "labeler_bob"]].tolist() == ["dent", ""]
    assert rows.loc["dent/1.png", ["labeler_alice", "labeler_bob"]].tolist() == ["", ""]  # not in the CSV
    back = load_manifest(tmp_path / "out" / "manifest.csv")
    assert set(back.labeler_columns()) == {"labeler_alice", "labeler_bob"}
    again = import_folder(src, tmp_path / "again", ok_classes=["ok"], labels_csv=csv, copy=False)
    assert again.image_root == src.resolve()
    # Deterministic, and independent of copying: the same manifest.csv bytes.
    csv_bytes = (tmp_path / "out" / "manifest.csv").read_bytes()
    assert (tmp_path / "again" / "manifest.csv").read_bytes() == csv_bytes


def test_folder_labels_csv_errors_name_rows(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _fake_folders(src)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,alice,bob\nok/2.png,ok,ok\ndent/9.png,dent,\nscratch/1.png,,rust\nok/2.png,ok,\n")
    with pytest.raises(ManifestError) as e:
        import_folder(src, tmp_path / "out", labels_csv=csv)
    msg = str(e.value)
    assert "row 3: 'dent/9.png' is not an image" in msg
    assert "row 4: labeler 'bob' gives unknown label 'rust'" in msg
    assert "row 5: duplicate path 'ok/2.png'" in msg
    csv.write_text("file,alice\nok/2.png,ok\n")
    with pytest.raises(ManifestError, match="needs a 'path' column"):
        import_folder(src, tmp_path / "out", labels_csv=csv)


def test_folder_other_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _fake_folders(src)
    with pytest.raises(ManifestError, match=r"OK class\(es\) \['good'\] are not among the classes found"):
        import_folder(src, tmp_path / "out", ok_classes=["good"])
    assert not (tmp_path / "out").exists()  # checked before any copy: no image folder without a manifest
    with pytest.raises(ManifestError, match="outside the source folder"):
        import_folder(src, src / "out")
    with pytest.raises(ManifestError, match="source folder not found"):
        import_folder(tmp_path / "nope", tmp_path / "out")
    (src / "crack").mkdir()
    with pytest.raises(ManifestError, match=r"class folders without images: \['crack'\]"):
        import_folder(src, tmp_path / "out")
    (src / "crack").rmdir()
    (src / "dent" / "bad.png").write_bytes(b"")
    with pytest.raises(ManifestError, match=r"dent/bad\.png: empty file"):
        import_folder(src, tmp_path / "out")
    assert import_folder(src, tmp_path / "out", skip_bad=True).info["skipped"][0]["path"] == "dent/bad.png"


# --- CLI -------------------------------------------------------------------------------------------------------


def test_cli_import_and_validate(pill_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        data_app, ["import", "mvtec", str(pill_dir), "--out", str(tmp_path / "pill"), "--seed", "1"]
    )
    assert res.exit_code == 0, res.output
    assert "434 images" in res.stdout and "pill_type" in res.stdout and "total" in res.stdout
    assert (tmp_path / "pill" / "images").is_dir() and (tmp_path / "pill" / "masks").is_dir()
    res = runner.invoke(data_app, ["validate", str(tmp_path / "pill" / "manifest.csv")])
    assert res.exit_code == 0 and "OK" in res.stdout


def test_cli_binary_mvtec_keeps_the_per_type_split(pill: Manifest, pill_dir: Path, tmp_path: Path) -> None:
    """--binary: good / defect on exactly the per-type import's split; the type survives in meta_defect_type."""
    from inspection.data.manifest import load_manifest

    res = CliRunner().invoke(data_app, ["import", "mvtec", str(pill_dir), "--out", str(tmp_path / "b"),
                                        "--no-copy", "--binary"])
    assert res.exit_code == 0, res.output
    b = load_manifest(tmp_path / "b" / "manifest.csv")
    assert b.classes == ["good", "defect"] and b.ok_classes == ["good"] and b.task == "okng"
    typed = pill.rows.set_index("path")
    rows = b.rows.set_index("path").loc[typed.index]
    assert (rows["split"] == typed["split"]).all()
    good = typed["label"] == "good"
    assert (rows.loc[good, "label"] == "good").all() and (rows.loc[~good, "label"] == "defect").all()
    assert (rows.loc[~good, "meta_defect_type"] == typed.loc[~good, "label"]).all()
    res = CliRunner().invoke(data_app, ["import", "neu", str(pill_dir), "--out", str(tmp_path / "n"), "--binary"])
    assert res.exit_code == 2 and "--binary applies to 'mvtec'" in res.stderr


def test_cli_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(data_app, ["import", "folder", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "source folder not found" in res.stderr and "Traceback" not in res.output
    res = runner.invoke(
        data_app, ["import", "neu", str(tmp_path), "--out", str(tmp_path / "o"), "--ok-class", "x"]
    )
    assert res.exit_code == 2 and "folder" in res.stderr
    res = runner.invoke(data_app, ["validate", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and "manifest not found" in res.stderr


def test_cli_synth(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        data_app, ["synth", "steel", "--out", str(tmp_path), "--n-per-class", "3", "--size", "16"]
    )
    assert res.exit_code == 0, res.output
    assert load_manifest(tmp_path / "manifest.csv").rows.shape[0] == 18

