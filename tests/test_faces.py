"""utils.use.faces: any photo is read as upright RGB or refused by name, the face is found,
and cropped as UTKFace crops it."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.base.paths import DATA_DIR
from utils.use import photos
from utils.use.faces import CROP, Box, calibrate, detect_faces, utk_crop
from utils.use.photos import ImageError, read_image, read_photo

data = pytest.importorskip("skimage.data")

FACE = (177, 66, 95, 95)  # where the detector finds the astronaut's face in the 512x512 photo (x, y, w, h)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()  # public domain (NASA), 512x512 RGB, one frontal face


def assert_face_at(box: Box, x: float, y: float, w: float, tol: float = 0.15) -> None:
    """The box's centre lies within ``tol`` face widths of (x, y) + w/2, and its width within ``tol`` of ``w``."""
    assert abs(box.x + box.w / 2 - (x + w / 2)) < tol * w and abs(box.y + box.h / 2 - (y + w / 2)) < tol * w, box
    assert abs(box.w / w - 1) < tol, box


def one_face(source) -> Box:
    boxes = detect_faces(read_image(source))
    assert len(boxes) == 1, boxes
    return boxes[0]


def test_the_astronaut_has_one_face_where_expected(astronaut):
    (box,) = detect_faces(astronaut)
    assert 170 <= box.x and box.x + box.w <= 280 and 50 <= box.y and box.y + box.h <= 175, box
    assert_face_at(box, *FACE[:3], tol=0.05)
    assert box.to_dict() == {"x": box.x, "y": box.y, "w": box.w, "h": box.h}


def test_exif_rotation_is_applied_and_boxes_are_in_the_upright_image(astronaut, tmp_path):
    upright = astronaut[:, :400]  # not square, so a missed rotation changes the shape
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright)))  # lying on its side, as a phone stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored.save(tmp_path / "phone.jpg", quality=95, exif=exif)
    image = read_image(tmp_path / "phone.jpg")
    assert image.shape == (512, 400, 3)
    assert_face_at(one_face(image), *FACE[:3])


@pytest.mark.parametrize("mode", ["RGBA", "L", "CMYK", "I;16"])
def test_other_modes_are_read_as_rgb_and_the_face_is_found(astronaut, tmp_path, mode):
    if mode == "RGBA":
        rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
        rgba[:40, :, 3] = 0  # a transparent band: composited on white
        im, path = Image.fromarray(rgba), tmp_path / "alpha.png"
    elif mode == "I;16":  # 16-bit grey, values 1000..52000: rescaled by the image's own range
        grey = np.asarray(Image.fromarray(astronaut).convert("L"), dtype=np.uint16)
        im, path = Image.fromarray(grey * 200 + 1000), tmp_path / "deep.png"
    else:
        im, path = Image.fromarray(astronaut).convert(mode), tmp_path / f"{mode}.{'png' if mode == 'L' else 'jpg'}"
    im.save(path)
    with Image.open(path) as check:
        assert check.mode.startswith(mode[:1]), check.mode  # the file really holds that mode
    image = read_image(path)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    if mode == "RGBA":
        assert (image[:40] == 255).all()
    if mode == "I;16":
        assert image.min() == 0 and image.max() == 255
    assert_face_at(one_face(image), *FACE[:3])


def test_a_huge_photo_is_searched_downscaled_and_the_box_mapped_back(astronaut, tmp_path):
    Image.fromarray(astronaut).resize((6000, 6000), Image.Resampling.BILINEAR).save(tmp_path / "huge.jpg", quality=85)
    image = read_image(tmp_path / "huge.jpg")
    assert image.shape == (6000, 6000, 3)
    k = 6000 / 512
    assert_face_at(one_face(image), FACE[0] * k, FACE[1] * k, FACE[2] * k)


@pytest.mark.parametrize("kind", ["jpg", "png", "exif"])
def test_read_photo_reduces_a_big_photo_while_decoding(astronaut, tmp_path, monkeypatch, kind):
    """Over max_side, a JPEG is decoded at libjpeg's 1/2, 1/4 or 1/8 (draft) and other formats box-reduced, by a whole
    factor; the scale maps the reduced photo's pixels back to the upright original's, where the face was."""
    big = Image.fromarray(astronaut[:, :400]).resize((1200, 1536), Image.Resampling.BILINEAR)  # not square: x, y differ
    path, exif = tmp_path / f"big.{'png' if kind == 'png' else 'jpg'}", Image.Exif()
    if kind == "exif":
        exif[0x0112] = 6  # stored lying on its side
        big = big.transpose(Image.Transpose.ROTATE_90)
    big.save(path, exif=exif)
    with Image.open(path) as im:
        cls, drafts = type(im), []
    draft = cls.draft
    monkeypatch.setattr(cls, "draft", lambda im, *a: drafts.append(a) or draft(im, *a))
    image, (sx, sy) = read_photo(path, max_side=400)
    assert image.shape == (384, 300, 3), image.shape  # 1536 x 1200 reduced by 4, upright
    assert (sx, sy) == (4.0, 4.0) and bool(drafts) == (kind != "png")
    box = one_face(image)
    k = 1200 / 400
    assert_face_at(
        Box(round(box.x * sx), round(box.y * sy), round(box.w * sx), round(box.h * sy)),
        FACE[0] * k,
        FACE[1] * k,
        FACE[2] * k,
    )
    assert read_photo(path, max_side=2000)[1] == (1.0, 1.0) and read_image(path).shape == (1536, 1200, 3)


def test_two_faces_come_left_to_right(astronaut):
    boxes = detect_faces(np.hstack([astronaut, astronaut[:, ::-1]]))
    assert len(boxes) == 2 and boxes[0].x < boxes[1].x, boxes
    assert_face_at(boxes[0], *FACE[:3])
    assert_face_at(boxes[1], 1024 - FACE[0] - FACE[2], FACE[1], FACE[2])


def test_small_faces_and_blank_images_give_no_box(astronaut):
    tiny = np.asarray(Image.fromarray(astronaut).resize((96, 96), Image.Resampling.LANCZOS))  # face about 18 px
    assert detect_faces(tiny) == []
    assert detect_faces(np.full((300, 400, 3), 255, np.uint8)) == []


def test_arrays_and_pil_images_are_accepted(astronaut):
    assert (read_image(astronaut) == astronaut).all()
    assert (read_image(astronaut / 255.0) == astronaut).all()
    assert read_image(astronaut[:, :, :1]).shape == (512, 512, 3)
    assert read_image(astronaut[:, :, 0]).shape == (512, 512, 3)
    assert (read_image(Image.fromarray(astronaut)) == astronaut).all()
    rgba = np.zeros((4, 4, 4), np.uint8)
    assert (read_image(rgba) == 255).all()  # fully transparent -> white


def test_an_animation_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 20), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert tuple(read_image(tmp_path / "anim.gif")[0, 0]) == (255, 0, 0)


def _bad_files(tmp_path: Path, astronaut: np.ndarray) -> dict[str, Path]:
    (tmp_path / "photo.jpg").write_text("not a photo at all\n")
    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.fromarray(astronaut).save(tmp_path / "whole.jpg")
    whole = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "album").mkdir()
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")  # a symlink to itself: stat fails with ELOOP
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")  # a device that never ends
    with open(tmp_path / "huge.jpg", "wb") as f:  # a sparse file one byte over the cap, starting like a JPEG
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(photos.MAX_PHOTO_BYTES + 1)
    paths = {
        "text": tmp_path / "photo.jpg",
        "empty": tmp_path / "empty.jpg",
        "truncated": tmp_path / "cut.jpg",
        "folder": tmp_path / "album",
        "missing": tmp_path / "nowhere.jpg",
        "loop": tmp_path / "loop.jpg",
        "device": tmp_path / "zero.jpg",
        "huge": tmp_path / "huge.jpg",
    }
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.jpg")  # opening it to read would wait for a writer forever
        paths["fifo"] = tmp_path / "pipe.jpg"
    return paths


@pytest.mark.parametrize(
    "kind, says",
    [
        ("text", "not an image file"),
        ("empty", "empty"),
        ("truncated", "truncated"),
        ("folder", "folder"),
        ("missing", "no such file"),
        ("loop", "symlink loop"),
        ("device", "not a regular file"),
        ("huge", "64 MiB"),
        ("fifo", "FIFO"),
    ],
)
def test_unusable_files_are_refused_by_name(astronaut, tmp_path, kind, says):
    bad = _bad_files(tmp_path, astronaut)
    if kind not in bad:
        pytest.skip("no FIFOs on this system")
    path = bad[kind]
    with pytest.raises(ImageError, match=says) as info:
        read_image(path)
    assert path.name in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "array, says",
    [
        (np.zeros((4, 4, 2), np.uint8), "HxWx3"),
        (np.zeros((0, 5, 3), np.uint8), "no pixels"),
        (np.zeros((4, 4, 3), np.int64), "uint8"),
        (np.full((4, 4), 2.0), r"\[0, 1\]"),
        (np.zeros((2, 2, 2, 3), np.uint8), "HxW"),
    ],
)
def test_unusable_arrays_are_refused_with_their_shape(array, says):
    with pytest.raises(ImageError, match=says) as info:
        read_image(array)
    assert str(array.shape) in str(info.value)


@pytest.mark.parametrize("limit", [200_000, 100_000])  # over the limit: PIL warns; over twice it: PIL refuses
def test_decompression_bombs_are_refused_with_their_pixel_count(astronaut, tmp_path, monkeypatch, limit):
    Image.fromarray(astronaut).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ImageError, match="262,144 pixels") as info:
        read_image(tmp_path / "bomb.png")
    assert "bomb.png" in str(info.value)


def test_utk_crop_frames_the_face_and_pads_at_the_border(astronaut):
    crop = utk_crop(astronaut, Box(*FACE))
    assert crop.shape == (200, 200, 3) and crop.dtype == np.uint8
    assert utk_crop(astronaut, Box(*FACE), size=64).shape == (64, 64, 3)
    bottom = utk_crop(astronaut, Box(200, 412, 100, 100))  # a face at the bottom edge: the square leaves the photo
    assert bottom.shape == (200, 200, 3)
    assert np.ptp(bottom[-10:].astype(int), axis=0).max() <= 3  # its last rows repeat the photo's last row
    corner = utk_crop(astronaut, Box(-60, -60, 100, 100))  # a box partly outside: edge-replicated, not failing
    assert corner.shape == (200, 200, 3)
    assert np.abs(corner[0, 0].astype(int) - astronaut[0, 0]).max() <= 3
    with pytest.raises(ValueError, match="outside"):
        utk_crop(astronaut, Box(2000, 2000, 10, 10))


def test_calibrating_on_our_own_crops_gives_back_crop(astronaut):
    """A crop made with CROP, measured the way UTKFace's crops were, gives CROP again (the two are consistent)."""
    box = Box(*FACE)
    crops = [utk_crop(astronaut, box), utk_crop(astronaut[:, ::-1], Box(512 - box.x - box.w, box.y, box.w, box.h))]
    found = calibrate(crops)
    assert (found["images"], found["detected"], found["one_face"], found["several"]) == (2, 2, 2, 0)
    assert abs(found["crop"][0] / CROP[0] - 1) < 0.1
    assert abs(found["crop"][1] - CROP[1]) < 0.05 and abs(found["crop"][2] - CROP[2]) < 0.05


UTK = DATA_DIR / "UTKFace"


@pytest.mark.skipif(not any(UTK.glob("*.jpg")) if UTK.is_dir() else True, reason="real UTKFace images not extracted")
def test_crop_holds_on_a_few_real_utkface_images():
    files = random.Random(1).sample(sorted(UTK.glob("*.jpg")), 40)
    found = calibrate(read_image(f) for f in files)
    assert found["one_face"] >= 30, found
    assert abs(found["crop"][0] / CROP[0] - 1) < 0.1 and abs(found["crop"][2] - CROP[2]) < 0.05, found


def test_a_scaled_crop_lasts_for_its_block_and_not_after_a_failure():
    from utils.use import faces

    calibrated = faces.CROP
    with faces.scaled_crop(1.2) as crop:
        assert faces.CROP == crop == (calibrated[0] * 1.2, *calibrated[1:])
    assert faces.CROP == calibrated
    with pytest.raises(RuntimeError), faces.scaled_crop(0.8):
        raise RuntimeError("a check failed")
    assert faces.CROP == calibrated
