"""What a reproduction runs: :class:`ReproduceConfig` (the experiment and how it executes) and the profiles'
numbers (:data:`PROFILES`). Its own module, below the pipeline and its report, so both read it typed."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import Any

from musefusion.config import Attention, ConfigBase, Precision, Sampler, enum_field
from musefusion.errors import ConfigError
from musefusion.pipelines.jobs import check_cluster_address
from musefusion.types import Normalise, SelectionRule, Task


class Profile(StrEnum):
    """How long ``reproduce`` trains (the numbers are in :data:`PROFILES`)."""

    QUICK = "quick"  # at most 30 epochs, early stop after 5 stale ones, 2 seeds (the peers: 1 seed to their own)
    PAPER = "paper"  # Sec. 5.2 as written
    DEMO = "demo"  # every stage once in about ten minutes: 1 seed, at most 25 epochs, 2 folds (`musefusion demo`)
    SMOKE = "smoke"  # tiny models, 2 epochs: a wiring check for tests


class Retrain(StrEnum):
    """Whether the fusion streams' test predictions come from models retrained on train+devel (Sec. 5.5)."""

    AUTO = "auto"  # as the paper: MuSe-Physio yes ("in this sub-challenge"), MuSe-Stress no
    YES = "yes"
    NO = "no"


class Stage(StrEnum):
    """Where ``reproduce`` stops."""

    ALL = "all"  # every table
    UNIMODAL = "unimodal"  # after the unimodal tables (Tables 2/3)


@dataclasses.dataclass(frozen=True)
class ProfileSettings:
    """The numbers of a profile (:data:`PROFILES`): how every row, fold and fusion of a reproduction trains."""

    epochs: int  # the rows' epochs at most
    seeds: tuple[int, ...]  # every row's seeds (the peers: ``peer_seeds`` where given)
    hop_len: int  # the rows' window hop (steps)
    folds: int  # train-subject folds of the fusion streams' out-of-fold predictions
    fusion_epochs: int  # the fusion Bi-LSTM's epochs at most
    fusion_hop: int  # the fusion's window hop (steps)
    peer_epochs: int  # a peer row (the baseline, at its own settings) at most this many epochs
    early_stop: int = 0  # stop after this many epochs without a better devel CCC (0: never)
    win_len: int = 300  # every row's and fusion's window length (steps)
    peer_seeds: tuple[int, ...] | None = None  # the peers' seeds (None: ``seeds``)
    peer_windows: bool = False  # the peers train on their own windows (else the profile's)
    lr: float | None = None  # every row's learning rate (None: TrainConfig's)
    batch_size: int | None = None  # every row's batch (None: TrainConfig's)
    small: bool = False  # tiny models (hidden 16): a wiring check for tests

    def train_overrides(self) -> dict[str, Any]:
        """The TrainConfig / FusionConfig fields the profile sets (learning rate and batch where it gives them)."""
        return {k: v for k, v in (("lr", self.lr), ("batch_size", self.batch_size)) if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """Every number, tuples as lists (TOML), unset ones left out (the report's provenance)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
                if v is not None}


#: Profiles: ``quick`` trains the whole stress reproduction to convergence in about 35 minutes on 2 cores (the peers
#: included); ``paper`` is Sec. 5.2.
PROFILES: dict[Profile, ProfileSettings] = {
    # peer rows (the baseline): at most peer_epochs (their early stop usually ends them sooner), peer_seeds (the
    # profile's when absent), and their own windows only with peer_windows (else the profile's)
    Profile.QUICK: ProfileSettings(epochs=30, early_stop=5, seeds=(1, 2), hop_len=100, folds=3, fusion_epochs=10,
                                   fusion_hop=25, peer_epochs=100, peer_seeds=(1,)),
    Profile.PAPER: ProfileSettings(epochs=100, seeds=(1, 2, 3), hop_len=50, folds=5, fusion_epochs=20, fusion_hop=25,
                                   peer_epochs=100, peer_windows=True),
    # the first run of a new user (`musefusion demo`, on a corpus of 24/8/8 subjects x 3 min): every stage once.
    # A 3-minute recording holds one 300-step window at hop 100, so an epoch is 24 windows: batches of 8 give the
    # rows a few updates per epoch at the same cost, and the fusion's hop of 5 steps gives its Bi-LSTM enough windows.
    Profile.DEMO: ProfileSettings(epochs=25, early_stop=4, seeds=(1,), hop_len=100, batch_size=8, folds=2,
                                  fusion_epochs=20, fusion_hop=5, peer_epochs=30, peer_seeds=(1,)),
    # for tests and smoke runs only
    Profile.SMOKE: ProfileSettings(epochs=2, seeds=(1,), hop_len=50, folds=2, fusion_epochs=2, fusion_hop=30,
                                   win_len=60, peer_epochs=2, small=True),
}


@dataclasses.dataclass(frozen=True)
class ReproduceConfig(ConfigBase):
    """What ``reproduce`` runs."""

    root: Path  # data root
    task: Task = Task.STRESS  # stress: Tables 2, 4, 6; physio: Tables 3, 5, 6
    profile: Profile = Profile.QUICK  # quick | paper | smoke
    workers: int = 2  # parallel training processes (one torch thread each)
    test_labels: Path | None = None  # folder with true test labels (Table 6 only)
    row_configs: tuple[str, ...] = ()  # TOML files (e.g. from `sweep report`) overriding rows' model/train settings
    seeds: tuple[int, ...] = ()  # overrides the profile's seeds when given
    stage: Stage = Stage.ALL  # all | unimodal (stop after the unimodal tables)
    all_models: bool = False  # also train every model family on every feature set (an extra table)
    baseline: bool = True  # the MuSe 2021 baseline on each of the task's feature sets, as peer rows
    overwrite: bool = False  # replace runs in `out` made with another config (same-config runs are still reused)
    retrain: Retrain = Retrain.AUTO  # final (train+devel) unimodal models for the test predictions; auto: physio only
    fusion_refit: bool = False  # refit each fusion model on train+devel streams for its test predictions
    attention: Attention = Attention.ENCODER  # the selfattn rows' attention: encoder | literal (Eq. 1-3) | transformer
    tune: bool = False  # an Optuna study per unimodal row over its Sec. 5.2 grid; the best config then trains
    tune_trials: int = 20  # COMPLETE + PRUNED trials per row's study
    tune_jobs: int = 1  # jobs working on each study at once (more than 1 pays on a cluster with spare workers)
    tune_sampler: Sampler = Sampler.TPE  # tpe | grid (every combination, at most tune_trials of them)
    storage: str | None = None  # the studies' database URL; default sqlite:///<out>/tune/study.db
    cluster: str | None = None  # a Dask scheduler address (tcp://host:8786): every job runs there
    precision: Precision = Precision.FP32  # the unimodal rows' training forward pass: fp32 | bf16 (autocast)
    beyond: bool = False  # also the later Ulm-TSST practice beside the paper pipeline (musefusion.pipelines.beyond)
    selection_rule: SelectionRule = SelectionRule.INTERVAL  # fusion selection: interval (knows its noise) | max
    normalise: Normalise = Normalise.TRAIN  # every row's feature normalisation: train | subject | none

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "task", enum_field("ReproduceConfig", "task", self.task, Task))
        object.__setattr__(self, "profile", enum_field("ReproduceConfig", "profile", self.profile, Profile))
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers} must be >= 1.")
        object.__setattr__(self, "stage", enum_field("ReproduceConfig", "stage", self.stage, Stage))
        object.__setattr__(self, "retrain", enum_field("ReproduceConfig", "retrain", self.retrain, Retrain))
        object.__setattr__(self, "attention", enum_field("ReproduceConfig", "attention", self.attention, Attention))
        object.__setattr__(self, "precision", enum_field("ReproduceConfig", "precision", self.precision, Precision))
        object.__setattr__(self, "selection_rule", enum_field("ReproduceConfig", "selection_rule", self.selection_rule,
                                                              SelectionRule))
        object.__setattr__(self, "tune_sampler", enum_field("ReproduceConfig", "tune_sampler", self.tune_sampler,
                                                            Sampler))
        object.__setattr__(self, "normalise", enum_field("ReproduceConfig", "normalise", self.normalise, Normalise))
        if self.tune_trials < 1 or self.tune_jobs < 1:
            raise ConfigError(f"--tune-trials {self.tune_trials} and --tune-jobs {self.tune_jobs} must be >= 1.")
        object.__setattr__(self, "seeds", tuple(int(x) for x in self.seeds))
        object.__setattr__(self, "row_configs", tuple(str(x) for x in self.row_configs))
        if self.cluster is not None:
            check_cluster_address(self.cluster)

    @property
    def retrains(self) -> bool:
        """Whether final (train+devel) models of the fusion streams are trained and feed the test predictions."""
        return self.retrain == Retrain.YES or (self.retrain == Retrain.AUTO and self.task == Task.PHYSIO)

    @property
    def settings(self) -> ProfileSettings:
        """The profile's numbers (with ``seeds`` overridden when given)."""
        s = PROFILES[self.profile]
        if self.seeds:  # given seeds train every row, the peers too
            return dataclasses.replace(s, seeds=self.seeds, peer_seeds=None)
        return s
