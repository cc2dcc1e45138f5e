"""Alignment + VGG-Face on a PyAV-encoded video of scikit-image's astronaut."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musefusion.data import formats
from musefusion.errors import CheckpointError, DataFormatError, MissingDataError
from musefusion.features import mtcnn as mtcnn_module
from musefusion.features import video
from musefusion.features.extract import ExtractConfig, Recording, extract_file, extract_files


@pytest.fixture(scope="module")
def mtcnn():
    return mtcnn_module.load_mtcnn()


@pytest.fixture(scope="module")
def vggface_file(tmp_path_factory):
    """A random-init VGG-Face state dict (with fc6-fc8 entries, like vgg_face_dag.pth) as safetensors."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in video.build_vggface().state_dict().items()}
    state.update({"fc6.weight": torch.zeros(4096, 25088), "fc8.bias": torch.zeros(2622)})
    path = tmp_path_factory.mktemp("w") / "vggface.safetensors"
    save_file(state, str(path))
    return path


def test_alignment_puts_landmarks_on_the_template(mtcnn):
    from skimage import data

    img = data.astronaut()
    _, marks = mtcnn_module.detect_faces(img, mtcnn)
    m = video.similarity_transform(marks[0], video.FACE_TEMPLATE)
    mapped = (m @ np.c_[marks[0], np.ones(5)].T).T
    err = np.abs(mapped - video.FACE_TEMPLATE)
    assert err[:2].max() < 5 and err.max() < 10  # eyes land tightly; a smiling mouth is wider than the template
    face = video.align_face(img, marks[0])
    assert face.shape == (3, 224, 224) and face.mean() > 50


def test_vggface_pipeline_on_the_astronaut_video(astronaut_video, mtcnn, vggface_file):
    model = video.load_vggface(vggface_file)
    grid, values, face_rate = video.extract_vggface(astronaut_video, mtcnn, model)
    assert grid.tolist() == list(range(0, 4000, 500))
    assert values.shape == (8, 512) and face_rate == 1.0 and np.isfinite(values).all()


def test_black_video_gives_nan_rows_and_no_audio_warning(silent_video, vggface_file, tmp_path):
    cfg = ExtractConfig(vggface_weights=vggface_file, features=("egemaps", "vggface"))
    with pytest.warns(UserWarning, match="no audio track"):
        res = extract_file(video=silent_video, config=cfg)
    assert list(res) == ["vggface"] and res.face_rate == 0.0
    ts, vals = res["vggface"]
    assert np.isnan(vals).all() and ts.tolist() == list(range(0, 3000, 500))


def test_extract_files_with_video_writes_every_feature(astronaut_video, vggface_file, tmp_path, monkeypatch):
    torch.manual_seed(0)
    wpath = tmp_path / "vggish.pth"
    from musefusion.features.audio import build_vggish

    torch.save(build_vggish().state_dict(), wpath)
    monkeypatch.setenv("MUSEFUSION_VGGISH_WEIGHTS", str(wpath))
    report = extract_files([Recording("v1", video=astronaut_video)], tmp_path,
                           ExtractConfig(vggface_weights=vggface_file, features=("egemaps", "vggish", "vggface")))
    assert report.loc[0, "features"] == "egemaps,vggish,vggface" and report.loc[0, "face_rate"] == 1.0
    for f, d in (("egemaps", 88), ("vggish", 128), ("vggface", 512)):
        ts, vals, _ = formats.read_feature_csv(tmp_path / "c3_muse_stress" / "feature_segments" / f / "v1.csv")
        assert vals.shape[1] == d and np.all(ts == np.arange(len(ts)) * 500)


def test_vggface_weights_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(video.VGGFACE_WEIGHTS_ENV, raising=False)
    with pytest.raises(MissingDataError, match="No VGG-Face weights file given.*vgg_face_dag.pth"):
        video.load_vggface()
    bad = {k: v for k, v in video.build_vggface().state_dict().items()}
    bad["conv5_3.weight"] = torch.zeros(512, 512, 1, 1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"bad.pth': 'conv5_3.weight' has shape \(512, 512, 1, 1\)"):
        video.load_vggface(tmp_path / "bad.pth")


def test_undecodable_video(tmp_path, vggface_file):
    path = tmp_path / "x.mp4"
    path.write_bytes(b"\x00" * 4096)
    with pytest.raises(DataFormatError, match="x.mp4"):
        extract_file(video=path, features=("vggface",), config=ExtractConfig(vggface_weights=vggface_file))


def test_vggface_bf16_is_close_to_fp32(vggface_file):
    model = video.load_vggface(vggface_file)
    faces = np.random.default_rng(0).uniform(0, 255, (2, 3, 224, 224)).astype(np.float32)
    a, b = video.embed_faces(faces, model), video.embed_faces(faces, model, bf16=True)
    assert b.dtype == np.float32 and b.shape == (2, 512)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98
