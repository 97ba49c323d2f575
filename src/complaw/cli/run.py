"""``complaw run``: one experiment end to end (load → evaluate → compress → evaluate → RFT → evaluate).

The recipe (torch, transformers, peft) is imported inside the command, so the CLI starts without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from complaw.errors import ComplawError

if TYPE_CHECKING:
    from complaw.recipe import ExperimentRecord

console = Console(width=None if Console().is_terminal else 120)
progress_console = Console(stderr=True)  # the spinner goes to stderr, the record to stdout


# Config fields as the flags that set them, for error messages.
_FLAGS = {"ratio": "--ratio", "rft.rft_samples": "--rft-samples", "rft.lr": "--rft-lr", "rft.rank": "--rft-rank",
          "rft.seq_len": "--seq-len", "eval.seq_len": "--seq-len", "eval.max_blocks": "--test-blocks",
          "eval.task_limit": "--task-limit", "seed": "--seed", "rft.seed": "--seed"}


#: Each flag as the config setting(s) it sets (a flag given on the command line wins over --config).
_SETTINGS: dict[str, tuple[str, ...]] = {
    "model": ("model",), "method": ("method",), "ratio": ("ratio",), "rft_samples": ("rft.rft_samples",),
    "rft_dataset": ("rft.dataset",), "rft_lr": ("rft.lr",), "rft_rank": ("rft.rank",),
    "seq_len": ("rft.seq_len", "eval.seq_len"), "test_data": ("eval.test_data",), "test_blocks": ("eval.max_blocks",),
    "task": ("eval.tasks",), "task_limit": ("eval.task_limit",), "include_path": ("eval.include_path",),
    "calibration": ("calibration",), "seed": ("seed", "rft.seed"), "device": ("device",), "dtype": ("dtype",),
    "trust_remote_code": ("trust_remote_code",), "allow_pickle": ("allow_pickle",),
}


def run_command(
    ctx: typer.Context,
    args: Annotated[list[str] | None, typer.Argument(
        help="The model (zoo:NAME, real:NAME, a .gguf file, a checkpoint directory, or a hub id), then any "
             "key=value overrides of the experiment config, e.g. ratio=0.4 rft.rft_samples=64 eval.tasks=[].",
        show_default=False, metavar="MODEL KEY=VALUE")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Experiment config (YAML: the fields of ExperimentConfig — model, method, ratio, "
        "method_options, rft, eval, runtime, …); flags and key=value overrides given here win over it.")] = None,
    method: Annotated[str, typer.Option("--method", "-m", help="Compression method (complaw methods).")] = "prunenet",
    ratio: Annotated[float, typer.Option("--ratio", "-r", help="The method's compression ratio in [0, 1).")] = 0.3,
    rft_samples: Annotated[int, typer.Option("--rft-samples", "-D", help="Recovery samples D (0: no RFT).")] = 0,
    rft_dataset: Annotated[str, typer.Option(help="Recovery data: zoo:rft, a .txt/.jsonl file or HF id.")] = "zoo:rft",
    rft_lr: Annotated[float, typer.Option(help="LoRA learning rate.")] = 1e-3,
    rft_rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    seq_len: Annotated[int, typer.Option(help="Tokens per sample (RFT and test blocks).")] = 128,
    test_data: Annotated[str, typer.Option(help="Test set for the intrinsic loss.")] = "zoo:test",
    test_blocks: Annotated[int, typer.Option(help="Test blocks of seq_len tokens.")] = 64,
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="lm-eval task (repeatable; default: zoo tasks).")] = None,
    no_tasks: Annotated[bool, typer.Option("--no-tasks", help="Skip zero-shot evaluation.")] = False,
    task_limit: Annotated[int, typer.Option(help="Items per task.")] = 200,
    include_path: Annotated[str | None, typer.Option(help="Directory of extra lm-eval task YAMLs.")] = None,
    no_runtime: Annotated[bool, typer.Option("--no-runtime", help="Skip the runtime measurement.")] = False,
    option: Annotated[list[str] | None, typer.Option("--option", help="Method option key=value (repeatable; "
                                                     "complaw methods METHOD lists them).")] = None,
    calibration: Annotated[str | None, typer.Option(help="Calibration data for calibration-based methods.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of compression and RFT.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on CUDA, fp32 on CPU, as compress and sweep), float32, bfloat16, float16.")] = "auto",
    trust_remote_code: Annotated[bool, typer.Option(help="Allow custom modelling code (off by default).")] = False,
    allow_pickle: Annotated[bool, typer.Option(
        "--allow-pickle", help="Read a checkpoint's pytorch_model.bin when it has no safetensors: loads pickled "
        ".bin weights, which can run arbitrary code; only for checkpoints you trust.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write the record as JSON here.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Run one experiment and print its record: base, compressed and recovered metrics.

    The experiment is the defaults, then --config (YAML), then the flags given, then key=value overrides.
    """
    from complaw import checks
    from complaw.cli.compress import parse_options
    from complaw.config import apply_overrides, has_dotted, read_tree, set_dotted
    from complaw.recipe import experiment_config, run_experiment
    from complaw.textdata import check_source

    seed = checks.seed(seed)
    args = list(args or [])
    model = args.pop(0) if args and "=" not in args[0] else None
    tree = read_tree(config, what="experiment config")[0] if config is not None else {}
    if has_dotted(tree, "seed") and not has_dotted(tree, "rft.seed"):  # one seed, as --seed and sweeps have it
        set_dotted(tree, "rft.seed", tree["seed"])
    for flag, keys in _SETTINGS.items():  # flags given on the command line win; their defaults fill the gaps
        value = model if flag == "model" else ctx.params[flag]
        if value is None or (flag == "task" and not value):  # typer gives an unset repeatable option as ()
            continue
        given_here = flag == "model" or ctx.get_parameter_source(flag).name == "COMMANDLINE"
        for key in keys:
            if given_here or not has_dotted(tree, key):
                set_dotted(tree, key, value)
    if no_tasks:
        set_dotted(tree, "eval.tasks", [])
    if no_runtime:
        set_dotted(tree, "runtime.enabled", False)
    if option:
        tree["method_options"] = {**tree.get("method_options", {}), **parse_options(option)}
    apply_overrides(tree, args, example="ratio=0.4 or rft.rft_samples=64")
    if "model" not in tree:
        raise ComplawError("no model given: complaw run MODEL …, or a model: entry in --config")
    cfg = experiment_config(tree, where=str(config) if config is not None else "complaw run",
                            flags=_FLAGS if config is None else None)
    # Inputs checked before any work, named by their flags (the recipe checks them again for the API).
    if cfg.eval.include_path is not None:
        checks.input_file(cfg.eval.include_path, "--include-path", directory=True)
    check_source(cfg.eval.test_data, "--test-data")
    check_source(cfg.calibration, "--calibration")
    if cfg.rft.rft_samples:
        check_source(cfg.rft.dataset, "--rft-dataset")
    if out is not None:  # the record never lands on an input or inside a model's checkpoint folder
        checks.output_path(out, "--out")
        checks.not_inside_checkpoint(out, "--out")
        for flag, source in (("--config", config), ("--test-data", cfg.eval.test_data),
                             ("--calibration", cfg.calibration), ("--rft-dataset", cfg.rft.dataset)):
            if isinstance(source, (str, Path)) and Path(source).exists():
                checks.not_the_input(out, source, "--out", f"the {flag} input")
    with progress_console.status(f"running {cfg.method} at r={cfg.ratio} on {cfg.model} (D={cfg.rft.rft_samples})"):
        record = run_experiment(cfg)
    # The experiment is done: if --out cannot be written now, the record goes to a fallback, never lost.
    written = checks.write_or_keep(record.save, out, "--out") if out is not None else None
    if json_out:
        typer.echo(record.model_dump_json(indent=2))
    else:
        print_record(record)
        if written:
            console.print(f"record written to {written}")
    if record.status != "success":
        raise typer.Exit(1)


def print_record(record: ExperimentRecord) -> None:
    c = record.config
    color = {"success": "green", "invalid": "yellow", "failed": "red"}[record.status]
    console.print(f"[{color}]{record.status}[/{color}]  {c.model}  {c.method} r={c.ratio}  D={c.rft.rft_samples}  "
                  f"hash {record.config_hash}")
    if record.error:
        console.print(record.error, style=color)
    t = Table()
    for col in ("model state", "params", "test loss", "ppl", "avg acc", "latency ms", "decode tok/s"):
        t.add_column(col, justify="right" if col != "model state" else "left")
    for name in ("base", "compressed", "recovered"):
        m = getattr(record, name)
        if m is None:
            continue
        t.add_row(name, f"{m.params:,}", f"{m.test_loss:.4f}", f"{m.perplexity:.2f}",
                  "–" if m.avg_acc is None else f"{m.avg_acc:.4f}",
                  "–" if m.prefill_latency_s is None else f"{1e3 * m.prefill_latency_s:.2f}",
                  "–" if m.decode_tokens_per_s is None else f"{m.decode_tokens_per_s:.1f}")
    console.print(t)
    if record.base is not None and record.base.tasks:
        from complaw.evaluate.extrinsic import saturated_tasks

        for task, why in saturated_tasks(record.base.tasks).items():
            console.print(f"{task}: {why}; the results store leaves it out of avg_acc (the table's avg acc "
                          "is lm-eval's over every task)")
    if record.compression:
        comp = record.compression
        s0, s = record.base_latency_s, record.compressed.prefill_latency_s if record.compressed else None
        rt = record.runtime
        if rt and rt.get("speedup"):
            speedup = (f"  prefill speedup {rt['speedup']:.2f}× (interleaved, {rt['rounds']} rounds, spread "
                       f"{rt['dispersion']:.0%}{', noisy' if rt['noisy'] else ''}; FLOP-ideal "
                       f"{rt['flop_ideal_speedup']:.2f}×)")
        else:
            speedup = f"  prefill speedup {s0 / s:.2f}× (paired)" if s0 and s else ""
        console.print(f"ratio {comp['ratio']}  measured param_reduction {comp['param_reduction']:.4f}  "
                      f"compression {comp['wall_time_s']:.1f}s{speedup}")
    if record.peak_rss_bytes is not None:
        cuda = (f", CUDA max allocated {record.cuda_max_allocated_bytes / 2**20:,.0f} MiB"
                if record.cuda_max_allocated_bytes is not None else "")
        console.print(f"{record.device} {record.dtype}: peak RSS {record.peak_rss_bytes / 2**20:,.0f} MiB"
                      f"{'' if record.peak_rss_exact else ' (sampled)'}{cuda}")
    if record.base and record.base.tasks:
        console.print("tasks: " + json.dumps({k: round(v.get("acc_norm", v["acc"]), 4)
                                              for k, v in (record.recovered or record.base).tasks.items()}))
