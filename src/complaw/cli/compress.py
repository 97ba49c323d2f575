"""CLI commands ``complaw compress`` and ``complaw methods``.

Each command is a thin wrapper over a plain function (:func:`run_compress`, :func:`method_table`) that
can be imported and tested without the CLI.

    $ complaw compress zoo:llama-m --method prunenet --ratio 0.3 --out out/llama-m-pn-0.3
    $ complaw compress ./my-model --method layer-drop --ratio 0.25 --option calibration=calib.txt --json
    $ complaw methods
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from complaw.errors import ComplawError


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` -> dict; values are read as JSON when they parse (numbers, true/false,
    null, lists), else kept as strings (paths, names). A value longer than
    :data:`~complaw.config.MAX_VALUE_BYTES`, nested deeper than :data:`~complaw.config.MAX_YAML_DEPTH` or holding
    a number JSON cannot read is refused before it is parsed into anything."""
    from complaw.config import MAX_VALUE_BYTES, MAX_YAML_DEPTH

    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        shown = repr(item if len(item) <= 60 else item[:60] + "…")
        if not sep or not key:
            raise ComplawError(f"--option {shown}: expected key=value, e.g. --option round_to=64")
        if len(value) > MAX_VALUE_BYTES:
            raise ComplawError(f"--option {shown}: the value has {len(value):,} characters, more than "
                               f"{MAX_VALUE_BYTES:,}; an option is a number, a name or a path")
        depth = deepest = 0
        for ch in value:  # brackets nested deeper than any option takes (the JSON parser would recurse)
            depth += (ch in "[{") - (ch in "]}")
            deepest = max(deepest, depth)
        if deepest > MAX_YAML_DEPTH:
            raise ComplawError(f"--option {shown}: nested more than {MAX_YAML_DEPTH} levels deep; an option is a "
                               "number, a name, a path or a short list")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
        except (ValueError, RecursionError) as err:  # an integer of more than 4,300 digits
            raise ComplawError(f"--option {shown}: the value cannot be read ({str(err).split(';')[0][:100]}); "
                               "give a number of ordinary size") from None
    return options


def _load_tokenizer(path: str):
    """The tokenizer stored next to a local checkpoint, or None when there is none."""
    if not Path(path).is_dir():
        return None
    if not any((Path(path) / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        return None
    from complaw.models import load_tokenizer

    return load_tokenizer(path)


def _check_family_early(method: str, model_id: str, path: str | None = None) -> None:
    """Refuse a method the model's family does not support before fetching or loading its weights.

    Without ``path`` (before resolving): ``real:NAME`` is checked from the real-model registry, so nothing is
    fetched for a refused method. With ``path`` (after resolving): any other checkpoint is checked from its
    ``config.json``; a hub id or a custom format is checked by compress() once loaded."""
    from types import SimpleNamespace

    from complaw.compress.registry import check_family

    model_type = None
    if path is None:
        if str(model_id).startswith("real:"):
            from complaw.zoo import real

            model_type = real.get(str(model_id)).model_type
    elif not str(model_id).startswith("real:") and (Path(path) / "config.json").is_file():
        try:
            model_type = json.loads((Path(path) / "config.json").read_text()).get("model_type")
        except (OSError, json.JSONDecodeError):
            return
    if model_type is not None:
        check_family(method, SimpleNamespace(model_type=model_type))


def check_option_files(options: dict[str, Any]) -> None:
    """Check the files that method options name before any work: ``calibration=`` must be a readable text
    file (or a zoo split / dataset id), ``policy=`` (PruneNet) a readable policy file or a writable new path."""
    from complaw.textdata import check_source

    check_source(options.get("calibration"), "calibration")
    if isinstance(options.get("policy"), (str, Path)):
        from complaw.compress.prunenet import check_policy_file

        check_policy_file(options["policy"])


def run_compress(model_id: str, method: str, ratio: float, *, seed: int = 0, out: str | Path | None = None,
                 options: dict[str, Any] | None = None, dtype: str | None = "auto", device: str | None = "auto",
                 allow_pickle: bool = False, overwrite: bool = False):
    """Load ``model_id``, compress it with ``method`` at ``ratio``, optionally save it to ``out``.

    Every input is checked before the model is loaded: method, ratio, seed, device, options and the files
    they name, ``out`` (writable, not the source directory or inside it, not inside another model's checkpoint,
    and holding no checkpoint or other files unless ``overwrite`` replaces a checkpoint), the model itself.

    Args:
        dtype, device: where and in which dtype to compute, by the rule ``complaw run`` and ``complaw sweep``
            follow too (:func:`~complaw.models.io.resolve_device`: ``auto`` is bf16 on CUDA, float32 on CPU,
            whatever the checkpoint's dtype); both are recorded in ``details`` and in ``out/complaw.json``.
        allow_pickle: read pickled ``.bin`` weights of a checkpoint without safetensors (unpickling can run
            arbitrary code; off by default).

    Returns:
        The :class:`~complaw.compress.CompressionRecord` (also written to ``out/complaw.json``).
    """
    from complaw import checks
    from complaw.compress import compress, get_method
    from complaw.compress.registry import check_options, check_ratio
    from complaw.models import load, save
    from complaw.models.io import check_model, dtype_name, resolve_device

    spec = get_method(method)  # fail on a typo or a bad ratio before loading a big model
    ratio = check_ratio(ratio)
    seed = checks.seed(seed)
    dev, dt = resolve_device(device, dtype)
    options = dict(options or {})
    check_options(method, options)
    check_option_files(options)
    if out is not None:
        if Path(model_id).expanduser().exists():
            checks.not_inside(out, model_id)  # compress DIR --out DIR/sub: named as the source, --overwrite or not
        checks.model_output_dir(out, "--out", overwrite=overwrite)
    _check_family_early(method, model_id)  # before a real model is fetched
    path = check_model(model_id, allow_pickle=allow_pickle)
    if out is not None and Path(path).exists():
        checks.not_inside(out, path)  # compress DIR --out DIR would overwrite the source
    _check_family_early(method, model_id, path)
    tokenizer = _load_tokenizer(path)
    if spec.needs_calibration and tokenizer is not None and "tokenizer" not in options:
        options["tokenizer"] = tokenizer
    try:
        model = load(model_id, dtype=dt, device=dev, allow_pickle=allow_pickle)
    except OSError as err:  # unreachable hub id, missing files: the user's input, not our bug
        raise ComplawError(f"model {model_id!r}: cannot be loaded ({str(err).splitlines()[0]})") from None
    model.eval()
    model, record = compress(model, method, ratio, seed=seed, **options)
    record.options.pop("tokenizer", None)
    record.details.update(model=str(model_id), device=str(dev), dtype=dtype_name(dt))
    if out is not None:
        save(model, out, record=record, tokenizer=tokenizer,
             extra={"base_model": str(model_id), "device": str(dev), "dtype": dtype_name(dt)})
        record.details["out"] = str(out)
    return record


def method_table() -> list[dict[str, Any]]:
    """Name, calibration need and description of every registered method."""
    from complaw.compress import available_methods

    return [
        {"name": s.name, "needs_calibration": s.needs_calibration, "description": s.description}
        for s in available_methods().values()
    ]


def _print_record(record) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{record.method} at ratio {record.ratio}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    kept = record.kept_per_layer
    kept_text = (f"{kept[0]} × {len(kept)} layers" if kept and len(set(kept)) == 1 else str(kept)) if kept else "-"
    rows = [
        ("method", record.method), ("ratio", f"{record.ratio:g}"), ("seed", str(record.seed)),
        ("params before", f"{record.params_before:,}"), ("params after", f"{record.params_after:,}"),
        ("param_reduction", f"{record.param_reduction:.4f}"), ("kept per layer", kept_text),
        ("wall time (s)", f"{record.wall_time_s:.2f}"),
        ("options", json.dumps(record.options, default=str) if record.options else "-"),
    ]
    for key, value in record.details.items():
        if isinstance(value, (list, dict)) and len(json.dumps(value, default=str)) > 80:
            value = json.dumps(value, default=str)[:77] + "..."
        rows.append((key, str(value)))
    for field, value in rows:
        table.add_row(field, value)
    Console().print(table)


def compress_command(
    model: str = typer.Argument(..., help="zoo:NAME, real:NAME (complaw zoo list), a .gguf file, a local checkpoint directory, or a hub id."),
    method: str = typer.Option("prunenet", "--method", "-m", help="Compression method (see `complaw methods`)."),
    ratio: float = typer.Option(..., "--ratio", "-r", help="The method's compression ratio in [0, 1)."),
    seed: int = typer.Option(0, "--seed", help="Seed for every random choice of the method."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Save the compressed model here (reloadable)."),
    option: list[str] = typer.Option([], "--option", help="Method option key=value (repeatable), e.g. round_to=64."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (bf16 on CUDA, fp32 on CPU, as run and sweep), float32, bfloat16, float16."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:N."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Read a checkpoint's pytorch_model.bin when it "
                                      "has no safetensors: loads pickled .bin weights, which can run arbitrary "
                                      "code; only for checkpoints you trust."),
    as_json: bool = typer.Option(False, "--json", help="Print the record as JSON."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the model checkpoint --out already holds "
                                   "(never the model being compressed)."),
) -> None:
    """Compress a model and print (and optionally save) its compression record."""
    record = run_compress(model, method, ratio, seed=seed, out=out, options=parse_options(option),
                          dtype=dtype, device=device, allow_pickle=allow_pickle, overwrite=overwrite)
    if as_json:
        typer.echo(json.dumps(record.to_dict(), indent=2, default=str))
    else:
        _print_record(record)


def methods_command(
    method: str | None = typer.Argument(None, help="A method: print its options (type, default, help).",
                                        show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the registered compression methods, or one method's options with their types, defaults and help."""
    from rich.console import Console
    from rich.table import Table

    if method is not None:
        from complaw.compress import get_method

        spec = get_method(method)  # an unknown name: one line naming the registered ones
        rows = spec.option_rows()
        if as_json:
            typer.echo(json.dumps({"name": spec.name, "needs_calibration": spec.needs_calibration,
                                   "description": spec.description, "options": rows}, indent=2))
            return
        console = Console(width=max(Console().width, 140))
        console.print(f"[bold]{spec.name}[/bold] — {spec.description}"
                      f"{' (needs calibration data)' if spec.needs_calibration else ''}", highlight=False)
        table = Table("option", "type", "default", "help")
        for row in rows:
            table.add_row(row["option"], row["type"], row["default"], row["help"])
        console.print(table)
        example = next((r for r in rows if r["default"] != "None"), rows[0]) if rows else None
        console.print(f"set with --option KEY=VALUE (compress, run) or method_options in a spec; e.g. --option "
                      f"{example['option']}={example['default'].strip(chr(39))}" if example else "no options",
                      highlight=False, markup=False)
        return
    rows = method_table()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("method", "calibration", "description")
    for row in rows:
        table.add_row(row["name"], "yes" if row["needs_calibration"] else "no", row["description"])
    Console().print(table)
    Console().print("options of one method: complaw methods METHOD", highlight=False)
