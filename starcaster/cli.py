"""``python -m starcaster``: the only module that parses command-line arguments.

Every subcommand maps user errors (``STARCasterError``) to one line on stderr and exit 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import InputError, STARCasterError

EXIT_USAGE = 2


# -- generate ---------------------------------------------------------------------------
def _add_generate(p: argparse.ArgumentParser) -> None:
    """The inputs, then one flag per ``GenerationRequest`` option that has one (request.py: help, range, default)."""
    from . import BUNDLED_CHECKPOINT

    p.add_argument("--checkpoint", default=BUNDLED_CHECKPOINT, help="local folder or Hub repo id[@revision]")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--audio", required=True, help="speech audio file (wav, mp3, flac, ogg, m4a, webm)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--image", help="reference portrait (identity + appearance)")
    who.add_argument("--embedding", help="identity embedding file (.npy, .pt, .safetensors, .json)")
    _add_request_flags(p)
    p.add_argument("--seed", type=int, default=0, help="seeds the noise (same seed, same frames) [default 0]")
    p.add_argument("--save-embedding", default=None, help="also save the identity embedding used (.npy)")
    p.add_argument("--out", required=True, help="output .mp4")


def _add_request_flags(p: argparse.ArgumentParser) -> None:
    from .request import DEFAULTS, cli_options, flag_help

    for name, spec in cli_options().items():
        default, text = DEFAULTS[name], flag_help(spec, DEFAULTS[name])
        if spec.kind is bool:
            action = "store_false" if default else "store_true"
            p.add_argument(spec.flag, dest=name, action=action, help=text)
        elif name == "avatar":
            avatar = p.add_mutually_exclusive_group()
            avatar.add_argument(spec.flag, dest=name, choices=spec.choices, default=default, help=text)
            avatar.add_argument(
                "--no-avatar", dest=name, action="store_const", const="never", help="same as --avatar never"
            )
        else:
            metavar = None if spec.choices else spec.flag.lstrip("-").upper().replace("-", "_")
            p.add_argument(
                spec.flag, dest=name, type=spec.kind, choices=spec.choices, default=default, metavar=metavar, help=text
            )


def generate_settings(args: argparse.Namespace) -> dict:
    """The ``GenerationRequest`` options a parsed ``generate`` command line asks for (no generator)."""
    from .request import cli_options

    settings = {name: getattr(args, name) for name in cli_options()}
    return dict(settings, audio=args.audio, identity_embedding=args.embedding, image=args.image)


def _run_generate(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from . import STARCasterPipeline
    from .identity import save_embedding
    from .video import VideoWriter

    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"--out must end in .mp4; got {out.name}.")
    pipe = STARCasterPipeline.from_pretrained(args.checkpoint, revision=args.revision)
    pipe.set_progress_bar_config(disable=True)
    run = pipe.start(generator=torch.Generator().manual_seed(args.seed), **generate_settings(args))
    for warning in run.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if run.avatar is not None:
        print(f"animating the photo's SynthTalk avatar ({run.avatar.description}); --no-avatar animates the photo")
    with (
        VideoWriter(out, run.fps, run.audio, audio_file=run.audio_file) as writer,
        tqdm(total=run.num_frames, unit="frame", desc="generating") as bar,
    ):
        for chunk in run.chunks:
            writer.write(chunk.frames)
            bar.update(len(chunk.frames))
    if args.save_embedding:
        save_embedding(run.identity_embedding, args.save_embedding)
    print(f"wrote {out} ({writer.frames_written} frames at {run.fps:g} fps)")
    return 0


# -- avatar -----------------------------------------------------------------------------
def _add_avatar(p: argparse.ArgumentParser) -> None:
    from . import BUNDLED_CHECKPOINT

    p.add_argument("image", help="a photo with one face (or a SynthTalk portrait)")
    p.add_argument("--out", required=True, help="the avatar's portrait (.png)")
    p.add_argument("--embedding", default=None, help="also save the avatar's identity embedding (.npy)")
    p.add_argument("--parameters", default=None, help="also save the avatar's head parameters (.json)")
    p.add_argument("--checkpoint", default=BUNDLED_CHECKPOINT, help="whose identity encoder embeds the avatar")


def _run_avatar(args: argparse.Namespace) -> int:
    import json

    from PIL import Image

    from . import STARCasterPipeline
    from .identity import save_embedding

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise InputError(f"--out must end in .png; got {out.name}.")
    pipe = STARCasterPipeline.from_pretrained(args.checkpoint)
    avatar = pipe.photo_to_avatar(args.image)
    for note in avatar.notes:
        print(f"note: {note}")
    Image.fromarray(avatar.portrait).save(out)
    if args.embedding:
        save_embedding(avatar.embedding, args.embedding)
    if args.parameters:
        Path(args.parameters).write_text(json.dumps(avatar.parameters(), indent=1) + "\n")
    print(f"{avatar.description} · domain score {avatar.domain_score:.2f} · {avatar.seconds:.2f} s")
    print(f"wrote {out}")
    return 0


# -- download ---------------------------------------------------------------------------
def _add_download(p: argparse.ArgumentParser) -> None:
    from . import HUB_CHECKPOINT

    p.add_argument(
        "repo_id", nargs="?", default=HUB_CHECKPOINT, help=f"Hub repo id[@revision] (default {HUB_CHECKPOINT})"
    )
    p.add_argument("--revision", default=None)
    p.add_argument("--variant", choices=["fp16"], default=None, help="fetch only the fp16 weight files (half the size)")


def _run_download(args: argparse.Namespace) -> int:
    from .hub import resolve_checkpoint

    print(resolve_checkpoint(args.repo_id, revision=args.revision, variant=args.variant))
    return 0


# -- push -------------------------------------------------------------------------------
def _add_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint folder to publish (e.g. checkpoints/starcaster-synth-live)")
    p.add_argument("repo_id", help="Hub model repo id (owner/name)")
    p.add_argument("--revision", default=None, help="branch to commit to (created if missing; default main)")
    p.add_argument("--tag", default=None, help="also tag the commit, to pin it as repo_id@TAG")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    p.add_argument(
        "--dry-run", action="store_true", help="print the files (with sizes) and the model card; upload nothing"
    )
    p.add_argument("--notes", default=None, help="model-card notes (default docs/model_cards/<folder name>.md)")
    p.add_argument(
        "--results", nargs="+", default=None, help="eval result JSONs for the card (default: the notes' list)"
    )
    p.add_argument("--stage-dir", default=None, help="keep the staged repo folder here (default: a temp folder)")
    p.add_argument(
        "--write-card", default=None, help="only write the folder's own model card to this path, e.g. its README.md"
    )


def _run_push(args: argparse.Namespace) -> int:
    from .publish import push_checkpoint

    push_checkpoint(
        Path(args.checkpoint),
        args.repo_id,
        revision=args.revision,
        tag=args.tag,
        private=args.private,
        create_pr=args.create_pr,
        dry_run=args.dry_run,
        notes=args.notes,
        results=args.results,
        stage_dir=args.stage_dir,
        write_card=args.write_card,
    )
    return 0


# -- deploy-space -----------------------------------------------------------------------
def _add_deploy_space(p: argparse.ArgumentParser) -> None:
    p.add_argument("space_id", help="Hub Space id (owner/name)")
    p.add_argument("--hardware", choices=["cpu-basic", "zero-a10g"], default="cpu-basic", help="CPU or ZeroGPU")
    p.add_argument("--private", action="store_true")
    p.add_argument(
        "--without-weights", action="store_true", help="leave checkpoints/ out: the Space loads HUB_CHECKPOINT"
    )
    p.add_argument("--dry-run", action="store_true", help="print the files (with sizes); upload nothing")


def _run_deploy_space(args: argparse.Namespace) -> int:
    from .space import deploy_space

    url = deploy_space(
        args.space_id,
        hardware=args.hardware,
        private=args.private,
        include_weights=not args.without_weights,
        dry_run=args.dry_run,
    )
    if url:
        print(f"Deployed: {url}")
    return 0


# -- convert ----------------------------------------------------------------------------
def _add_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("arc2face", help="folder with Arc2Face's arc2face/ (UNet) and encoder/ (CLIP) weights")
    p.add_argument("--out", required=True, help="output folder for the STARCasterUNet (safetensors)")


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import convert_arc2face

    report = convert_arc2face(Path(args.arc2face), Path(args.out))
    print(report.summary())
    return 0


# -- synth ------------------------------------------------------------------------------
def _add_synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (train/, val/, test/ shards + manifests)")
    p.add_argument("--clips", type=int, default=1000, help="monocular talking clips in train")
    p.add_argument("--multiview-sets", type=int, default=None, help="multi-view static sets in train (default clips/2)")
    p.add_argument("--eval-clips", type=int, default=None, help="clips per kind in val and test")
    p.add_argument("--seconds", type=float, default=2.0, help="train clip length")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)


def _run_synth(args: argparse.Namespace) -> int:
    from .data.synthtalk import SynthConfig, generate_dataset

    config = SynthConfig(
        out=Path(args.out),
        clips=args.clips,
        multiview_sets=args.multiview_sets,
        eval_clips=args.eval_clips,
        seconds=args.seconds,
        resolution=args.resolution,
        workers=args.workers,
        seed=args.seed,
    )
    print(f"wrote {generate_dataset(config)}")
    return 0


# -- train ------------------------------------------------------------------------------
def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="recipe YAML (configs/demo.yaml, configs/real.yaml)")
    p.add_argument(
        "--stage",
        default=None,
        help="run only this stage (vae, decoder, identity, prior, motion, reference, self_forcing, view, refiner)",
    )
    p.add_argument("--data", default=None, help="dataset folder (overrides the config)")
    p.add_argument("--out", default=None, help="run folder (overrides the config); re-running resumes")
    p.add_argument("--export", default=None, help="save the trained pipeline here (Hub-style folder)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (1 is much faster on a shared machine)")
    p.add_argument("--init-from", default=None, help="continue from a pipeline folder (e.g. the bundled checkpoint)")
    p.add_argument(
        "--components-from",
        default=None,
        help="take only the VAE and identity encoder from a pipeline folder; the video stages start fresh",
    )


def _run_train(args: argparse.Namespace) -> int:
    import torch

    from .training.config import load_config
    from .training.recipe import run

    if args.threads:
        torch.set_num_threads(args.threads)
    config_path = Path(args.config)
    if not config_path.is_file():
        raise InputError(f"Training config not found: {config_path}.")
    config = load_config(
        config_path, data=args.data, out=args.out, init_from=args.init_from, components_from=args.components_from
    )
    if not (config.data / "train" / "manifest.json").is_file():
        raise InputError(
            f"No SynthTalk data in {config.data}; make it with `python -m starcaster synth --out {config.data}`."
        )
    run(config, only=args.stage, export=Path(args.export) if args.export else None)
    return 0


# -- eval -------------------------------------------------------------------------------
def _add_eval(p: argparse.ArgumentParser) -> None:
    from . import BUNDLED_CHECKPOINT

    p.add_argument(
        "--checkpoint",
        default=BUNDLED_CHECKPOINT,
        help="folder or Hub repo id[@revision]; 'none' = only ceiling/floors",
    )
    p.add_argument("--revision", default=None)
    p.add_argument("--data", default="data/synthtalk", help="SynthTalk dataset folder")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument(
        "--mode", default="reference", choices=["reference", "embedding"], help="image+embedding, or embedding only"
    )
    p.add_argument("--max-clips", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None, help="cut test sequences to this length")
    p.add_argument(
        "--drift-seconds", type=float, default=0.0, help="also a long clip for identity_drift (60 in the protocol)"
    )
    p.add_argument("--guidance-camera", type=float, default=1.0, help="camera CFG scale of the model row")
    p.add_argument("--noise-sharing", type=float, default=1.0, help="shared starting noise of the model row")
    p.add_argument("--steps", type=int, default=None, help="denoising steps per chunk (default: the pipeline's)")
    p.add_argument("--chunk-length", type=int, default=None, help="frames per chunk (default: the pipeline's)")
    p.add_argument("--context-frames", type=int, default=None, help="KV-cache window (default: the pipeline's)")
    p.add_argument(
        "--no-identity-prior",
        action="store_true",
        help="embedding mode without the checkpoint's identity prior (the video model alone)",
    )
    p.add_argument("--no-refiner", action="store_true", help="model row without the checkpoint's frame refiner")
    p.add_argument("--out", default=None, help="write results JSON here")


def _run_eval(args: argparse.Namespace) -> int:
    import json

    from .eval.harness import EvalConfig, format_table, run_benchmark

    split_dir = Path(args.data) / args.split
    if not (split_dir / "manifest.json").is_file():
        raise InputError(
            f"No {args.split} split in {args.data}; make it with `python -m starcaster synth --out {args.data}`."
        )
    pipe = None
    if args.checkpoint.lower() != "none":
        from . import STARCasterPipeline

        pipe = STARCasterPipeline.from_pretrained(args.checkpoint, revision=args.revision)
        pipe.set_progress_bar_config(disable=True)
    config = EvalConfig(
        max_clips=args.max_clips,
        seconds=args.seconds,
        mode=args.mode,
        drift_seconds=args.drift_seconds,
        guidance_scale_camera=args.guidance_camera,
        noise_sharing=args.noise_sharing,
        use_identity_prior=not args.no_identity_prior,
        use_refiner=not args.no_refiner,
    )
    for name, value in (
        ("num_inference_steps", args.steps),
        ("chunk_length", args.chunk_length),
        ("context_frames", args.context_frames),
    ):
        if value is not None:
            setattr(config, name, value)
    results = run_benchmark(split_dir, pipe, config)
    print(format_table(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    return 0


# -- bench ------------------------------------------------------------------------------
def _add_bench(p: argparse.ArgumentParser) -> None:
    from . import BUNDLED_CHECKPOINT

    p.add_argument("--checkpoint", default=BUNDLED_CHECKPOINT, help="local checkpoint folder")
    p.add_argument("--durations", type=float, nargs="+", default=[2, 5, 10, 30, 60], help="audio lengths (s)")
    p.add_argument("--recompute-durations", type=float, nargs="+", default=[10, 30])
    p.add_argument("--chunk-lengths", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--full-durations", type=float, nargs="+", default=[2, 5, 10], help="full-sequence baseline lengths")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="generation precision: fp32 (exact) or bf16 autocast + bf16 attention (faster on CPUs with bf16 units)",
    )
    p.add_argument("--precision-seconds", type=float, default=10.0, help="clip length of the fp32-vs-bf16 section")
    p.add_argument("--out", default="docs/benchmarks", help="folder for bench.json, bench.md and bench.png")
    p.add_argument(
        "--realtime-only",
        action="store_true",
        help="only the live-serving figures: wall s per video s and first-chunk latency, new vs old defaults",
    )
    p.add_argument("--realtime-seconds", type=float, default=15.0, help="speech length of the realtime section")
    p.add_argument(
        "--baseline-checkpoint",
        default=None,
        help="realtime section: also time this checkpoint at the same defaults, interleaved, and run the old "
        "4-step path on it (e.g. the teacher a live student was distilled from)",
    )
    p.add_argument("--matmul-size", type=int, default=2048, help="torch.mm size behind the peak GFLOP/s figures")
    p.add_argument("--repeats", type=int, default=10, help="best-of count of the denoiser forward timings")
    p.add_argument("--profile", default=None, help="also write torch.profiler top-op tables to this file")


def _run_bench(args: argparse.Namespace) -> int:
    import json

    from .speed.streaming import BenchConfig, format_report, load, plot, profile_tables, run

    config = BenchConfig(
        checkpoint=args.checkpoint,
        durations=tuple(args.durations),
        recompute_durations=tuple(args.recompute_durations),
        chunk_lengths=tuple(args.chunk_lengths),
        full_sequence_durations=tuple(args.full_durations),
        threads=args.threads,
        precision=args.precision,
        precision_seconds=args.precision_seconds,
        matmul_size=args.matmul_size,
        repeats=args.repeats,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    realtime = _realtime(args, out)
    if args.realtime_only:
        return 0

    def save(partial: dict) -> None:
        partial["realtime"] = realtime
        (out / "bench.json").write_text(json.dumps(partial, indent=1, default=str))

    report = run(config, on_section=save)
    table = format_report(report)
    (out / "bench.md").write_text(table + "\n")
    plot(report, out / "bench.png")
    if args.profile:
        Path(args.profile).write_text(profile_tables(load(args.checkpoint, args.threads)))
    print(table)
    return 0


def _realtime(args: argparse.Namespace, out: Path) -> dict:
    """End-to-end live-serving figures (first in every bench run): ``realtime.json`` and a table."""
    import json

    from .speed.realtime import BASELINE, realtime_rows
    from .speed.streaming import load

    baseline = load(args.baseline_checkpoint, args.threads) if args.baseline_checkpoint else None
    rows = realtime_rows(load(args.checkpoint, args.threads), seconds=args.realtime_seconds, baseline=baseline)
    (out / "realtime.json").write_text(json.dumps(rows, indent=1))
    print(f"| setting | wall s per video s | first chunk s | CPU s per video s | ({rows['threads']} threads)")
    print("|---|---|---|---|")
    old_on = " (baseline checkpoint)" if rows["old_defaults_on"] == "baseline" else ""
    labels = {"default": "default", "old 4-step default": "old 4-step default" + old_on, BASELINE: BASELINE}
    for name, label in labels.items():
        if (row := rows.get(name)) is not None:
            wall, cpu = row["s_per_video_s"], row["cpu_s"] / row["video_s"]
            print(f"| {label} | {wall:.3f} | {row['first_chunk_s']:.2f} | {cpu:.2f} |")
    print(f"speed-up of the defaults over the old 4-step path: {rows['speed_up']:.2f}x")
    if baseline is not None:
        print(f"speed-up over the baseline checkpoint: {rows['speed_up_over_baseline']:.2f}x")
    return rows


# -- prepare ----------------------------------------------------------------------------
def _add_prepare(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", help="a video file or a folder of them (searched recursively)")
    p.add_argument("--out", required=True, help="dataset folder to write (shards + manifests); reruns resume")
    p.add_argument("--resolution", type=int, default=512, help="square crop size in pixels (the preset's)")
    p.add_argument("--detector", default="auto", choices=["auto", "scrfd", "dlib-hog"])
    p.add_argument("--sync", default="syncnet", choices=["syncnet", "synthtalk", "none"], help="sync expert")
    p.add_argument("--sync-weights", default=None, help="syncnet: Hub repo id or folder (default: checkpoints.md)")
    p.add_argument("--min-face", type=float, default=64.0, help="smallest face box side kept, source pixels")
    p.add_argument("--min-seconds", type=float, default=1.5)
    p.add_argument("--max-seconds", type=float, default=10.0, help="longer face tracks are split")
    p.add_argument("--val-fraction", type=float, default=0.0, help="share of source videos held out as val")
    p.add_argument("--workers", type=int, default=1, help="videos processed in parallel")


def _run_prepare(args: argparse.Namespace) -> int:
    from .prepare import PrepareConfig, TrackConfig, find_videos, prepare_dataset, summary_table

    try:
        videos = find_videos(Path(args.videos))
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from exc
    if not videos:
        raise InputError(f"No video files (.mp4, .mov, .mkv, .webm, ...) in {args.videos}.")
    if args.resolution < 16 or args.workers < 1 or not 0 <= args.val_fraction < 1:
        raise InputError("--resolution must be ≥ 16, --workers ≥ 1 and --val-fraction in [0, 1).")
    track = TrackConfig(min_face_px=args.min_face, min_seconds=args.min_seconds, max_seconds=args.max_seconds)
    config = PrepareConfig(
        out=Path(args.out), resolution=args.resolution, detector=args.detector, sync=args.sync,
        sync_source=args.sync_weights, val_fraction=args.val_fraction, workers=args.workers, track=track,
    )  # fmt: skip
    print(summary_table(prepare_dataset(videos, config)))
    return 0


# -- main -------------------------------------------------------------------------------
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {
    "generate": ("generate a talking-portrait video", _add_generate, _run_generate),
    "avatar": ("read a photo into a SynthTalk avatar (portrait, embedding, parameters)", _add_avatar, _run_avatar),
    "download": ("fetch a checkpoint from the Hub into the local cache", _add_download, _run_download),
    "deploy-space": ("deploy the demo app as a Hugging Face Space (one commit)", _add_deploy_space, _run_deploy_space),
    "push": ("publish a checkpoint folder as a Hub model repo, with a generated model card", _add_push, _run_push),
    "convert": (
        "convert Arc2Face weights (pickles read with weights_only) to a STARCaster UNet",
        _add_convert,
        _run_convert,
    ),
    "synth": ("generate SynthTalk training/evaluation data", _add_synth, _run_synth),
    "prepare": ("raw talking-head videos → training shards (faces, crops, sync)", _add_prepare, _run_prepare),
    "train": ("train STARCaster with the staged recipe", _add_train, _run_train),
    "eval": ("evaluate a checkpoint on SynthTalk (ceiling / floor / model table)", _add_eval, _run_eval),
    "bench": ("measure speed, memory and scaling of streaming generation", _add_bench, _run_bench),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starcaster", description="STARCaster: talking portraits by autoregressive video diffusion."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def _quiet_libraries() -> None:
    """Our own tqdm bars report progress; library loading bars would clutter stderr."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()


def _terminate_as_interrupt(signum, frame) -> None:
    """SIGTERM (a stopped job, a closed terminal) unwinds like Ctrl-C, so no partial file stays behind."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():  # signals can only be set there
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    _quiet_libraries()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return COMMANDS[args.command][2](args)
    except STARCasterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
