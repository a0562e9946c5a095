"""The printed table."""

from __future__ import annotations

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
    rows = [HEADER, *(row(f) for f in figures)]
    if len(figures) == 2 and figures[1].rate:
        ours, ref = figures
        rows.append(("ratio (customer-updates / reference)", f"{ours.rate / ref.rate:.1f}x", "", "", "", "", "",
                     f"{ours.cpu_ms_per_update / ref.cpu_ms_per_update:.2f}x" if ref.cpu_ms_per_update else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = [title, "| " + " | ".join(h.ljust(w) for h, w in zip(rows[0], widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows[1:]:
        lines.append("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |")
    return "\n".join(lines) + "\n"


def summary(tables: list[tuple[str, list[Figures]]]) -> str:
    lines = ["scaling (customer-updates updates/s):"]
    for title, figures in tables:
        lines.append(f"  {title}: {figures[0].rate:,.0f}")
    return "\n".join(lines)
