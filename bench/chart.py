"""PNG charts for bench/results (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")   # headless: choose the backend before pyplot loads
import matplotlib.pyplot as plt
from matplotlib import ticker

COLORS = {"beds-fetch": "#1f77b4", "beds-list": "#6baed6", "beds-create": "#9ecae1",
          "beds-w2-fetch": "#08306b", "aiopika-fetch": "#ff7f0e",
          "aiopika-classic-fetch": "#fdae6b", "faststream-fetch": "#2ca02c"}


def bench_chart(rows: list[dict[str, Any]], path: Path, meta: dict[str, Any]) -> None:
    """Grouped bars per concurrency: req/s, p50 latency, req per server CPU-second."""
    levels = sorted({r["concurrency"] for r in rows})
    systems = list(dict.fromkeys(r["system"] for r in rows))
    labels = {r["system"]: r["label"] for r in rows}
    panels = [("req_per_s", "throughput (req/s)"), ("p50_ms", "p50 latency (ms)"),
              ("req_per_cpu_s", "req per server CPU-second")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5))
    width = 0.8 / max(1, len(systems))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for i, system in enumerate(systems):
            xs, ys = [], []
            for j, level in enumerate(levels):
                row = next((r for r in rows if r["system"] == system
                            and r["concurrency"] == level), None)
                if row is not None and row[key] is not None:
                    xs.append(j + (i - (len(systems) - 1) / 2) * width)
                    ys.append(row[key])
            ax.bar(xs, ys, width, label=labels[system], color=COLORS.get(system))
        ax.set_xticks(range(len(levels)), [f"{c} in flight" for c in levels])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_yscale("log")
    axes[1].yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axes[1].yaxis.set_minor_formatter(ticker.NullFormatter())
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"BEDS vs hand-written aio-pika vs FastStream — {meta['finished']}, "
                 f"{meta['rounds']} x {meta['duration']} s per cell, {meta['queue_type']} queues")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def soak_chart(samples: list[dict[str, Any]], path: Path, title: str) -> None:
    """RSS and open file descriptors over time (and throughput, for context)."""
    t = [s["t"] for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    series = [("rss_mb", "RSS (MB)", "#1f77b4"), ("fds", "open fds", "#ff7f0e"),
              ("req_per_s", "req/s (interval)", "#2ca02c")]
    for ax, (key, label, color) in zip(axes, series, strict=True):
        values = [s[key] for s in samples]
        ax.plot(t, values, color=color, marker=".")
        ax.set_ylabel(label)
        ax.set_ylim(0, max(values, default=1) * 1.25 or 1)   # flat lines stay visible
    axes[2].set_xlabel("seconds")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
