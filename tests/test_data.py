import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from fabricated import write_png

from fer_core.cli import main as cli
from fer_core.data import EMOTIONS, SYNTHETIC_NOTE, DataError, load, readers, resolve
from fer_core.data.synthetic import make_synthetic


# -- the embedded synthetic set ---------------------------------------------------------------
def test_synthetic_shapes_labels_splits_and_masks():
    d = load("synthetic", synthetic_size=(140, 70, 70))
    assert d.images.dtype == np.uint8 and d.images.shape == (280, 48, 48)
    assert d.mask.shape == d.images.shape and d.mask.dtype == bool
    assert set(d.labels.tolist()) == set(range(7))
    assert [int((d.split == s).sum()) for s in ("train", "val", "test")] == [140, 70, 70]
    # masks cover the expression regions: a real share of the image, never all of it
    share = d.mask.mean(axis=(1, 2))
    assert share.min() > 0.05 and share.max() < 0.6
    assert d.note == SYNTHETIC_NOTE and d.summary()["note"] == SYNTHETIC_NOTE


def test_synthetic_is_deterministic_and_seeded():
    a, b = make_synthetic(70, 14, 14, seed=3), make_synthetic(70, 14, 14, seed=3)
    c = make_synthetic(70, 14, 14, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["images"], c["images"])


def test_synthetic_subjects_are_disjoint_across_splits():
    d = load("synthetic", synthetic_size=(700, 140, 140))
    subjects = {s: set(d.subject[d.split == s]) for s in ("train", "val", "test")}
    assert not subjects["train"] & subjects["val"] and not subjects["train"] & subjects["test"]
    assert not subjects["val"] & subjects["test"]


def test_synthetic_expressions_differ_only_in_face_regions():
    """Mean face per class: the classes differ inside the ground-truth mask far more than outside."""
    d = load("synthetic", synthetic_size=(2100, 7, 7)).select("train")
    means = np.stack([d.images[d.labels == c].mean(0) for c in range(7)])
    spread = means.std(0)
    inside, outside = spread[d.mask.mean(0) > 0.5].mean(), spread[d.mask.mean(0) < 0.05].mean()
    assert inside > 1.5 * outside, (inside, outside)


# -- resolving where data is ------------------------------------------------------------------
def test_auto_is_synthetic_without_a_data_dir():
    assert resolve("auto") == ("synthetic", None)


def test_auto_and_layouts_resolve_on_the_real_data(shared_data):
    assert resolve("auto", shared_data) == ("fer2013", shared_data / "fer2013")
    assert resolve("fer2013", shared_data / "fer2013")[1] == shared_data / "fer2013"
    assert resolve("ckplus", shared_data)[1] == shared_data / "ckplus" / "CK+48"


def test_missing_directory_says_where_to_get_the_data(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*image-folder release.*CSV"):
        load("fer2013", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"No data directory.*FER_DATA_DIR"):
        load("ckplus")
    with pytest.raises(DataError, match=r"CK\+48"):
        load("ckplus", tmp_path)
    with pytest.raises(DataError, match="Unknown data source"):
        load("affectnet")


# -- FER2013 image folders ----------------------------------------------------------------------
def _fer_tree(root, n=2, size=48):
    rng = np.random.default_rng(0)
    for part, prefixes in (("train", ["Training"]), ("test", ["PublicTest", "PrivateTest"])):
        for cls in ("angry", "happy", "neutral"):
            for prefix in prefixes:
                for i in range(n):
                    write_png(root / part / cls / f"{prefix}_{cls}{i}.png", rng.integers(0, 256, (size, size)))
    return root


def test_fer_folders_map_prefixes_to_splits_and_folders_to_canonical_labels(tmp_path):
    d = load("fer2013", _fer_tree(tmp_path / "fer"), use_cache=False)
    assert sorted(set(d.split)) == ["test", "train", "val"]
    assert all(f.split("/")[2].startswith("PrivateTest") for f in d.files[d.split == "test"])
    assert all(f.split("/")[2].startswith("PublicTest") for f in d.files[d.split == "val"])
    label_of = {f.split("/")[1]: int(lab) for f, lab in zip(d.files, d.labels)}
    assert label_of == {"angry": 0, "happy": 3, "neutral": 6}
    assert d.classes == tuple(range(7)) and d.targets.max() == 6


def test_unknown_class_folder_is_named(tmp_path):
    root = _fer_tree(tmp_path / "fer")
    write_png(root / "train" / "bored" / "Training_1.png", np.zeros((48, 48)))
    with pytest.raises(DataError, match=r"Unknown class folder .*bored.*expected folder names"):
        load("fer2013", root, use_cache=False)


def test_corrupt_image_is_named(tmp_path):
    root = _fer_tree(tmp_path / "fer")
    (root / "train" / "happy" / "Training_bad.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"Cannot read image .*Training_bad\.jpg"):
        load("fer2013", root, use_cache=False)


def test_wrong_size_is_resized_with_a_warning_or_rejected_when_strict(tmp_path):
    root = _fer_tree(tmp_path / "fer")
    write_png(root / "train" / "happy" / "Training_big.png", np.full((96, 64), 200))
    with pytest.warns(UserWarning, match=r"1 image\(s\).*not 48x48.*resized.*Training_big"):
        d = load("fer2013", root, use_cache=False)
    big = d.images[[f.endswith("Training_big.png") for f in d.files]][0]
    assert big.shape == (48, 48) and abs(int(big.mean()) - 200) <= 1
    with pytest.raises(DataError, match=r"Training_big\.png is 64x96, not 48x48.*strict_size"):
        load("fer2013", root, use_cache=False, strict_size=True)


def test_unknown_file_prefix_is_an_error(tmp_path):
    root = _fer_tree(tmp_path / "fer")
    write_png(root / "test" / "happy" / "img_7.png", np.zeros((48, 48)))
    with pytest.raises(DataError, match=r"img_7\.png: file name does not start with Training_"):
        load("fer2013", root, use_cache=False)


def test_empty_split_is_an_error(tmp_path):
    root = _fer_tree(tmp_path / "fer")
    for f in root.glob("test/*/PrivateTest_*"):
        f.unlink()
    with pytest.raises(DataError, match=r"'test' split .* is empty"):
        load("fer2013", root, use_cache=False)


# -- FER2013's original CSV ---------------------------------------------------------------------
def _csv(path, images, labels, usage):
    pd.DataFrame({"emotion": labels, "pixels": [" ".join(map(str, im.ravel())) for im in images],
                  "Usage": usage}).to_csv(path, index=False)
    return path


def test_csv_reads_pixels_labels_and_usage(tmp_path):
    syn = make_synthetic(14, 7, 7, seed=1)
    usage = np.array({"train": "Training", "val": "PublicTest", "test": "PrivateTest"}[s] for s in syn["split"])
    path = _csv(tmp_path / "fer2013.csv", syn["images"], syn["labels"], usage)
    d = load("fer2013-csv", tmp_path, use_cache=False)
    assert np.array_equal(d.images, syn["images"]) and np.array_equal(d.labels, syn["labels"])
    assert np.array_equal(d.split, syn["split"])
    assert load("fer2013-csv", path, use_cache=False).fingerprint == d.fingerprint


def test_csv_matches_the_image_folders_on_real_images(fer2013, tmp_path):
    """The CSV path and the folder path give the same arrays for the same faces."""
    idx = np.r_[np.flatnonzero(fer2013.split == "train")[:20], np.flatnonzero(fer2013.split == "val")[:10],
                np.flatnonzero(fer2013.split == "test")[:10]]
    part = fer2013.take(idx)
    usage = [{"train": "Training", "val": "PublicTest", "test": "PrivateTest"}[s] for s in part.split]
    d = load("fer2013-csv", _csv(tmp_path / "f.csv", part.images, part.labels, usage), use_cache=False)
    assert np.array_equal(d.images, part.images) and np.array_equal(d.labels, part.labels)
    assert np.array_equal(d.split, part.split)


@pytest.mark.parametrize("mutate, message", [
    (lambda df: df.drop(columns="Usage"), r"lacks column\(s\) \['Usage'\]"),
    (lambda df: df.assign(pixels=df.pixels.where(df.index != 2, "1 2 x 4")), r"row 3 \(line 4\).*not space-separated"),
    (lambda df: df.assign(pixels=df.pixels.where(df.index != 1, "1 2 3")), r"row 2 \(line 3\).*3 values.*2304"),
    (lambda df: df.assign(Usage=df.Usage.where(df.index != 0, "Validation")), r"row 1 .*Usage is 'Validation'"),
    (lambda df: df.assign(emotion=df.emotion.where(df.index != 4, 9)), r"row 5 .*emotion is 9"),
    (lambda df: df.iloc[:0], r"no rows"),
])
def test_csv_errors_name_the_row_or_column(tmp_path, mutate, message):
    syn = make_synthetic(7, 0, 0, seed=2)
    path = _csv(tmp_path / "fer2013.csv", syn["images"], syn["labels"], ["Training"] * 7)
    mutate(pd.read_csv(path)).to_csv(path, index=False)
    with pytest.raises(DataError, match=message):
        load("fer2013-csv", path, use_cache=False)


# -- FER+'s labels (fer2013new.csv beside fer2013.csv) ----------------------------------------
FERPLUS_COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown",
                   "NF"]


def test_ferplus_majority_drops_single_votes_and_needs_more_than_half():
    from fer_core.data.readers import ferplus_majority
    assert ferplus_majority([0, 6, 0, 0, 0, 0, 0, 0, 0, 4]) == 1                 # happiness 6 of 10
    assert ferplus_majority([5, 0, 0, 0, 0, 0, 0, 5, 0, 0]) is None              # a tie: no majority
    assert ferplus_majority([4, 3, 1, 1, 1, 0, 0, 0, 0, 0]) == 0                 # single votes dropped: 4 of 7
    assert ferplus_majority([4, 3, 2, 1, 0, 0, 0, 0, 0, 0]) is None              # 4 of 9 is not more than half
    assert ferplus_majority([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) is None              # every vote single: unknown


def test_ferplus_reads_eight_classes_by_majority_and_drops_unknown_and_not_faces(tmp_path):
    syn = make_synthetic(5, 1, 1, seed=3)
    usage = ["Training"] * 5 + ["PublicTest", "PrivateTest"]
    _csv(tmp_path / "fer2013.csv", syn["images"], np.zeros(7, int), usage)
    votes = [[0, 9, 0, 0, 0, 0, 0, 1, 0, 0],   # happiness
             [0, 0, 0, 0, 0, 0, 0, 7, 0, 3],   # contempt: FER2013 has no such class
             [0, 0, 0, 0, 0, 0, 0, 0, 8, 2],   # unknown: dropped
             [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face: dropped
             [0, 0, 0, 9, 0, 0, 0, 0, 0, 1],   # sadness, but no image name: a face FER+'s authors removed
             [10, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # neutral
             [0, 0, 0, 0, 8, 2, 0, 0, 0, 0]]   # anger
    names = [f"fer{i:07d}.png" for i in range(7)]
    names[4] = ""
    pd.DataFrame({"Usage": usage, "Image name": names, **dict(zip(FERPLUS_COLUMNS, np.array(votes).T))}).to_csv(
        tmp_path / "fer2013new.csv", index=False)
    d = load("ferplus", tmp_path, use_cache=False)
    assert d.labels.tolist() == [3, 7, 6, 0] and d.split.tolist() == ["train", "train", "val", "test"]
    assert np.array_equal(d.images[0], syn["images"][0]) and 7 in d.classes and len(d.classes) == 8
    (tmp_path / "fer2013new.csv").unlink()
    with pytest.raises(DataError, match="fer2013new.csv beside FER2013's fer2013.csv"):
        load("ferplus", tmp_path, use_cache=False)


def test_ferplus_with_another_row_count_is_refused(tmp_path):
    syn = make_synthetic(3, 0, 0, seed=4)
    _csv(tmp_path / "fer2013.csv", syn["images"], np.zeros(3, int), ["Training"] * 3)
    pd.DataFrame({"Usage": ["Training"] * 2, "Image name": ["a", "b"],
                  **{c: [10, 10] if c == "neutral" else [0, 0] for c in FERPLUS_COLUMNS}}).to_csv(
        tmp_path / "fer2013new.csv", index=False)
    with pytest.raises(DataError, match="has 2 rows and fer2013.csv 3"):
        load("ferplus", tmp_path, use_cache=False)


# -- the real FER2013 and CK+ -------------------------------------------------------------------
def test_real_fer2013_split_sizes_and_counts(fer2013):
    s = fer2013.summary()["splits"]
    assert [s[k]["total"] for k in ("train", "val", "test")] == [28709, 3589, 3589]
    assert s["train"]["per_class"] == {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215,
                                       "sad": 4830, "surprise": 3171, "neutral": 4965}
    test_counts = {k: s["val"]["per_class"][k] + s["test"]["per_class"][k] for k in s["val"]["per_class"]}
    assert test_counts == {"angry": 958, "disgust": 111, "fear": 1024, "happy": 1774, "sad": 1247,
                           "surprise": 831, "neutral": 1233}
    assert fer2013.images.shape == (35887, 48, 48) and fer2013.images.dtype == np.uint8


def test_second_load_reads_the_cache(shared_data, fer2013, monkeypatch):
    """The second load never decodes an image (its speed is measured by `python -m fer_core.schedule.bench data`)."""
    def boom(*a, **k):
        raise AssertionError("decoded again instead of reading the cache")
    monkeypatch.setattr("fer_core.data.read_fer2013_folders", boom)
    again = load("fer2013", shared_data)
    assert again.fingerprint == fer2013.fingerprint and np.array_equal(again.images, fer2013.images)


def test_cache_key_changes_when_a_file_changes(tmp_path):
    root = _fer_tree(tmp_path / "fer")
    first = load("fer2013", root)
    write_png(root / "train" / "happy" / "Training_new.png", np.zeros((48, 48)))
    second = load("fer2013", root)
    assert len(second) == len(first) + 1 and second.fingerprint != first.fingerprint


def test_ckplus_subjects_labels_and_folds(ckplus):
    assert len(ckplus) == 981 and len(np.unique(ckplus.subject)) == 118
    assert ckplus.class_names == ["angry", "disgust", "fear", "happy", "sad", "surprise", "contempt"]
    assert sorted(np.unique(ckplus.targets).tolist()) == list(range(7))
    assert ckplus.summary()["splits"]["cv"]["per_class"]["contempt"] == 54


def test_no_ckplus_subject_is_on_both_sides_of_any_fold(ckplus):
    assert sorted(np.unique(ckplus.fold).tolist()) == list(range(10))
    for k in range(10):
        d = ckplus.with_fold(k)
        sides = {s: set(d.subject[d.split == s]) for s in ("train", "val", "test")}
        assert all(sides.values()), f"fold {k} has an empty side"
        assert not sides["train"] & sides["test"] and not sides["train"] & sides["val"]
        assert not sides["val"] & sides["test"]


def test_ckplus_folds_are_deterministic_and_can_drop_contempt(shared_data, ckplus):
    again = load("ckplus", shared_data)
    assert np.array_equal(again.fold, ckplus.fold)
    six = load("ckplus", shared_data, with_contempt=False)
    assert len(six) == 981 - 54 and six.num_classes == 6 and "contempt" not in six.class_names
    with pytest.raises(DataError, match="fold=10 is out of range"):
        ckplus.with_fold(10)


def test_synthetic_set_stands_in_for_ckplus_with_subject_folds():
    d = load("synthetic", cv=True, synthetic_size=(300, 60, 60))
    assert set(d.split) == {"cv"} and len(d) == 420 and sorted(np.unique(d.fold).tolist()) == list(range(10))
    for k in (0, 9):
        f = d.with_fold(k)
        sides = {s: set(f.subject[f.split == s]) for s in ("train", "val", "test")}
        assert all(sides.values()) and not sides["train"] & sides["test"] and not sides["val"] & sides["test"]
    assert d.note == SYNTHETIC_NOTE
    assert np.array_equal(d.fold, load("synthetic", cv=True, synthetic_size=(300, 60, 60)).fold)


def test_cross_validation_errors_name_the_field(shared_data):
    with pytest.raises(DataError, match=r"data\.cv=true: digits has no subject ids"):
        load("digits", cv=True)
    with pytest.raises(DataError, match=r"data\.cv=false: CK\+ has no fixed train/val/test splits"):
        load("ckplus", shared_data, cv=False)


def test_digits_are_ten_distorted_classes_in_stratified_splits():
    d = load("digits")
    assert d.images.shape == (1797, 48, 48) and d.num_classes == 10 and d.class_names[:3] == ["0", "1", "2"]
    assert "not faces" in d.note and resolve("digits") == ("digits", None)
    train = d.select("train")
    assert 1200 < len(train) < 1320 and np.bincount(train.targets).min() >= 120
    assert np.array_equal(d.images, load("digits").images)  # deterministic
    # distorted: the centre of mass moves from image to image (rotation, scale and shift)
    ys, xs = np.mgrid[:48, :48]
    mass = d.images[:200].astype(float)
    cx = (mass * xs).sum((1, 2)) / mass.sum((1, 2))
    assert cx.std() > 2


def test_subsample_is_stratified():
    d = load("synthetic", synthetic_size=(700, 70, 70)).subsample({"train": 140})
    counts = np.bincount(d.labels[d.split == "train"])
    assert counts.sum() == 140 and counts.min() == counts.max() == 20
    assert (d.split == "val").sum() == 70


# -- the `data` command -------------------------------------------------------------------------
def test_data_command_prints_json(capsys):
    assert cli(["data", "--source", "synthetic", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"]["train"]["total"] == 3500 and out["note"] == SYNTHETIC_NOTE
    assert list(out["splits"]["test"]["per_class"]) == list(EMOTIONS[:7])


def test_data_command_on_real_data(shared_data, fer2013, capsys):
    assert cli(["data", "--source", "ckplus", "--data-dir", str(shared_data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"]["cv"]["total"] == 981 and out["subjects"] == 118 and len(out["folds"]) == 10


def test_data_command_error_is_one_clear_line(tmp_path, capsys):
    assert cli(["data", "--source", "fer2013", "--data-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Data directory") and "Traceback" not in err


def test_readers_warn_only_once_for_many_resized_images(tmp_path):
    for i in range(5):
        write_png(tmp_path / "anger" / f"S00{i}_001_00000001.png", np.zeros((64, 64)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = readers.read_ckplus(tmp_path)
    assert len(caught) == 1 and "5 image(s)" in str(caught[0].message)
    assert d["images"].shape == (5, 48, 48) and list(d["subject"]) == [f"S00{i}" for i in range(5)]


def test_an_empty_ckplus_class_folder_is_refused_not_dropped(tmp_path):
    root = tmp_path / "CK+48"
    for i in range(3):
        write_png(root / "happy" / f"S{10 + i:03d}_001_0000000{i}.png", np.zeros((48, 48)))
    (root / "anger").mkdir()
    empty = re.escape(str(root / "anger"))
    with pytest.raises(DataError, match=rf"Class folder {empty} is empty: .*move the empty folder out"):
        readers.read_ckplus(root)
