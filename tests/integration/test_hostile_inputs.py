"""`inspect` on a plant's hostile folders (issue 15): every file gets exactly one row or a named warning, nothing
hangs, a bad run setup ends in `error:` + exit 2, and interrupted or failed runs resume to one row per file.

The hostile corpus is made by each test (no binaries in git); the model is the torch-free tiny ONNX graph."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_onnx import write_images, write_tiny_onnx

from inspection.edge import cli as edge_cli
from inspection.edge.writers import read_rows

LATIN1 = os.fsdecode(b"caf\xe9.png")  # a Latin-1 name: not valid UTF-8


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_onnx(tmp_path_factory.mktemp("tiny") / "model.onnx")


def _inspect(model: Path, *args: str | Path) -> int:
    """`python -m inspection.edge` in this process; its exit status."""
    try:
        return edge_cli.main([str(model), *map(str, args), "--quiet", "--device", "cpu"])
    except SystemExit as e:
        return int(e.code or 0)


def _edge_subprocess(model: Path, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspection.edge", str(model), *map(str, args), "--quiet",
                           "--device", "cpu"], capture_output=True, text=True, timeout=timeout)


def _csv_rows(out: Path) -> list[dict]:
    with open(out, encoding="utf-8", newline="") as f:  # strict UTF-8: a spreadsheet must open it
        return list(csv.DictReader(f))


def test_non_utf8_name_gets_a_row_and_resume_finishes(model, tmp_path, capsys):
    """A Latin-1 name used to stop the run with UnicodeEncodeError, and every --resume at the same place."""
    imgs = tmp_path / "imgs"
    good = write_images(imgs, 4)
    (imgs / LATIN1).write_bytes(good[0].read_bytes())
    out, out_jsonl = tmp_path / "r.csv", tmp_path / "r.jsonl"
    assert _inspect(model, imgs, "--out", out, "--batch-size", "2") == 0
    rows = _csv_rows(out)
    assert len(rows) == 5 and len({r["path"] for r in rows}) == 5
    assert str(imgs / "caf\\xe9.png") in {r["path"] for r in rows}  # the undecodable byte shown, not lost
    assert all(r["verdict"] in ("OK", "REVIEW", "NG") for r in rows)
    assert _inspect(model, imgs, "--out", out, "--resume") == 0
    assert len(_csv_rows(out)) == 5  # resume recognises the row: nothing inspected twice
    # JSONL keeps the name exact: os.fsencode gives back the file's bytes
    assert _inspect(model, imgs, "--out", out_jsonl) == 0
    paths = [r["path"] for r in read_rows(out_jsonl)]
    assert str(imgs / LATIN1) in paths and len(paths) == 5
    out_jsonl.read_bytes().decode("utf-8")  # still valid UTF-8
    assert _inspect(model, imgs, "--out", out_jsonl, "--resume") == 0
    assert len(list(read_rows(out_jsonl))) == 5
    listed = tmp_path / "list.txt"  # a path list naming it in its own bytes
    listed.write_bytes(os.fsencode(imgs / LATIN1) + b"\n")
    assert _inspect(model, listed, "--out", tmp_path / "listed.csv") == 0
    assert [r["verdict"] for r in _csv_rows(tmp_path / "listed.csv")] == ["OK"]


def test_fifo_never_blocks_the_run(model, tmp_path):
    """A FIFO named x.jpg hung the whole batch in open(); in a folder it is a named warning, given by name an
    ERROR row, and the run finishes."""
    imgs = tmp_path / "imgs"
    write_images(imgs, 3)
    os.mkfifo(imgs / "x.jpg")
    out = tmp_path / "r.csv"
    r = _edge_subprocess(model, imgs, "--out", out, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"{imgs / 'x.jpg'}: a FIFO, not an image file; skipped" in r.stderr
    assert "skipped 1 entries" in r.stderr
    assert len(_csv_rows(out)) == 3
    r = _edge_subprocess(model, imgs / "x.jpg", imgs / "img000.png", "--out", tmp_path / "named.csv", timeout=60)
    assert r.returncode == 0, r.stderr
    rows = {Path(x["path"]).name: x for x in _csv_rows(tmp_path / "named.csv")}
    assert rows["x.jpg"]["verdict"] == "ERROR" and "not a regular file" in rows["x.jpg"]["error"]
    assert rows["img000.png"]["verdict"] != "ERROR"


def test_unlistable_folder_is_a_named_warning_and_counted(model, tmp_path, monkeypatch, capsys):
    """An unreadable subfolder was skipped without a word ("inspected 4 images" where find sees 5). As root,
    chmod 000 does not stop reading, so the listing's os.scandir is made to fail for that one folder."""
    imgs = tmp_path / "imgs"
    write_images(imgs, 4)
    write_images(imgs / "locked", 1)
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "r.csv"
    assert _inspect(model, imgs, "--out", out) == 0
    err = capsys.readouterr().err
    assert f"{imgs / 'locked'}: folder not listed (Permission denied)" in err
    assert "skipped 1 entries" in err and len(_csv_rows(out)) == 4
    done = json.loads((tmp_path / "r.csv.done.json").read_text())
    assert done["n_skipped"] == 1 and "locked" in done["skipped"][0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway (see the scandir variant)")
def test_chmod_000_folder_is_a_named_warning(model, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    write_images(imgs, 2)
    write_images(imgs / "locked", 1)
    (imgs / "locked").chmod(0)
    try:
        assert _inspect(model, imgs, "--out", tmp_path / "r.csv") == 0
    finally:
        (imgs / "locked").chmod(0o755)
    assert "locked: folder not listed" in capsys.readouterr().err


def test_folder_past_the_path_limit_is_a_named_warning(model, tmp_path, capsys):
    """A folder whose path is longer than PATH_MAX cannot be listed by path: it used to vanish silently."""
    imgs = tmp_path / "imgs"
    write_images(imgs, 4)
    fd = os.open(imgs, os.O_RDONLY)
    name = "d" * 250
    for _ in range(20):  # 20 x 251 characters > 4096
        os.mkdir(name, dir_fd=fd)
        nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    png = (imgs / "img000.png").read_bytes()
    wfd = os.open("deep.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(wfd, png)
    os.close(wfd)
    os.close(fd)
    out = tmp_path / "r.csv"
    assert _inspect(model, imgs, "--out", out) == 0
    err = capsys.readouterr().err
    assert "folder not listed (File name too long)" in err and "skipped 1 entries" in err
    assert len(_csv_rows(out)) == 4


def test_second_run_on_a_locked_output_fails_fast(model, tmp_path):
    """Two runs on one --out interleaved their rows (20,193 rows for 20,000 files) and both said success."""
    from inspection.core.files import output_lock

    imgs = tmp_path / "imgs"
    write_images(imgs, 3)
    out = tmp_path / "r.csv"
    with output_lock(out):  # what the first run holds while it works
        r = _edge_subprocess(model, imgs, "--out", out, "--resume", timeout=60)
        assert r.returncode == 2, r.stderr
        assert "error:" in r.stderr and "locked by another run" in r.stderr and "Traceback" not in r.stderr
        assert not out.exists()
    r = _edge_subprocess(model, imgs, "--out", out, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(_csv_rows(out)) == 3 and not Path(f"{out}.lock").exists()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_control_characters_and_formulas_in_names(model, tmp_path, monkeypatch, fmt):
    """A \\r split the CSV row (and every --resume appended another copy); =, +, -, @ names went verbatim into
    CSV (formula injection). CSV cells are neutralised; JSONL keeps the names exact."""
    imgs = tmp_path / "imgs"
    src = write_images(tmp_path / "src", 1)[0].read_bytes()
    names = ["a\rb.png", "c\nd.png", "=1+2.png", "+x.png", "-y.png", "@SUM(A1).png", "'q.png", "plain.png"]
    imgs.mkdir()
    for n in names:
        (imgs / n).write_bytes(src)
    monkeypatch.chdir(imgs)  # relative paths: the cell starts with the file name itself
    out = tmp_path / f"r.{fmt}"
    assert _inspect(model, "*.png", "--out", out) == 0
    for _ in range(2):
        assert _inspect(model, "*.png", "--out", out, "--resume") == 0
    if fmt == "jsonl":
        assert sorted(r["path"] for r in read_rows(out)) == sorted(names)
        return
    text = out.read_text(encoding="utf-8")
    assert "\r" not in text and len(text.splitlines()) == len(names) + 1
    paths = [r["path"] for r in _csv_rows(out)]
    assert len(paths) == len(names) == len(set(paths))
    assert not [p for p in paths if p[0] in "=+-@"]
    assert {"a\\x0db.png", "c\\x0ad.png", "'=1+2.png", "'+x.png", "'-y.png", "'@SUM(A1).png", "''q.png",
            "plain.png"} == set(paths)


def test_disk_full_ends_cleanly_and_resume_completes(model, tmp_path, monkeypatch, capsys):
    """ENOSPC mid-run gave a 90-line traceback, exit 1 and a torn last line. Now: `error: ... no space left`,
    exit 2, the file cut back to its last complete row, no done marker; --resume then finishes the job."""
    imgs = tmp_path / "imgs"
    write_images(imgs, 10)
    out = tmp_path / "r.csv"
    real_write, budget = os.write, {"left": 500}  # the header and a few rows fit, then the disk is full

    def write(fd, data):
        if not os.readlink(f"/proc/self/fd/{fd}").endswith("r.csv"):
            return real_write(fd, data)
        if budget["left"] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, bytes(data[: budget["left"]]))  # a short write: half a row reaches the disk
        budget["left"] -= n
        return n

    monkeypatch.setattr(os, "write", write)
    assert _inspect(model, imgs, "--out", out, "--batch-size", "2", "--fail-on", "review") == 2
    err = capsys.readouterr().err
    assert "error:" in err and "no space left" in err and "--resume" in err and "Traceback" not in err
    monkeypatch.setattr(os, "write", real_write)
    data = out.read_bytes()
    assert data.endswith(b"\n") and 0 < len(_csv_rows(out)) < 10
    assert not Path(f"{out}.done.json").exists() and not Path(f"{out}.lock").exists()
    assert _inspect(model, imgs, "--out", out, "--resume") == 0
    rows = _csv_rows(out)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in imgs.iterdir())
    assert json.loads(Path(f"{out}.done.json").read_text())["n_total"] == 10


def test_done_marker_is_written_last_and_removed_by_a_new_run(model, tmp_path):
    imgs = tmp_path / "imgs"
    write_images(imgs, 3)
    out, report = tmp_path / "r.jsonl", tmp_path / "r.html"
    assert _inspect(model, imgs, "--out", out, "--report", report) == 0
    marker = Path(f"{out}.done.json")
    done = json.loads(marker.read_text())
    assert done["finished"] and done["n_total"] == 3
    assert marker.stat().st_mtime_ns >= report.stat().st_mtime_ns >= out.stat().st_mtime_ns
    (imgs / "img000.png").write_bytes(b"")  # the next run starts: the old marker must go before any row
    os.mkfifo(imgs / "late.png")
    assert _inspect(model, imgs, "--out", out, "--overwrite") == 0
    assert json.loads(marker.read_text())["n_skipped"] == 1


@pytest.mark.timeout(60, method="thread")  # the old importer blocked forever in a reader thread
def test_data_import_lists_folders_like_inspect(tmp_path, caplog):
    """`data import` shares the listing: a FIFO is a named warning, not a hang; a name that cannot go into a UTF-8
    manifest is a named bad file (left out with skip_bad), not a UnicodeEncodeError."""
    from inspection.core.errors import ManifestError
    from inspection.data.importers.folder import import_folder

    src = tmp_path / "src"
    write_images(src / "good", 3)
    write_images(src / "scratch", 3)
    os.mkfifo(src / "good" / "x.png")
    (src / "scratch" / LATIN1).write_bytes((src / "scratch" / "img000.png").read_bytes())
    with pytest.raises(ManifestError, match="file name is not valid UTF-8"):
        import_folder(src, tmp_path / "out_strict")
    with caplog.at_level("WARNING", logger="inspection"):
        m = import_folder(src, tmp_path / "out", skip_bad=True)
    assert len(m.rows) == 6 and "x.png" not in " ".join(m.rows["path"])
    assert f"{src / 'good' / 'x.png'}: a FIFO, not an image file; skipped" in caplog.text
    assert [s["reason"] for s in m.info["skipped"]] == ["file name is not valid UTF-8 (rename the file)"]
