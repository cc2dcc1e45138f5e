"""eGeMAPS (openSMILE) and VGGish extraction on espeak-ng speech."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from musefusion.data.grid import step_grid
from musefusion.errors import CheckpointError, DataFormatError, MissingDataError
from musefusion.features import audio

SR = audio.AUDIO_SR_HZ


@pytest.fixture(scope="module")
def egemaps_out(speech_16k):
    grid = step_grid(len(speech_16k) / SR)
    values, cols = audio.extract_egemaps(speech_16k, SR, grid)
    return grid, values, cols


def test_egemaps_is_88d_on_the_grid(egemaps_out, speech_16k):
    grid, values, cols = egemaps_out
    assert values.shape == (len(grid), 88) and len(cols) == 88
    assert grid[0] == 0 and np.all(np.diff(grid) == 500) and grid[-1] <= len(speech_16k) / SR * 1000
    assert np.isfinite(values).all()


@pytest.mark.parametrize("k", [0, 3, -1])
def test_egemaps_rows_match_opensmile_called_on_that_window(egemaps_out, speech_16k, k):
    """The one-pass batch gives, for each step, exactly what openSMILE gives for that window alone."""
    grid, values, _ = egemaps_out
    window = audio.egemaps_windows(grid, len(speech_16k) / SR)[k]
    ref = audio.egemaps_smile(window[None]).process_signal(speech_16k, SR).to_numpy()[0]
    np.testing.assert_allclose(values[k], ref, rtol=1e-5, atol=1e-6)


def test_egemaps_close_to_opensmile_on_the_cropped_window(egemaps_out, speech_16k):
    """Against plain ``Smile.process_signal(start, end)`` on the window's samples, the level and spectral
    means agree; they differ only by LLD context at the window edges (pitch tracking, smoothing)."""
    import opensmile

    grid, values, cols = egemaps_out
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    windows = audio.egemaps_windows(grid, len(speech_16k) / SR)
    names = ["loudness_sma3_amean", "mfcc1_sma3_amean", "spectralFlux_sma3_amean", "hammarbergIndexV_sma3nz_amean"]
    idx = [cols.index(n) for n in names]
    for k in (4, 6, 8):
        ref = smile.process_signal(speech_16k, SR, start=windows[k, 0], end=windows[k, 1])
        np.testing.assert_allclose(values[k, idx], ref[names].to_numpy()[0], rtol=0.15, atol=0.5)


def test_egemaps_window_option_changes_edges():
    w = audio.egemaps_windows(np.array([0, 5000]), 10.0, win_s=4.0)
    assert w.tolist() == [[0.0, 2.0], [3.0, 7.0]]


def test_egemaps_refuses_too_short_audio():
    with pytest.raises(DataFormatError, match="at least 0.5 s"):
        audio.extract_egemaps(np.ones(1000, np.float32) * 0.1, SR, np.array([0]))


@pytest.mark.parametrize("signal", [np.zeros(16000, np.float32), np.zeros(0, np.float32)])
def test_silent_or_empty_audio_is_refused(signal):
    with pytest.raises(DataFormatError, match="silent|no samples"):
        audio.check_audible(signal, "x.wav")


# ----------------------------------------------------------------------------------------------- VGGish


def _librosa_log_mel(x: np.ndarray) -> np.ndarray:
    """Independent reference: librosa STFT magnitude + HTK mel filterbank (triangles in Hz, not mel)."""
    import librosa

    # librosa centres the 400-sample window inside each 512-sample frame: shift by 56 samples to start frames
    # where VGGish starts them.
    spec = np.abs(librosa.stft(np.pad(x.astype(np.float64), (56, 0)), n_fft=512, hop_length=160,
                               win_length=400, window="hann", center=False))
    mel = librosa.feature.melspectrogram(S=spec, sr=SR, n_fft=512, n_mels=64, fmin=125, fmax=7500, htk=True,
                                         norm=None, power=1.0)
    return np.log(mel.T + 0.01)


def test_vggish_frontend_matches_librosa(speech_16k):
    ours = audio.vggish_log_mel(speech_16k)
    ref = _librosa_log_mel(speech_16k)
    n = min(len(ours), len(ref))
    assert abs(len(ours) - len(ref)) <= 1 and n > 500
    diff = np.abs(ours[:n] - ref[:n])
    # the only difference is the triangle shape (linear in mel vs in Hz within each band): < 0.02 in log units
    assert diff.max() < 0.02 and diff.mean() < 0.003


def test_vggish_frontend_resamples_other_rates(speech_16k):
    import librosa

    x22 = librosa.resample(speech_16k, orig_sr=SR, target_sr=22050)
    a, b = audio.vggish_log_mel(speech_16k), audio.vggish_log_mel(x22, 22050)
    n = min(len(a), len(b))
    assert np.median(np.abs(a[:n] - b[:n])) < 0.1


def test_vggish_patches_are_centred_around_each_step(speech_16k):
    grid = step_grid(len(speech_16k) / SR)
    patches, centres = audio.vggish_patches(speech_16k, SR, grid)
    assert patches.shape[1:] == (96, 64)
    np.testing.assert_allclose(centres[:3], [-125, 125, 375])
    assert centres[-1] >= grid[-1] + 125


@pytest.fixture(scope="module")
def vggish_file(tmp_path_factory):
    """A random-init VGGish state dict written with torch.save."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "vggish.pth"
    torch.save(audio.build_vggish().state_dict(), path)
    return path


def test_vggish_loads_weights_and_gives_128d_on_the_grid(vggish_file, speech_16k):
    model = audio.load_vggish(vggish_file)
    grid = step_grid(len(speech_16k) / SR)
    values, cols = audio.extract_vggish(speech_16k, SR, grid, model)
    assert values.shape == (len(grid), 128) and cols[0] == "vggish_0"
    assert np.isfinite(values).all() and values.std(axis=0).max() > 0


def test_vggish_loads_safetensors_and_env(tmp_path, monkeypatch, vggish_file):
    from safetensors.torch import save_file

    state = torch.load(vggish_file, weights_only=True)
    path = tmp_path / "vggish.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    monkeypatch.setenv(audio.VGGISH_WEIGHTS_ENV, str(path))
    model = audio.load_vggish()
    assert torch.equal(model.state_dict()["embeddings.4.weight"], state["embeddings.4.weight"])


class _Payload:
    """Any pickled object (``weights_only`` refuses to rebuild it)."""

    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_vggish_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _Payload()}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        audio.load_vggish(path)


def test_vggish_refuses_wrong_shapes(tmp_path, vggish_file):
    state = torch.load(vggish_file, weights_only=True)
    state["embeddings.4.weight"] = torch.zeros(64, 4096)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"'embeddings.4.weight' has shape \(64, 4096\)"):
        audio.load_vggish(path)


def test_vggish_refuses_other_networks(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="does not fit the network"):
        audio.load_vggish(path)


def test_vggish_missing_weights_names_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(audio.VGGISH_WEIGHTS_ENV, raising=False)
    with pytest.raises(MissingDataError, match="No VGGish weights file given.*vggish-10086976.pth"):
        audio.load_vggish(None)
    with pytest.raises(MissingDataError, match="nope.pth' not found"):
        audio.load_vggish(tmp_path / "nope.pth")


def test_corrupt_weights_file(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a torch file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CheckpointError, match="junk.pth"):
            audio.load_vggish(path)
