"""``musefusion extract``: features from raw recordings, written in the MuSe corpus layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text

from musefusion import fsutil, rundir
from musefusion.cli.options import JsonOpt, QuietOpt, TaskOpt
from musefusion.cli.parsing import Command
from musefusion.errors import ConfigError
from musefusion.features.audio import EGEMAPS_WIN_S
from musefusion.features.extract import (
    ExtractConfig,
    Recording,
    extract_files,
    recordings_from_manifest,
    recordings_in_folder,
)
from musefusion.pipelines.recording import OBSERVED, plot_curves
from musefusion.pipelines.recording import predict_recording as predict
from musefusion.progress import out as console
from musefusion.progress import result
from musefusion.types import Task

FileOpt = Optional[Path]  # noqa: UP045 - typer needs Optional here


VggishWeightsOpt = Annotated[FileOpt, typer.Option("--vggish-weights", help="VGGish state dict (.pth or "
                                                 ".safetensors); default $MUSEFUSION_VGGISH_WEIGHTS.")]
VggfaceWeightsOpt = Annotated[FileOpt, typer.Option("--vggface-weights", help="VGG-Face state dict (.pth or "
                                                  ".safetensors); default $MUSEFUSION_VGGFACE_WEIGHTS.")]
MtcnnWeightsOpt = Annotated[FileOpt, typer.Option("--mtcnn-weights", help="Folder with MTCNN pnet.pt, rnet.pt, "
                                                "onet.pt; default: the facenet-pytorch package's.")]
Bf16Opt = Annotated[bool, typer.Option("--vggface-bf16", help="Run VGG-Face in bfloat16 (about 2x faster on CPUs "
                                       "with native bf16; ~3 significant digits).")]
BioTimeUnitOpt = Annotated[str, typer.Option("--bio-time-unit", help="Unit of a bio CSV's time column: auto, s or "
                                              "ms (WFDB/EDF records carry their sampling rates).")]
EcgChannelOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045 - typer needs Optional here
    "--ecg-channel", metavar="NAME", help="ECG signal of a WFDB/EDF record (or column of a bio CSV), by name, any "
    "case; default: the first channel named like ECG/EKG, 'Lead ...' or a lead (I, II, MLII, V1-V6, ...).")]
RespChannelOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045 - typer needs Optional here
    "--resp-channel", metavar="NAME", help="Respiration signal of a WFDB/EDF record (or column of a bio CSV), by "
    "name, any case; default: the first channel whose name holds resp, rsp, breath, thor, chest, abdo or airflow.")]
EgemapsWinOpt = Annotated[float, typer.Option("--egemaps-win-s", help="eGeMAPS window centred on each 500 ms step, "
                                                                      "seconds.")]
AudioOpt = Annotated[FileOpt, typer.Option(help="Audio file (wav, flac, mp3, ...).")]
VideoOpt = Annotated[FileOpt, typer.Option(help="Video file: frames for vggface, audio track for audio features "
                                                "when --audio is not given.")]
BioOpt = Annotated[FileOpt, typer.Option(help="Raw ECG/respiration: a CSV with a time column (s or ms) and ecg "
                                              "and/or resp columns, a WFDB record's .hea header (its .dat beside "
                                              "it), or an EDF/BDF file.")]


def extract(
    out: Annotated[Path, typer.Option("--out", help="Data root; writes OUT/<corpus>/feature_segments/<feature>/<id>.csv.")],
    audio: AudioOpt = None,
    video: VideoOpt = None,
    bio: BioOpt = None,
    sid: Annotated[Optional[str], typer.Option("--id", help="Subject id (output file name); default: the "  # noqa: UP045
                                                            "first input's file stem.")] = None,
    input_dir: Annotated[FileOpt, typer.Option("--input-dir", help="Folder of recordings grouped by stem: "
                                                                   "<id>.wav / <id>.mp4 / <id>.csv, .hea, .edf "
                                                                   "or .bdf.")] = None,
    manifest: Annotated[FileOpt, typer.Option(help="CSV with columns id,audio,video,bio (paths relative to it).")]
    = None,
    task: TaskOpt = Task.STRESS,
    features: Annotated[list[str] | None, typer.Option(
        help="Feature sets, space- or comma-separated: egemaps, vggish, vggface, ECG, resp, BPM, bio. Default: the "
             "task's paper features (stress: egemaps vggface bio; physio: vggish vggface bio) that the inputs "
             "allow; one whose weights file is missing is skipped with a warning naming the file.",
        show_default=False)] = None,
    egemaps_win_s: EgemapsWinOpt = EGEMAPS_WIN_S,
    vggish_weights: VggishWeightsOpt = None,
    vggface_weights: VggfaceWeightsOpt = None,
    mtcnn_weights: MtcnnWeightsOpt = None,
    vggface_bf16: Bf16Opt = False,
    bio_time_unit: BioTimeUnitOpt = "auto",
    ecg_channel: EcgChannelOpt = None,
    resp_channel: RespChannelOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Re-extract ids whose outputs already exist.")] = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Extract eGeMAPS, VGGish, VGG-Face and ECG/resp/BPM features onto the 500 ms grid.

    Example: `musefusion extract --audio talk.wav --video talk.mp4 --bio talk_ecg.csv --id 1 --out mycorpus`.
    """
    rundir.check_data_root(out)
    single = [p for p in (audio, video, bio) if p is not None]
    if sum(bool(x) for x in (single, input_dir, manifest)) != 1:
        raise ConfigError("Give exactly one of: --audio/--video/--bio (one recording), --input-dir or --manifest.")
    cfg = ExtractConfig(features=tuple(features or ()), task=task,
                        egemaps_win_s=egemaps_win_s, vggish_weights=vggish_weights, vggface_weights=vggface_weights,
                        mtcnn_weights=mtcnn_weights, vggface_bf16=vggface_bf16, bio_time_unit=bio_time_unit,
                        ecg_channel=ecg_channel, resp_channel=resp_channel, overwrite=overwrite)
    if input_dir is not None:
        recordings = recordings_in_folder(input_dir)
    elif manifest is not None:
        recordings = recordings_from_manifest(manifest)
    else:
        recordings = [Recording(sid or single[0].stem, audio=audio, video=video, bio=bio)]
    report = extract_files(recordings, out, cfg, verbose=True)
    done = report[report["status"] == "extracted"]
    skipped = len(report) - len(done)
    console.print(f"extracted {len(done)} recording(s)"
                  + (f"; skipped {skipped} already done (--overwrite to redo)" if skipped else "") + "; corpus:",
                  markup=False)
    console.print(Text(str(out / task.corpus_dirs[0]), style="bold"))
    for row in done.itertuples():
        face = "" if row.face_rate != row.face_rate else f", face in {row.face_rate:.0%} of steps"
        console.print(Text(f"  {row.id}: {row.features} ({row.n_steps} steps{face})"))
    result({"corpus": str(out / task.corpus_dirs[0]), "recordings": report.to_dict(orient="records")})


def predict_recording(
    model: Annotated[list[Path], typer.Option("--model", help="Trained run directory: a unimodal run (musefusion "
                                              "train) or a fusion run (musefusion fuse / reproduce); repeat for "
                                              "several targets.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Output folder: curves.csv and curves.png.")]
    = Path("curves"),
    audio: AudioOpt = None,
    video: VideoOpt = None,
    bio: BioOpt = None,
    egemaps_win_s: EgemapsWinOpt = EGEMAPS_WIN_S,
    vggish_weights: VggishWeightsOpt = None,
    vggface_weights: VggfaceWeightsOpt = None,
    mtcnn_weights: MtcnnWeightsOpt = None,
    vggface_bf16: Bf16Opt = False,
    bio_time_unit: BioTimeUnitOpt = "auto",
    ecg_channel: EcgChannelOpt = None,
    resp_channel: RespChannelOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Emotion curves for a new recording: extract the features the models need, run them, write CSV + PNG.

    Example: `musefusion predict-recording --model runs/egemaps-lstm --audio talk.wav --out curves`.
    """
    if audio is None and video is None and bio is None:
        raise ConfigError("Give at least one recording: --audio, --video and/or --bio.")
    cfg = ExtractConfig(egemaps_win_s=egemaps_win_s, vggish_weights=vggish_weights, vggface_weights=vggface_weights,
                        mtcnn_weights=mtcnn_weights, vggface_bf16=vggface_bf16, bio_time_unit=bio_time_unit,
                        ecg_channel=ecg_channel, resp_channel=resp_channel)
    runs = [m for m in model if (m / rundir.CONFIG_FILE).is_file()]  # a folder that is not a run: predict says so
    rundir.check_out(out, "curves", can_overwrite=False, inputs=[*runs, *(p for p in (audio, video, bio) if p)])
    curves = predict(model, audio=audio, video=video, bio=bio, extract_config=cfg)
    name = next(p for p in (audio, video, bio) if p is not None).name
    out.mkdir(parents=True, exist_ok=True)
    with fsutil.atomic_path(out / "curves.csv") as tmp:
        curves.to_csv(tmp, index=False, float_format="%.6g")
    plot_curves(curves, out / "curves.png", title=f"{name}: predicted curves")
    columns = [c for c in curves.columns[1:] if not c.endswith(f" {OBSERVED}")]
    targets = ", ".join(columns)
    lacking = {c: float((curves[f"{c} {OBSERVED}"] < 1).mean()) for c in columns}
    if any(lacking.values()):  # said, not hidden: those steps lean on fill values
        console.print("; ".join(f"{c}: {v:.0%} of the steps lack some of its features" for c, v in lacking.items()
                                if v) + f" (the '{OBSERVED}' columns of curves.csv, shaded in curves.png)",
                      markup=False)
    console.print(f"{targets} over {len(curves) * 0.5:.1f} s written to", markup=False)
    console.print(Text(str(out / "curves.csv"), style="bold"))
    console.print(Text(str(out / "curves.png"), style="bold"))
    result({"curves": str(out / "curves.csv"), "plot": str(out / "curves.png"), "targets": columns,
            "seconds": len(curves) * 0.5})


def register(app: typer.Typer) -> None:
    """Add ``extract`` and ``predict-recording`` to the app."""
    app.command("extract", cls=Command)(extract)
    app.command("predict-recording", cls=Command)(predict_recording)
