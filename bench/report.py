"""The printed table."""

from __future__ import annotations

from bench.machine import incomparable
from bench.measure import Figures

HEADER = ("system", "updates/s", "p50 ms", "p95 ms", "p99 ms", "at updates/s", "peak RSS MiB", "CPU ms/update")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def row(f: Figures) -> tuple[str, ...]:
    return (f.system, f"{f.rate:,.0f}", _ms(f.p50_ms), _ms(f.p95_ms), _ms(f.p99_ms), f"{f.paced_rate:,.0f}",
            f"{f.peak_rss_mib:.0f}", f"{f.cpu_ms_per_update:.2f}")


def one_line(f: Figures) -> str:
    return ", ".join(f"{h}={v}" for h, v in zip(HEADER[1:], row(f)[1:], strict=True))


def table(title: str, figures: list[Figures]) -> str:
    """The medians of each system, and a ratio row after each pair of customer-updates and the reference (one
    pair per broker, in the order `run` measures them)."""
    rows: list[tuple[str, ...]] = [HEADER]
    withheld_notes = []
    for start in range(0, len(figures), 2):
        pair = figures[start:start + 2]
        rows.extend(row(f) for f in pair)
        if len(pair) != 2 or not pair[1].rate:
            continue
        ours, ref = pair
        on = ours.system.removeprefix("customer-updates")  # "" or " on RabbitMQ"
        label = f"ratio (customer-updates / reference){on}"
        withheld = incomparable(ours.load, ref.load)
        if withheld:  # the label stays, so that a reader sees the ratio was withheld and why (below)
            rows.append((label, "withheld", "", "", "", "", "", "withheld"))
            withheld_notes.append(f"ratio{on} withheld: {withheld} (bench/METHOD.md, 'Load and steal')")
        else:
            rows.append((label, f"{ours.rate / ref.rate:.1f}x", "", "", "", "",
                         "", f"{ours.cpu_ms_per_update / ref.cpu_ms_per_update:.2f}x" if ref.cpu_ms_per_update
                         else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = [title, "| " + " | ".join(h.ljust(w) for h, w in zip(rows[0], widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows[1:]:
        lines.append("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |")
    for f in figures:
        lines.append(f"machine during {f.system}'s throughput phase: {f.load.shown() if f.load else 'not read'}")
    lines.extend(withheld_notes)
    lines.extend(_low_lines(figures))
    return "\n".join(lines) + "\n"


def _low_lines(figures: list[Figures]) -> list[str]:
    """Latency at low load, one update a message: p50 / p99 per paced rate and system."""
    rates = sorted({rate for f in figures for rate in f.low})
    if not rates:
        return []
    lines = ["", "latency at low load, one update a message (enqueue to stored result):",
             "| system | " + " | ".join(f"p50 / p99 ms at {r}/s" for r in rates) + " |",
             "|---|" + "---|" * len(rates)]
    for f in figures:
        cells = [f"{_ms(f.low[r][0])} / {_ms(f.low[r][1])}" if r in f.low else "-" for r in rates]
        lines.append(f"| {f.system} | " + " | ".join(cells) + " |")
    for f in figures:
        for r in rates:
            load = f.low.get(r, (None, None, None))[2]
            lines.append(f"machine during {f.system} at {r}/s: {load.shown() if load else 'not read'}")
    return lines


def summary(tables: list[tuple[str, list[Figures]]]) -> str:
    lines = ["scaling (customer-updates updates/s):"]
    for title, figures in tables:
        lines.append(f"  {title}: {figures[0].rate:,.0f}")
    return "\n".join(lines)
