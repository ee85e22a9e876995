"""Turn the benchmark results into a summary JSON, a markdown report and
PNG plots.

conftest.py calls build_summary() and write_all() at the end of
`pytest benchmarks/`. Run on its own, this module redraws the table and
the plots from a saved summary:

    .venv/bin/python benchmarks/benchreport.py [results/summary.json]

Ratios compare medians. crun runs under a wrapper (crunwrap.c) that this
hybrid-cgroup host needs; "crun net" subtracts the wrapper's measured
cost once per crun invocation, and the ratios to crun use the net
figure, the one least flattering to pyrunc.
"""

import datetime
import json
import os
import platform
import subprocess
import sys

RUNTIMES = ("pyrunc-cli", "pyrunc-lib", "runc", "crun")
LABELS = {
    "pyrunc-cli": "pyrunc CLI",
    "pyrunc-lib": "pyrunc lib",
    "runc": "runc",
    "crun": "crun",
}
COLORS = {
    "pyrunc-cli": "#1f77b4",
    "pyrunc-lib": "#17becf",
    "runc": "#d62728",
    "crun": "#2ca02c",
}
MODES = ("back-to-back", "idle-50ms")
COMMANDS = ("create", "start", "state", "kill", "delete", "run",
            "lifecycle")
INVOCATIONS = {"lifecycle": 3}
RSS_COMMANDS = ("create", "start", "state", "kill", "delete")
FLOOR_GOAL_KIB = 512
# A sequential run is "flat" when its fitted cost changes by at most this
# share of the median from the first container to the last.
FLAT_PCT = 20


# Summary ------------------------------------------------------------------

def build_summary(bench, started=None, finished=None):
    """Everything the report needs, as plain JSON-able data."""
    settings = bench.settings
    meta = dict(bench.meta)
    started = started or meta.get("started")
    finished = finished or meta.get("finished")
    meta.update(
        date=datetime.datetime.fromtimestamp(
            started or 0, datetime.UTC).isoformat(
                timespec="seconds"),
        wall_s=(finished - started) if started and finished else None,
        kernel=platform.release(),
        cpus=os.cpu_count(),
        python=platform.python_version(),
        quick=settings.quick,
    )
    summary = {
        "meta": meta,
        "settings": settings.as_dict(),
        "runtimes": {
            rt.name: {"label": rt.label, "version": rt.version,
                      "error": rt.error,
                      "argv": getattr(rt, "argv", None)}
            for rt in bench.runtimes},
        "results": bench.results,
        "leaks": bench.leaks,
        "errors": bench.errors,
    }
    summary["derived"] = derive(summary)
    summary["targets"] = targets(summary)
    return summary


def _median(entry):
    if not entry or entry.get("error") or not entry.get("n"):
        return None
    return entry.get("median_ms")


def wrapper_overhead_ms(summary):
    wrapper = summary["results"].get("wrapper") or {}
    direct = _median(wrapper.get("direct"))
    wrapped = _median(wrapper.get("crunwrap"))
    if direct is None or wrapped is None:
        return None
    return wrapped - direct


def _ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def derive(summary):
    """Medians per command, crun net of its wrapper, and ratios."""
    overhead = wrapper_overhead_ms(summary)
    commands = summary["results"].get("commands") or {}
    out = {"wrapper_overhead_ms": overhead, "commands": {}}
    for mode, by_command in commands.items():
        rows = out["commands"].setdefault(mode, {})
        for command, by_rt in by_command.items():
            row = {name: _median(by_rt.get(name)) for name in RUNTIMES}
            crun = row.get("crun")
            net = None
            if crun is not None and overhead is not None:
                net = crun - overhead * INVOCATIONS.get(command, 1)
            row["crun-net"] = net
            for who in ("pyrunc-cli", "pyrunc-lib"):
                row[f"{who}/runc"] = _ratio(row.get(who), row.get("runc"))
                row[f"{who}/crun-net"] = _ratio(row.get(who), net)
            rows[command] = row
    out["peak_rss_kib"] = peak_rss(summary)
    return out


def peak_rss(summary):
    """Largest ru_maxrss per runtime and command, over both modes."""
    commands = summary["results"].get("commands") or {}
    table = {}
    for by_command in commands.values():
        for command, by_rt in by_command.items():
            for name, entry in by_rt.items():
                value = (entry or {}).get("rss_max_kib")
                if value is None:
                    continue
                cell = table.setdefault(name, {})
                cell[command] = max(cell.get(command, 0), value)
    for cell in table.values():
        values = [cell[c] for c in RSS_COMMANDS if c in cell]
        if values:
            cell["overall"] = max(values)
    return table


def targets(summary):
    """The goals of the issue, each with its ratio; never asserted."""
    derived = summary["derived"]
    rows = []

    def latency(name, command, who, ref, goal):
        for mode in MODES:
            row = (derived["commands"].get(mode) or {}).get(command)
            if not row:
                continue
            value = row.get(who)
            reference = row.get(ref)
            ratio = _ratio(value, reference)
            rows.append({
                "target": name, "mode": mode, "runtime": who,
                "value": value, "reference": reference,
                "reference_runtime": ref, "unit": "ms", "ratio": ratio,
                "goal": goal,
                "met": None if ratio is None else ratio <= goal,
            })

    latency("run /bin/true <= 0.8x runc", "run", "pyrunc-cli", "runc",
            0.8)
    latency("create+start+delete <= 1.5x runc", "lifecycle",
            "pyrunc-cli", "runc", 1.5)
    latency("state <= 3x runc", "state", "pyrunc-cli", "runc", 3.0)
    latency("library lifecycle faster than crun CLI lifecycle (net of "
            "wrapper)", "lifecycle", "pyrunc-lib", "crun-net", 1.0)
    latency("library lifecycle faster than crun CLI lifecycle (with "
            "wrapper)", "lifecycle", "pyrunc-lib", "crun", 1.0)

    rss = derived["peak_rss_kib"]
    mine = (rss.get("pyrunc-cli") or {}).get("overall")
    theirs = (rss.get("runc") or {}).get("overall")
    ratio = _ratio(mine, theirs)
    rows.append({
        "target": "runtime peak RSS <= runc's", "mode": "all",
        "runtime": "pyrunc-cli", "value": mine, "reference": theirs,
        "reference_runtime": "runc", "unit": "KiB", "ratio": ratio,
        "goal": 1.0, "met": None if ratio is None else ratio <= 1.0,
    })
    floors = (summary["results"].get("memory") or {}).get("floor") or {}
    for who in ("pyrunc-cli", "pyrunc-lib"):
        value = (floors.get(who) or {}).get("floor_kib")
        ratio = _ratio(value, FLOOR_GOAL_KIB)
        rows.append({
            "target": "container memory floor <= 512 KiB", "mode": "-",
            "runtime": who, "value": value, "reference": FLOOR_GOAL_KIB,
            "reference_runtime": "goal", "unit": "KiB", "ratio": ratio,
            "goal": 1.0, "met": None if ratio is None else ratio <= 1.0,
        })
    return rows


# Markdown -----------------------------------------------------------------

def _f(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.{digits}f}"
    return str(value)


def _x(value):
    return "-" if value is None else f"{value:.2f}x"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return lines


def _verdict(met):
    return {True: "met", False: "**missed**", None: "n/a"}[met]


def targets_table(summary):
    rows = []
    for t in summary["targets"]:
        ref = LABELS.get(t["reference_runtime"], t["reference_runtime"])
        rows.append((
            t["target"], t["mode"], LABELS.get(t["runtime"], t["runtime"]),
            f"{_f(t['value'])} {t['unit']}",
            f"{_f(t['reference'])} {t['unit']} ({ref})",
            _x(t["ratio"]), f"<= {t['goal']:g}x", _verdict(t["met"])))
    return _table(("target", "mode", "who", "value", "reference", "ratio",
                   "goal", "result"), rows)


def latency_table(summary, mode):
    rows_in = (summary["derived"]["commands"].get(mode) or {})
    results = (summary["results"].get("commands") or {}).get(mode) or {}
    rows = []
    for command in COMMANDS:
        row = rows_in.get(command)
        if not row:
            continue
        cells = [command]
        for name in RUNTIMES:
            entry = (results.get(command) or {}).get(name) or {}
            if entry.get("error"):
                cells.append("error")
            elif row.get(name) is None:
                cells.append("-")
            else:
                cells.append(f"{_f(row[name])} "
                             f"({_f(entry.get('q1_ms'))}-"
                             f"{_f(entry.get('q3_ms'))})")
        cells.append(_f(row.get("crun-net")))
        for key in ("pyrunc-cli/runc", "pyrunc-cli/crun-net",
                    "pyrunc-lib/runc", "pyrunc-lib/crun-net"):
            cells.append(_x(row.get(key)))
        rows.append(cells)
    return _table(("command", "pyrunc CLI", "pyrunc lib", "runc",
                   "crun (+wrapper)", "crun net", "CLI/runc", "CLI/crun",
                   "lib/runc", "lib/crun"), rows)


def rss_table(summary):
    rss = summary["derived"]["peak_rss_kib"]
    rows = []
    for command in RSS_COMMANDS + ("run", "lifecycle", "overall"):
        cells = [command]
        values = {}
        for name in ("pyrunc-cli", "runc", "crun"):
            value = (rss.get(name) or {}).get(command)
            values[name] = value
            cells.append("-" if value is None else f"{value / 1024:.1f}")
        cells.append(_x(_ratio(values["pyrunc-cli"], values["runc"])))
        cells.append(_x(_ratio(values["pyrunc-cli"], values["crun"])))
        rows.append(cells)
    return _table(("command", "pyrunc CLI MiB", "runc MiB", "crun MiB",
                   "CLI/runc", "CLI/crun"), rows)


def memory_table(summary):
    memory = summary["results"].get("memory") or {}
    charged = memory.get("charged") or {}
    floors = memory.get("floor") or {}
    rows = []
    for name in RUNTIMES:
        c = charged.get(name) or {}
        f = floors.get(name) or {}
        if not c and not f:
            continue
        floor = f.get("floor_kib")
        verified = f.get("verified")
        rows.append((
            LABELS[name],
            "error" if c.get("error") else _f(c.get("median_kib")),
            _f(c.get("kmem_median_kib")),
            "-" if not f else (f"> {f.get('high_kib')}" if floor is None
                               else f"{floor}"),
            "-" if not f else f"{f.get('fails_at_kib', '-')}",
            "-" if verified is None else ("yes" if verified else "no"),
            len(f.get("probes") or ()),
        ))
    return _table(("runtime", "charged peak KiB (median)",
                   "of which kmem KiB", "floor KiB", "fails at KiB",
                   "first pass stable", "probes"), rows)


def scale_tables(summary):
    scale = summary["results"].get("scale") or {}
    lines = []
    sequential = scale.get("sequential") or {}
    if sequential:
        n = summary["settings"].get("sequential")
        lines += [(f"Sequential: {n} lifecycles per runtime, round-robin "
                   "(back-to-back). Change: the least-squares line's rise "
                   "from the first container to the last, as a share of "
                   f"the median; flat when within +-{FLAT_PCT}%."), ""]
        rows = []
        for name in RUNTIMES:
            e = sequential.get(name)
            if not e:
                continue
            change = e.get("fitted_change_pct")
            flat = None if change is None else abs(change) <= FLAT_PCT
            rows.append((
                LABELS[name], _f(e.get("median_ms")),
                _f(e.get("first_tenth_ms")), _f(e.get("last_tenth_ms")),
                _f(e.get("slope_ms_per_container"), 4),
                "-" if change is None else f"{change:+.0f}%",
                {True: "flat", False: "**not flat**", None: "-"}[flat]
                if not e.get("error") else "error"))
        lines += _table(("runtime", "median ms", "first tenth ms",
                         "last tenth ms", "slope ms/container", "change",
                         "verdict"), rows)
        lines.append("")
    concurrent = scale.get("concurrent") or {}
    if concurrent:
        n = summary["settings"].get("concurrent")
        lines += [(f"Concurrent: {n} lifecycles at once (one thread "
                   "each), batch wall time; per container = wall / n, "
                   "compared with the sequential median."), ""]
        rows = []
        for name in RUNTIMES:
            e = concurrent.get(name)
            if not e:
                continue
            seq = _median(sequential.get(name))
            latency = e.get("latency") or {}
            rows.append((
                LABELS[name], _f(e.get("wall_median_ms")),
                _f(e.get("per_container_ms")), _f(seq),
                _x(_ratio(e.get("per_container_ms"), seq)),
                _f(latency.get("median_ms")),
                e.get("error_count", 0)))
        lines += _table(("runtime", "batch wall ms", "per container ms",
                         "sequential ms", "per container / sequential",
                         "lifecycle latency in batch ms", "failures"),
                        rows)
        lines.append("")
    many = scale.get("many") or {}
    if many:
        n = many.get("n")
        lines += [(f"With {n} containers present: real containers in the "
                   "created state (a blocked init each), one runtime at a "
                   "time, back-to-back, each figure next to the same "
                   "command with 1 container present, measured just "
                   "before. /bin/true is spawned in the same rounds: what "
                   "the machine's state costs any new process."), ""]
        rows = []
        family_of = {"pyrunc-cli": "pyrunc", "pyrunc-lib": "pyrunc",
                     "runc": "runc", "crun": "crun"}
        for name in RUNTIMES:
            cells = [LABELS[name]]
            found = False
            for command in ("list", "state"):
                one = (many.get(command + "_1") or {}).get(name) or {}
                lots = (many.get(command) or {}).get(name) or {}
                found = found or bool(one or lots)
                if lots.get("error") or one.get("error"):
                    cells.append("error")
                    continue
                cells.append(f"{_f(_median(one))} / {_f(_median(lots))}")
            if not found:
                continue
            fam = (many.get("families") or {}).get(family_of[name]) or {}
            true_1 = _median((fam.get("exec_true_1") or {}).get("state"))
            true_n = _median((fam.get("exec_true") or {}).get("state"))
            cells += [
                f"{_f(true_1, 3)} / {_f(true_n, 3)}",
                fam.get("creator", "-"),
                (f"{_f(fam.get('first_tenth_ms'))} / "
                 f"{_f(fam.get('last_tenth_ms'))}"),
                _f(fam.get("delete_mean_ms"))]
            rows.append(cells)
        lines += _table(("runtime", f"list ms, 1 / {n} present",
                         f"state ms, 1 / {n} present",
                         f"/bin/true ms, 1 / {n} present", "filled by",
                         "create ms, first / last tenth",
                         "delete ms (stopped)"), rows)
        lines.append("")
    return lines


def wrapper_lines(summary):
    wrapper = summary["results"].get("wrapper") or {}
    if not wrapper:
        return []
    rows = []
    direct = _median(wrapper.get("direct"))
    for name, text in (("direct", "/bin/true"),
                       ("crunwrap", "crunwrap /bin/true"),
                       ("unshare-sh", ("unshare -m sh -c 'mount ...; "
                                       "exec /bin/true'"))):
        e = wrapper.get(name) or {}
        med = _median(e)
        rows.append((text, _f(med, 3), _f(None if med is None or direct
                                          is None else med - direct, 3),
                     _f((e.get("rss_max_kib") or 0) / 1024, 1)))
    return _table(("command", "median ms", "overhead ms", "max RSS MiB"),
                  rows)


def markdown(summary):
    meta = summary["meta"]
    settings = summary["settings"]
    lines = ["# pyrunc benchmarks: pyrunc vs runc vs crun", ""]
    wall = meta.get("wall_s")
    lines.append(
        f"Run {meta.get('date')} on Linux {meta.get('kernel')}, "
        f"{meta.get('cpus')} CPUs, Python {meta.get('python')}; "
        f"{'quick' if settings.get('quick') else 'full'} mode, "
        f"{settings.get('rounds')} rounds per command and mode "
        f"(+{settings.get('warmup')} warm-up), wall time "
        f"{'-' if wall is None else f'{wall:.0f} s'}. Load average "
        f"{_load(meta.get('loadavg_start'))} at the start, "
        f"{_load(meta.get('loadavg_end'))} at the end (the machine is "
        "shared; every figure is a median of interleaved samples).")
    lines.append("")
    for name, info in summary["runtimes"].items():
        text = f"- {LABELS.get(name, name)}: {info.get('version') or '-'}"
        if info.get("error"):
            text += f" — **unavailable**: {info['error']}"
        lines.append(text)
    overhead = summary["derived"].get("wrapper_overhead_ms")
    lines.append("")
    lines.append(
        "crun refuses this hybrid cgroup host, so each crun invocation "
        "runs under crunwrap (unshare(CLONE_NEWNS), / made private, "
        "tmpfs over /sys/fs/cgroup/unified, execv crun); it costs "
        f"{_f(overhead, 3)} ms per invocation, and \"crun net\" "
        "subtracts it.")
    lines += ["", "## Targets", "",
              "Ratios of medians; met/missed is reported, never asserted.",
              ""]
    lines += targets_table(summary)
    for mode in MODES:
        if mode not in summary["derived"]["commands"]:
            continue
        lines += ["", f"## Command latency, {mode}", "",
                  ("Median ms (interquartile range). Ratios: pyrunc "
                   "divided by runc or by crun net."), ""]
        if mode == "idle-50ms":
            lines[-2] += (" The runtime is idle for 50 ms before each "
                          "measured command.")
        lines += latency_table(summary, mode)
    lines += ["", "## Peak RSS of the runtime process", "",
              ("Largest wait4() ru_maxrss over all invocations of the "
               "command (both modes). `run` and `lifecycle` include the "
               "container's init, which the runtime reaps. The library "
               "has no process of its own."), ""]
    lines += rss_table(summary)
    if summary["results"].get("memory"):
        lines += ["", "## Container memory", "",
                  ("Charged: memory.max_usage_in_bytes of the container's "
                   "v1 memory cgroup (limit 256 MiB) after `echo it works` "
                   "exited, including what the runtime's init code charged "
                   "before exec. Floor: smallest "
                   "linux.resources.memory.limit, bisected in pages "
                   "between 64 KiB and 64 MiB, at which `run` of `echo it "
                   "works` prints it and exits 0, then raised until it "
                   "does so three times in a row (\"first pass stable\": "
                   "the bisection's limit already did). v1 charges "
                   "memory in per-CPU batches of 64 pages, so the charged "
                   "peak moves in 256 KiB steps."), ""]
        lines += memory_table(summary)
    scale = scale_tables(summary)
    if scale:
        lines += ["", "## Scale", ""] + scale
    wrapper = wrapper_lines(summary)
    if wrapper:
        lines += ["## crun wrapper", ""] + wrapper
    lines += ["", "## Leaks and errors", ""]
    if not summary["leaks"]:
        lines.append("No container, cgroup, state directory or mount was "
                     "left behind by any runtime.")
    for leak in summary["leaks"][:40]:
        lines.append(f"- {leak['runtime']} ({leak['phase']}, "
                     f"{leak['container']}): {leak['kind']} "
                     f"`{leak['path']}`")
    if len(summary["leaks"]) > 40:
        lines.append(f"- ... {len(summary['leaks']) - 40} more")
    failed = scale_failures(summary["results"].get("scale") or {})
    if failed:
        lines += ["", f"{len(failed)} failed lifecycles in the scale "
                  "runs:", ""]
    for where, text in failed[:20]:
        lines.append(f"- {where}: {text[:300]}")
    if len(failed) > 20:
        lines.append(f"- ... {len(failed) - 20} more")
    errors = summary["errors"]
    if errors:
        lines += ["", (f"{len(errors)} failed samples or clean-up errors "
                       "(a runtime's test fails only after "
                       f"{summary['settings'].get('max_failures')} failures "
                       "in one command):"), ""]
    for error in errors[:20]:
        lines.append(f"- {error[:300]}")
    if len(errors) > 20:
        lines.append(f"- ... {len(errors) - 20} more")
    lines.append("")
    return "\n".join(lines)


def scale_failures(scale, where=()):
    """(where, text) of each failure recorded in the scale results."""
    found = []
    for key, value in scale.items():
        if not isinstance(value, dict):
            continue
        for text in value.get("failures") or ():
            found.append((" / ".join(where + (key,)), str(text)))
        found += scale_failures(value, where + (key,))
    return found


def _load(value):
    if not value:
        return "-"
    return "/".join(f"{x:.1f}" for x in value)


def terminal_lines(summary):
    lines = targets_table(summary)
    if "back-to-back" in summary["derived"]["commands"]:
        lines += [""] + latency_table(summary, "back-to-back")
    wall = summary["meta"].get("wall_s")
    if wall:
        lines.append(f"wall time {wall:.0f} s")
    if summary["leaks"]:
        lines.append(f"{len(summary['leaks'])} leaks recorded; see "
                     "summary.md")
    return lines


# Plots --------------------------------------------------------------------

def ensure_matplotlib(install=True):
    """Import matplotlib (Agg), installing it into this venv if missing."""
    try:
        import matplotlib
    except ImportError:
        if not install:
            return None
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "matplotlib"],
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"benchreport: pip install matplotlib failed: "
                  f"{done.stderr.strip()[-300:]}", file=sys.stderr)
            return None
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_all(summary, directory, plt):
    paths = []
    for name, fn in (("latency.png", plot_latency),
                     ("latency_distribution.png", plot_distribution),
                     ("memory.png", plot_memory),
                     ("scale.png", plot_scale)):
        fig = fn(summary, plt)
        if fig is None:
            continue
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def _present(summary):
    return [n for n in RUNTIMES if n in summary["runtimes"]]


def plot_latency(summary, plt):
    derived = summary["derived"]["commands"]
    modes = [m for m in MODES if m in derived]
    if not modes:
        return None
    names = _present(summary)
    fig, axes = plt.subplots(1, len(modes), figsize=(7 * len(modes), 4.5),
                             squeeze=False)
    width = 0.8 / max(1, len(names))
    for ax, mode in zip(axes[0], modes):
        results = summary["results"]["commands"][mode]
        commands = [c for c in COMMANDS if c in derived[mode]]
        for i, name in enumerate(names):
            xs, ys, lo, hi = [], [], [], []
            for j, command in enumerate(commands):
                e = (results.get(command) or {}).get(name) or {}
                med = _median(e)
                if med is None:
                    continue
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(med)
                lo.append(med - e["q1_ms"])
                hi.append(e["q3_ms"] - med)
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2,
                   label=LABELS[name], color=COLORS[name])
        ax.set_xticks(range(len(commands)))
        ax.set_xticklabels(commands)
        ax.set_yscale("log")
        ax.set_ylabel("median ms (IQR bars), log scale")
        ax.set_title(f"command latency, {mode}")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    return fig


def plot_distribution(summary, plt):
    results = (summary["results"].get("commands") or {}).get("back-to-back")
    if not results:
        return None
    names = _present(summary)
    commands = [c for c in COMMANDS if c in results]
    fig, ax = plt.subplots(figsize=(14, 4.5))
    positions, data, colors = [], [], []
    step = len(names) + 1
    for j, command in enumerate(commands):
        for i, name in enumerate(names):
            e = results[command].get(name) or {}
            if e.get("samples_ms"):
                positions.append(j * step + i)
                data.append(e["samples_ms"])
                colors.append(COLORS[name])
    if not data:
        plt.close(fig)
        return None
    parts = ax.boxplot(data, positions=positions, widths=0.7,
                       patch_artist=True, showfliers=True)
    for patch, color in zip(parts["boxes"], colors):
        patch.set_facecolor(color)
    ax.set_xticks([j * step + (len(names) - 1) / 2
                   for j in range(len(commands))])
    ax.set_xticklabels(commands)
    ax.set_yscale("log")
    ax.set_ylabel("ms, log scale")
    ax.set_title("distribution of samples, back-to-back")
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[n]) for n in names]
    ax.legend(handles, [LABELS[n] for n in names])
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_memory(summary, plt):
    rss = summary["derived"]["peak_rss_kib"]
    memory = summary["results"].get("memory") or {}
    if not rss and not memory:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    cli = [n for n in ("pyrunc-cli", "runc", "crun") if n in rss]
    width = 0.8 / max(1, len(cli))
    for i, name in enumerate(cli):
        xs, ys = [], []
        for j, command in enumerate(RSS_COMMANDS + ("run",)):
            value = rss[name].get(command)
            if value is not None:
                xs.append(j + (i - (len(cli) - 1) / 2) * width)
                ys.append(value / 1024)
        ax.bar(xs, ys, width, label=LABELS[name], color=COLORS[name])
    ax.set_xticks(range(len(RSS_COMMANDS) + 1))
    ax.set_xticklabels(RSS_COMMANDS + ("run",))
    ax.set_ylabel("MiB")
    ax.set_title("peak RSS of the runtime process")
    # Room above the bars for the legend, which would hide the last.
    ax.set_ylim(top=ax.get_ylim()[1] * 1.25)
    ax.legend(loc="upper center", ncol=len(cli))
    charged = memory.get("charged") or {}
    floors = memory.get("floor") or {}
    for ax, title, values in (
            (axes[1], "memory charged to the container (median)",
             {n: (charged.get(n) or {}).get("median_kib") for n in
              RUNTIMES}),
            (axes[2], "smallest memory limit for `echo it works`",
             {n: (floors.get(n) or {}).get("floor_kib") for n in
              RUNTIMES})):
        names = [n for n in RUNTIMES if values.get(n) is not None]
        ax.bar([LABELS[n] for n in names], [values[n] for n in names],
               color=[COLORS[n] for n in names])
        for k, n in enumerate(names):
            ax.annotate(f"{values[n]:.0f}", (k, values[n]),
                        ha="center", va="bottom")
        ax.set_ylabel("KiB")
        ax.set_title(title)
    axes[2].axhline(FLOOR_GOAL_KIB, color="grey", linestyle="--",
                    label="goal 512 KiB")
    axes[2].legend()
    fig.tight_layout()
    return fig


def plot_scale(summary, plt):
    scale = summary["results"].get("scale") or {}
    if not scale:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    ax = axes[0]
    sequential = scale.get("sequential") or {}
    for name in RUNTIMES:
        e = sequential.get(name) or {}
        if e.get("samples_ms"):
            ax.plot(range(1, len(e["samples_ms"]) + 1), e["samples_ms"],
                    ".-", markersize=3, linewidth=0.8, label=LABELS[name],
                    color=COLORS[name])
    ax.set_yscale("log")
    ax.set_xlabel("lifecycle #")
    ax.set_ylabel("ms, log scale")
    ax.set_title("sequential lifecycles: cost per container")
    ax.legend()
    ax = axes[1]
    concurrent = scale.get("concurrent") or {}
    names = [n for n in RUNTIMES if n in concurrent]
    xs = range(len(names))
    seq = [_median(sequential.get(n)) or 0 for n in names]
    conc = [concurrent[n].get("per_container_ms") or 0 for n in names]
    ax.bar([x - 0.2 for x in xs], seq, 0.4, label="sequential (median)",
           color="#999999")
    ax.bar([x + 0.2 for x in xs], conc, 0.4,
           label="concurrent (wall / n)",
           color=[COLORS[n] for n in names])
    ax.set_xticks(list(xs))
    ax.set_xticklabels([LABELS[n] for n in names])
    ax.set_ylabel("ms per container")
    ax.set_title(f"{summary['settings'].get('concurrent')} concurrent "
                 "lifecycles")
    ax.legend()
    ax = axes[2]
    many = scale.get("many") or {}
    n = many.get("n")
    bars = (("list_1", "list, 1 present", "#bbbbbb"),
            ("list", f"list, {n} present", "#444444"),
            ("state_1", "state, 1 present", "#c6dbef"),
            ("state", f"state, {n} present", "#2171b5"))
    names = [r for r in RUNTIMES
             if any(_median((many.get(k) or {}).get(r)) is not None
                    for k, _, _ in bars)]
    width = 0.2
    for k, (key, label, color) in enumerate(bars):
        values = [_median((many.get(key) or {}).get(r)) or 0
                  for r in names]
        ax.bar([x + (k - 1.5) * width for x in range(len(names))], values,
               width, label=label, color=color)
    ax.set_xticks(list(range(len(names))))
    ax.set_xticklabels([LABELS[r] for r in names])
    ax.set_yscale("log")
    ax.set_ylabel("median ms, log scale")
    ax.set_title(f"list / state with 1 and {n} containers")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# Output -------------------------------------------------------------------

def write_all(summary, directory, install=True):
    """Write summary.json, summary.md and the PNGs; return the paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    path = os.path.join(directory, "summary.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1, default=str)
        f.write("\n")
    paths.append(path)
    path = os.path.join(directory, "summary.md")
    with open(path, "w") as f:
        f.write(markdown(summary))
    paths.append(path)
    plt = ensure_matplotlib(install)
    if plt is None:
        print("benchreport: matplotlib unavailable, no plots",
              file=sys.stderr)
        return paths
    return paths + plot_all(summary, directory, plt)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    here = os.path.dirname(os.path.abspath(__file__))
    source = argv[0] if argv else os.path.join(here, "results",
                                               "summary.json")
    with open(source) as f:
        summary = json.load(f)
    if "pyrunc_summary" in summary:
        summary = summary["pyrunc_summary"]
    directory = os.path.dirname(os.path.abspath(source))
    for path in write_all(summary, directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
