"""riffusion.files: atomic file and folder output."""

from __future__ import annotations

import pytest

from riffusion.files import atomic_folder, atomic_path, keep_beside


def test_atomic_path_renames_on_success_and_removes_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("failed")
    assert target.read_text() == "done" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_path(tmp_path / "missing" / "x.txt"):
            pass


def test_atomic_folder_replaces_the_old_folder_only_on_success(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as tmp:
        assert tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target) as tmp:
            (tmp / "b.txt").write_text("2")
            assert (target / "a.txt").exists()  # the old folder stays readable during the block
            raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_folder(target) as tmp:
        keep_beside(target, tmp, ("a.txt", "absent"))
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no .partial or .old left


def test_keep_beside_never_overwrites_and_copies_folders(tmp_path):
    source, target = tmp_path / "s", tmp_path / "t"
    (source / "seed_images").mkdir(parents=True)
    (source / "seed_images" / "x.png").write_bytes(b"x")
    (source / "README.md").write_text("old card")
    target.mkdir()
    (target / "README.md").write_text("new card")
    keep_beside(source, target, ("README.md", "seed_images"))
    assert (target / "README.md").read_text() == "new card" and (target / "seed_images" / "x.png").exists()


def test_keep_beside_with_replace_lets_the_source_win(tmp_path):
    source, target = tmp_path / "s", tmp_path / "t"
    (source / "seed_images").mkdir(parents=True)
    (source / "seed_images" / "x.png").write_bytes(b"x")
    (source / "README.md").write_text("package card")
    (target / "seed_images").mkdir(parents=True)
    (target / "seed_images" / "run.png").write_bytes(b"r")
    (target / "README.md").write_text("run card")
    keep_beside(source, target, ("README.md", "seed_images", "absent"), replace=True)
    assert (target / "README.md").read_text() == "package card"
    assert sorted(p.name for p in (target / "seed_images").iterdir()) == ["x.png"]
    assert not (target / "absent").exists()
