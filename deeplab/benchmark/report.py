"""The benchmark results as text (terminal) or Markdown (docs/benchmarks.md)."""

from __future__ import annotations

from deeplab.analysis.tables import format_table

_FORWARD_HEADERS = ["config", "size", "dtype", "mode", "median ms", "best ms", "images/s",
                    "GMAdds", "best GFLOP/s", "of peak", "of peak (median)", "first call s"]


def _forward_table(rows: list[dict], markdown: bool) -> str:
    return format_table(_FORWARD_HEADERS, [
        [r["config"], r["size"], r["dtype"], r["mode"], r["latency_ms"], r["best_latency_ms"],
         r["images_per_s"], r["gmadds"], r["best_gflops"], f"{100 * r['fraction_of_peak']:.1f}%",
         f"{100 * r['median_fraction_of_peak']:.1f}%", r["first_call_s"]]
        for r in rows], markdown)


def _goal_lines(goals: dict) -> list[str]:
    names = {
        "fraction_of_peak_float32": "Xception-65 v3+ OS 16 at 513, float32: fraction of the "
                                    "float32 matmul peak",
        "fraction_of_peak_mixed_bfloat16": "Xception-65 v3+ OS 16 at 513, mixed_bfloat16: "
                                           "fraction of the bfloat16 matmul peak",
        "vs_keras_hub_float32": "Xception-65 v3+ achieved GFLOP/s over keras-hub's, float32",
        "vs_keras_hub_mixed_bfloat16": "Xception-65 v3+ achieved GFLOP/s over keras-hub's, "
                                       "mixed_bfloat16",
    }
    lines = []
    for key, goal in goals.items():
        met = "met" if goal["median"] >= goal["target"] else "NOT met"
        lines.append(f"- {names.get(key, key)}: {goal['median']:.3f} (median of "
                     f"{goal['rounds']} interleaved rounds, range {goal['low']:.3f}-"
                     f"{goal['high']:.3f}; {goal['mode']}; target {goal['target']}): {met}")
    return lines


def _tflite_goal_lines(goals: dict) -> list[str]:
    lines = []
    for name, goal in goals.items():
        met = "met" if goal["median"] <= goal["target"] else "NOT met"
        lines.append(f"- our {goal['ours']} export over {goal.get('file', name)}: "
                     f"{goal['median']:.3f} "
                     f"({goal['ours_ms']} vs {goal['original_ms']} ms; median of "
                     f"{goal['rounds']} interleaved rounds, range {goal['low']:.3f}-"
                     f"{goal['high']:.3f}; {goal['threads']} threads; target <= "
                     f"{goal['target']}): {met}")
    return lines


def _kernel_lines(rows: list[dict], markdown: bool) -> list[str]:
    table = format_table(
        ["config", "size", "forward ms portable", "oneDNN", "ratio", "train ms portable",
         "oneDNN", "ratio", "forward, native dilated depthwise (oneDNN) ms",
         "space-to-batch / native"],
        [[r["config"], r["size"], r["portable"]["forward_ms"], r["onednn"]["forward_ms"],
          r["forward_portable_over_onednn"], r["portable"]["train_ms"], r["onednn"]["train_ms"],
          r["train_portable_over_onednn"], r["forward_native_dilation_ms"],
          r.get("forward_space_to_batch_over_native", "-")] for r in rows], markdown)
    first = rows[0]
    note = (f"Fastest of {first['rounds']} alternating rounds each; forward batch "
            f"{first['batch_size']}, train batch {first['train_batch_size']}; ratio = portable "
            "over oneDNN (> 1: portable slower). The last columns time, in the oneDNN child, "
            "the forward with single native dilated depthwise ops (what a run-time probe could "
            "pick) against the portable space-to-batch form that every graph runs.")
    if not all(r["onednn_active"] for r in rows):
        note += " oneDNN did NOT turn on in its child: the comparison is void."
    return [note, table]


def format_report(results: dict, markdown: bool = False) -> str:
    """All sections of a :func:`deeplab.benchmark.harness.run_benchmark` result."""
    h = "### " if markdown else ""
    machine = results["machine"]
    out = [f"{h}Machine",
           f"{machine['cpu']}, {machine['cores_available']} cores available, "
           f"{machine['memory_gb']} GB; {', '.join(machine['cpu_flags'])}; oneDNN "
           f"{'on' if machine.get('onednn') else 'off'} in the main process; load average "
           f"{machine['load_average_at_start']} at start, {results['load_average_at_end']} at "
           f"end; TF {machine['tensorflow']}, Keras "
           f"{machine['keras']}, Python {machine['python']}; run took {results['elapsed_s']} s.",
           "", f"{h}Matmul peak (same run)"]
    runs = results["peak_runs"]
    out += [f"- {d}: {p['gflops']} GFLOP/s ({p['size']}² matmul via {p['path']}, fastest call; "
            f"median {p['median_gflops']}); the better of the runs at the start "
            f"({runs['start'][d]['gflops']}) and at the end ({runs['end'][d]['gflops']})"
            for d, p in results["peaks"].items()]
    out += ["", f"{h}Forward (batch {results['settings']['batch_size']}, "
            f"{results['settings']['iterations']} timed calls after a warm-up; of peak = GFLOP/s "
            "over the matmul peak of the same dtype)",
            _forward_table(results["forward"], markdown)]
    peers = results.get("peers")
    if isinstance(peers, list):
        out += ["", f"{h}Peer", _forward_table(peers, markdown), "",
                "Our achieved GFLOP/s over the peer's (same dtype and mode; = throughput per "
                "GFLOP of the model, relative):",
                format_table(["config", "size", "dtype", "mode", "ours / keras-hub (best)",
                              "(median)"],
                             [[r["config"], r["size"], r["dtype"], r["mode"], r["ratio"],
                               r["median_ratio"]] for r in results["peer_ratios"]], markdown)]
    elif peers:
        out += ["", f"{h}Peer", f"skipped: {peers['skipped']}"]
    if results.get("goals"):
        out += ["", f"{h}Goals"] + _goal_lines(results["goals"])
    train = results.get("train")
    if train:
        out += ["", f"{h}Train step",
                f"{train['config']} {train['dtype']} {train['size'][0]}x{train['size'][1]}, batch "
                f"{train['batch_size']}: {train['step_ms']} ms/step, {train['images_per_s']} "
                f"images/s; peak tensor memory {train['peak_tensor_mb']} MB (TF's CPU allocator, "
                f"get_memory_info); peak RSS {train['peak_rss_mb']} MB (+{train['rss_growth_mb']}"
                " MB while building and training)"]
    kernels = results.get("kernels")
    if kernels:
        out += ["", f"{h}Portable kernels vs oneDNN (same machine, child processes)"]
        out += ([f"skipped: {kernels['skipped']}"] if "skipped" in kernels
                else _kernel_lines(kernels, markdown))
    pipeline = results.get("pipeline")
    if pipeline:
        text = (f"skipped: {pipeline['skipped']}" if "skipped" in pipeline else
                f"{pipeline['images_per_s']} images/s ({pipeline['crop_size']}² crops, batch "
                f"{pipeline['batch_size']}, {pipeline['batches']} batches; {pipeline['source']})")
        out += ["", f"{h}Input pipeline", text]
    if results.get("tflite"):
        out += ["", f"{h}TFLite (LiteRT interpreter, XNNPACK)", format_table(
            ["model", "input", "output", "threads", "latency ms"],
            [[r["model"], r.get("input", "-"), r.get("output", "-"), r.get("threads", "-"),
              r.get("latency_ms", r.get("skipped"))] for r in results["tflite"]], markdown)]
    goals = results.get("tflite_goals")
    if goals:
        out += ["", f"{h}TFLite goals (same network and weights as the original's file)"]
        out += [f"skipped: {goals['skipped']}"] if "skipped" in goals else _tflite_goal_lines(goals)
    text = "\n".join(out)
    return _blank_line_before_tables(text) if markdown else text


def _blank_line_before_tables(text: str) -> str:
    """Markdown renders a table only when a blank line separates it from the text above."""
    lines = []
    for line in text.split("\n"):
        if line.startswith("|") and lines and lines[-1] and not lines[-1].startswith("|"):
            lines.append("")
        lines.append(line)
    return "\n".join(lines)
