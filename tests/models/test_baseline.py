"""The ``baseline`` family against the MuSe 2021 baseline's architecture (lstappen/MuSe2021 model.py): the same
layers and shapes, and the same outputs as a packed ``nn.LSTM(bidirectional=True)`` on sequences of mixed length."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from musefusion import families
from musefusion.config import model_preset


class OfficialShape(nn.Module):
    """The baseline's regressor as its model.py describes it: bias-free input projection, packed bidirectional
    LSTM without dropout, Linear -> ReLU -> Linear head."""

    def __init__(self, d_in: int, d_rnn: int, layers: int, d_fc: int) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, d_rnn, bias=False)
        self.rnn = nn.LSTM(d_rnn, d_rnn, num_layers=layers, bidirectional=True, batch_first=True)
        self.fc_1 = nn.Linear(2 * d_rnn, d_fc)
        self.fc_2 = nn.Linear(d_fc, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.inp(x), lengths, batch_first=True, enforce_sorted=False)
        h = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])[0]
        return self.fc_2(torch.relu(self.fc_1(h))).squeeze(-1)


def _copy_into(ours: nn.Module, official: OfficialShape, layers: int) -> None:
    """Load the official weights into ours (layer k forward = weight_*_l{k}, backward = weight_*_l{k}_reverse)."""
    with torch.no_grad():
        ours.inp.weight.copy_(official.inp.weight)
        for k in range(layers):
            for direction, suffix in (("fwd", ""), ("bwd", "_reverse")):
                lstm = getattr(ours.rnn.layers[k], direction)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(lstm, f"{name}_l0").copy_(getattr(official.rnn, f"{name}_l{k}{suffix}"))
        ours.fc_1[0].weight.copy_(official.fc_1.weight)
        ours.fc_1[0].bias.copy_(official.fc_1.bias)
        ours.fc_2.weight.copy_(official.fc_2.weight)
        ours.fc_2.bias.copy_(official.fc_2.bias)


def test_stress_preset_has_the_official_layer_shapes():
    cfg = model_preset("baseline", **families.BASELINE_SETTINGS["stress"]["model"])
    model = families.family("baseline").build(cfg, 88)
    official = OfficialShape(88, 64, 4, 64)
    ours = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert ours["inp.weight"] == (64, 88) and "inp.bias" not in ours
    assert len(model.rnn.layers) == 4
    for k in range(4):
        for direction, suffix in (("fwd", ""), ("bwd", "_reverse")):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                assert ours[f"rnn.layers.{k}.{direction}.{name}_l0"] == \
                    tuple(getattr(official.rnn, f"{name}_l{k}{suffix}").shape)
    assert ours["fc_1.0.weight"] == (64, 128) and ours["fc_2.weight"] == (1, 64)
    assert float(model.fc_2.bias.detach()) == 0.0
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in official.parameters())


def test_outputs_match_a_packed_bidirectional_lstm_on_mixed_lengths():
    torch.manual_seed(0)
    layers = 2
    cfg = model_preset("baseline", hidden=32, lstm_layers=layers, fc_hidden=16)
    ours = families.family("baseline").build(cfg, 5).eval()
    official = OfficialShape(5, 32, layers, 16).eval()
    _copy_into(ours, official, layers)
    lengths = torch.tensor([40, 23, 7])
    x = torch.randn(3, 40, 5)
    mask = torch.arange(40)[None, :] < lengths[:, None]
    x = x * mask.unsqueeze(-1)  # padding as the windows carry it
    got, want = ours(x, mask), official(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(got[i, :n], want[i, :n], rtol=1e-5, atol=1e-5)
    # the backward direction really sees each sequence's own end: padding more steps changes nothing
    longer = torch.cat([x, torch.randn(3, 9, 5)], dim=1)
    mask2 = torch.cat([mask, torch.zeros(3, 9, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(ours(longer, mask2)[:, :40][mask], got[mask])


def test_reproduce_trains_the_baseline_rows_with_its_readme_settings(tmp_path):
    from musefusion.pipelines.reproduce import ReproduceConfig, run_config, unimodal_rows

    cfg = ReproduceConfig(root=tmp_path)
    assert [r for r in unimodal_rows(cfg) if r[2] == "baseline"] == [
        ("egemaps", "A", "baseline"), ("vggface", "V", "baseline"), ("bio", "B", "baseline")]
    rc = run_config(ReproduceConfig(root=tmp_path, profile="paper"), "vggface", "baseline", "valence")
    assert (rc.model.hidden, rc.model.lstm_layers, rc.train.lr, rc.train.batch_size) == (64, 4, 0.002, 1024)
    assert (rc.train.schedule.value, rc.train.early_stop, rc.data.hop_len, rc.data.win_len) == ("plateau", 15, 50, 300)
    assert (rc.train.epochs, rc.train.seeds) == (100, (1, 2, 3))
    quick = run_config(cfg, "vggface", "baseline", "valence")  # one seed at the profile's hop, same model and rate
    assert (quick.data.hop_len, quick.train.seeds, quick.train.lr, quick.model.lstm_layers) == (100, (1,), 0.002, 4)
    given = run_config(ReproduceConfig(root=tmp_path, seeds=(4, 5)), "vggface", "baseline", "valence")
    assert given.train.seeds == (4, 5)  # --seeds trains every row with them
    physio = run_config(ReproduceConfig(root=tmp_path, task="physio"), "vggish", "baseline", "anno12_EDA")
    assert (physio.model.hidden, physio.model.lstm_layers, physio.train.lr) == (32, 2, 0.005)
    # the paper's rows keep the profile's settings
    assert run_config(cfg, "egemaps", "lstm", "arousal").train.schedule.value == "paper"
    assert not [r for r in unimodal_rows(ReproduceConfig(root=tmp_path, baseline=False)) if r[2] == "baseline"]

