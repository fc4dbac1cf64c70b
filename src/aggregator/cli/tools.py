"""The commands around the product: ``opml`` (import another reader's subscriptions), ``eval``
(score the dedup stage on a labeled file) and ``demo`` (the bundled corpus on 127.0.0.1). Their
machinery lives in ``aggregator.tools`` and loads only when one of them runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from ..errors import AggregatorError
from .app import ConfigOption, app, err, flagged, friendly, given_config, out, print_json, progress
from .reading import library, print_stories


@app.command()
@friendly
def opml(
    file: Annotated[Path, typer.Argument(help="OPML subscription list exported from another reader.")],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
) -> None:
    """Print the feeds of an OPML file as YAML entries to append to the config's `feeds:` list
    (feeds the config lists already are left out: listed twice, they would make it invalid)."""
    from ..config import feeds_from_opml
    from ..urls import normalize_url

    found, refused = feeds_from_opml(file)
    given = given_config(config)
    listed = {normalize_url(f.url) for f in given.feeds} if given else set()
    new = [feed for feed in found if normalize_url(feed.url) not in listed]
    if new:  # a blank line first: appended to a config whose last line has no newline, the entries stay entries
        out().print("")
    for feed in new:
        out().print(f"  - url: {json.dumps(feed.url)}", soft_wrap=True)
        if feed.name:
            out().print(f"    name: {json.dumps(feed.name, ensure_ascii=False)}", soft_wrap=True)
    for problem in refused:
        err().print(flagged("left out:", "yellow", problem))
    known = f" ({len(found) - len(new)} already in {config}, left out)" if len(new) < len(found) else ""
    err().print(f"{len(new)} feed(s){known}; append with: aggregator opml {file} >> {config}")


@app.command("eval")
@friendly
def eval_(
    file: Annotated[Path, typer.Argument(help="Labeled JSONL: id, title, text, published, source, url, cluster, lang.")],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write {id, story} per article to this JSONL file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    copies: Annotated[bool, typer.Option("--copies", help="Also derive seeded wire copies and score copy detection.")] = False,
    corrections: Annotated[Path | None, typer.Option("--corrections", help='JSONL of corrections in the file\'s ids ({"split": {"story_of": ID, "articles": [ID, ...]}} or {"merge": [ID, ID]}), replayed as constraints: how much each lifts B-cubed F1.')] = None,
) -> None:
    """Replay a labeled file through the dedup stage (daemon settings) and print P/R/F1."""
    from ..config import DedupSettings
    from ..tools.evaluate import evaluate, read_labeled

    # the daemon's settings when its config is there; the built-in defaults (the same values) otherwise
    given = given_config(config)
    settings = given.settings.dedup if given else DedupSettings()
    if out_path is not None and (out_path.is_dir() or not out_path.parent.is_dir()):
        raise typer.BadParameter(f"{out_path}: not a file in an existing directory", param_hint="--out")
    records = read_labeled(file)
    fixes = None
    if corrections is not None:
        from ..tools.evaluate import read_corrections

        fixes = read_corrections(corrections, records)
    with progress(f"clustering {len(records):,} articles") as advance:
        result = evaluate(records, settings, advance)
    lifts = None
    if fixes is not None:
        from ..tools.evaluate import correction_lifts

        with progress(f"replaying {len(fixes)} correction(s)") as advance:
            lifts = correction_lifts(records, settings, fixes, advance)
    copy_scores = None
    if copies:
        from ..tools.wirecopies import copy_detection

        with err().status("deriving wire copies and detecting them"):
            copy_scores = copy_detection(records, settings)
    if out_path is not None:
        try:
            with out_path.open("w", encoding="utf-8") as fh:
                for r in records:
                    fh.write(json.dumps({"id": r.id, "story": result.assignment[r.id]}, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise AggregatorError(f"{out_path}: cannot write the assignment: {exc.strerror or exc}") from None
    sc = result.scores
    data: dict[str, Any] = {
        "file": str(file), "articles": sc.items,
        "pairwise": {"precision": sc.pairwise_precision, "recall": sc.pairwise_recall, "f1": sc.pairwise_f1},
        "bcubed": {"precision": sc.bcubed_precision, "recall": sc.bcubed_recall, "f1": sc.bcubed_f1},
        "predicted_clusters": sc.predicted_clusters, "gold_clusters": sc.gold_clusters,
        "articles_per_second": round(result.articles_per_second, 1),
    }
    if copy_scores is not None:
        data["copies"] = {"articles": copy_scores.items, "precision": copy_scores.pairwise_precision,
                          "recall": copy_scores.pairwise_recall, "f1": copy_scores.pairwise_f1}
    if lifts is not None:
        data["corrections"] = [{"line": x.correction.line, "kind": x.correction.kind, "articles_moved": x.moved,
                                "bcubed_f1_before": x.before.bcubed_f1, "bcubed_f1_after": x.after.bcubed_f1, "lift": x.lift,
                                "pairwise_f1_after": x.after.pairwise_f1} for x in lifts]
    if as_json:
        print_json(data)
        return
    from rich.table import Table

    table = Table(title=f"{file} ({sc.items} articles)")
    for col in ("", "precision", "recall", "F1"):
        table.add_column(col, justify="right")
    table.add_row("pairwise", f"{sc.pairwise_precision:.3f}", f"{sc.pairwise_recall:.3f}", f"{sc.pairwise_f1:.3f}")
    table.add_row("B-cubed", f"{sc.bcubed_precision:.3f}", f"{sc.bcubed_recall:.3f}", f"{sc.bcubed_f1:.3f}")
    if copy_scores is not None:
        table.add_row(f"copies ({copy_scores.items})", f"{copy_scores.pairwise_precision:.4f}", f"{copy_scores.pairwise_recall:.4f}",
                      f"{copy_scores.pairwise_f1:.4f}")
    out().print(table)
    out().print(f"{sc.predicted_clusters} stories predicted, {sc.gold_clusters} gold; {result.articles_per_second:.0f} articles/s")
    for x in lifts or ():
        c = x.correction
        what = f"split the story of {c.anchor}" if c.kind == "split" else f"merge the story of {c.articles[0]} into that of {c.anchor}"
        out().print(f"correction (line {c.line}) {what}: {x.moved} article(s) moved; B-cubed F1 {x.before.bcubed_f1:.3f} -> "
                    f"{x.after.bcubed_f1:.3f} ({x.lift:+.3f})")


@app.command()
@friendly
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its config, database and digests.")] = Path("storage/demo"),
    hours: Annotated[int, typer.Option(help="Simulated hours to replay.", min=6, max=72)] = 72,
) -> None:
    """Replay a bundled news corpus through the real pipeline on 127.0.0.1 (no internet needed)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..tools.demo import run_demo

    started = time.perf_counter()
    with Progress(TextColumn("simulating feeds"), BarColumn(), TextColumn("{task.completed}/{task.total} rounds"),
                  TimeElapsedColumn(), console=err(), transient=True) as progress:
        task = progress.add_task("demo", total=None)
        result = run_demo(directory, progress=lambda done, total: progress.update(task, completed=done, total=total), hours=hours)
    with library(result.config_path) as lib:
        multi = [s for s in result.stories if len(s.sources) > 1]
        print_stories(multi, lib, f"{len(multi)} stories carried by several outlets (of {len(result.stories)} stories, "
                                  f"{result.articles} articles)")
        singles = [s for s in result.stories if len(s.sources) == 1]
        if singles:
            out().print(f"…and {len(singles)} single-source stories, e.g. " + "; ".join(s.title for s in singles[:3]))
    sc = result.scores
    out().print(f"\nagainst the corpus's own labels: B-cubed P/R/F1 {sc.bcubed_precision:.3f}/{sc.bcubed_recall:.3f}/{sc.bcubed_f1:.3f}, "
              f"pairwise F1 {sc.pairwise_f1:.3f}; {sc.predicted_clusters} stories for {sc.gold_clusters} events")
    out().print(f"{result.rounds} polling rounds, {result.requests} HTTP requests, {time.perf_counter() - started:.1f}s")
    out().print("digests: " + ", ".join(str(p) for p in result.digests))
    out().print(f"explore: aggregator clusters --config {result.config_path} --since {hours // 24 + 1}d   (also: story ID, digest, feeds)")
