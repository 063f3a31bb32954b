"""The `workbench` command: parses options and calls the library, nothing more."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from workbench.store import StoreError, default_db_path, open_store

DB_OPTION = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="DuckDB file (default: $WORKBENCH_DB or data/workbench.duckdb).",
)


def _db(db: Path | None) -> Path:
    return db or default_db_path()


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group()
@click.version_option(package_name="agent-review-workbench")
def main() -> None:
    """Review AI agent runs: load trace exports into DuckDB, replay, label, cluster, score, export."""


@main.command()
@DB_OPTION
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", default=None, help="Force a loader instead of sniffing (e.g. otlp).")
@click.option("--mapping", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Mapping file (TOML) for the generic loader; implies --format generic. "
                   "See docs/generic-mapping.md.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--force", is_flag=True, help="Re-read files whose content was already imported.")
@click.option("--redact", is_flag=True,
              help="Mask e-mails, phone and card numbers, API keys and bearer tokens before storing.")
@click.option("--redact-config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="TOML file with extra redaction patterns or built-ins to disable (implies --redact).")
def ingest(db: Path | None, paths: tuple[str, ...], fmt: str | None, mapping: Path | None, quiet: bool,
           force: bool, redact: bool, redact_config: Path | None) -> None:
    """Load trace files, folders (recursively) or globs into the database."""
    from workbench.ingest import ingest_paths
    from workbench.redaction import RedactionConfigError, Redactor

    options = {}
    if mapping is not None:
        from workbench.loaders.mapping import MappingError, load_mapping

        if fmt not in (None, "generic"):
            _fail(f"--mapping is read by the generic loader, not by --format {fmt}")
        try:
            load_mapping(mapping)  # a bad mapping stops here, before any file is read
        except MappingError as exc:
            _fail(str(exc))
        fmt, options = "generic", {"mapping": mapping}
    try:
        redactor = Redactor.from_file(redact_config) if redact_config else (Redactor.default() if redact else None)
    except RedactionConfigError as exc:
        _fail(str(exc))
    try:
        with open_store(_db(db)) as store:
            summary = ingest_paths(store, list(paths), fmt=fmt, force=force, redactor=redactor, options=options,
                                   progress=None if quiet else ProgressBar())
    except StoreError as exc:
        _fail(str(exc))
    click.echo(summary.render())
    if summary.n_failed:
        sys.exit(1)


class ProgressBar:
    """Files done out of total with elapsed time and an ETA; one line per file when stderr is not a terminal."""

    def __init__(self, width: int = 24) -> None:
        self.width = width
        self.started = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int, label: str) -> None:
        elapsed = time.perf_counter() - self.started
        frac = done / total if total else 1.0
        eta = f"{elapsed / frac * (1 - frac):5.1f}s" if 0 < frac < 1 else "   - "
        filled = int(self.width * frac)
        line = (f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{total} files  "
                f"{elapsed:5.1f}s elapsed  eta {eta}  {label}")
        if self.tty:
            click.echo("\r" + line[:160].ljust(160), err=True, nl=done >= total)
        else:
            click.echo(line, err=True)


def _progress_echo(done: int, total: int, label: str) -> None:
    click.echo(f"[{done}/{total}] {label}", err=True)


@main.command()
@DB_OPTION
@click.option("--seed", default=7, show_default=True, help="Random seed: same seed, same database.")
@click.option("--runs", "n_runs", default=2400, show_default=True, help="Number of runs to generate.")
@click.option("--no-serve", is_flag=True, help="Build the demo database and exit.")
@click.option("--port", default=8501, show_default=True)
def demo(db: Path | None, seed: int, n_runs: int, no_serve: bool, port: int) -> None:
    """Build the demo fleet database (generated OTLP files, ingested through the loader) and serve it."""
    from workbench.demo_build import build_demo

    path = _db(db)
    try:
        result = build_demo(path, seed=seed, n_runs=n_runs, progress=_progress_echo)
    except StoreError as exc:
        _fail(str(exc))
    click.echo(result)
    if not no_serve:
        _serve(path, "127.0.0.1", port)


@main.command()
@DB_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; keep it local.")
@click.option("--port", default=8501, show_default=True)
def serve(db: Path | None, host: str, port: int) -> None:
    """Start the Streamlit app on the database."""
    _serve(_db(db), host, port)


def app_script() -> Path:
    """app.py: packaged inside the wheel, or at the root of a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_app" / "app.py", here.parent / "app.py"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("app.py not found next to the workbench package")


def _serve(db: Path, host: str, port: int) -> None:
    """Run the Streamlit server in this process, which opens (and so owns) the database first."""
    from workbench.store import shared_store
    from workbench.uploads import UploadError, UploadLimits

    db = db.resolve()
    try:
        shared_store(db, serving=True)
        upload_mb = UploadLimits.from_env().max_upload_mb
    except (StoreError, UploadError) as exc:
        _fail(str(exc))
    os.environ["WORKBENCH_DB"] = str(db)
    script = app_script()
    from streamlit import config as st_config
    from streamlit.web import bootstrap

    flags = {
        "server_address": host,
        "server_port": port,
        "server_headless": True,
        "server_fileWatcherType": "none",
        "server_runOnSave": False,
        "browser_gatherUsageStats": False,
        "browser_serverAddress": host,
        "client_toolbarMode": "minimal",
        "runner_magicEnabled": False,
        "server_maxUploadSize": upload_mb,  # the server refuses bigger uploads before the page sees them
    }
    click.echo(f"Serving {db} at http://{host}:{port}  (Ctrl+C to stop)")
    st_config._main_script_path = str(script)  # as `streamlit run` does, so config and pages resolve
    bootstrap.load_config_options(flag_options=flags)
    bootstrap.run(str(script), False, [], flags)


@main.command()
@DB_OPTION
@click.argument("rubric", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--agent", multiple=True, help="Only these agents (repeat for several).")
@click.option("--agent-version", "agent_version", multiple=True, help="Only these agent versions.")
def score(db: Path | None, rubric: Path, agent: tuple[str, ...], agent_version: tuple[str, ...]) -> None:
    """Score runs against a rubric file (TOML) and print the pass rate of each criterion."""
    from workbench.queries import RunFilter
    from workbench.rubrics import RubricError, load_rubric
    from workbench.scoring import score_runs

    try:
        parsed = load_rubric(rubric)
        with open_store(_db(db)) as store:
            report = score_runs(store, parsed, RunFilter(agent=agent or None, agent_version=agent_version or None),
                                source=str(rubric), source_text=rubric.read_text(encoding="utf-8"))
    except (RubricError, StoreError) as exc:
        _fail(str(exc))
    click.echo(f"{parsed.name} @ {report.version}: {report.n_runs:,} runs scored in {report.seconds:.1f} s")
    click.echo(report.summary.drop(columns=["seconds"]).to_string(index=False))
    if report.not_scored:
        click.echo(f"not scored here (human, or judge without a judge): {', '.join(report.not_scored)}")


@main.group()
def export() -> None:
    """Export labeled failures as a regression suite, or runs as datasets for other eval tools."""


FILTER_OPTIONS = [
    click.option("--agent", multiple=True, help="Only these agents (repeat for several)."),
    click.option("--agent-version", "agent_version", multiple=True, help="Only these agent versions."),
    click.option("--run-id", "run_ids", multiple=True, help="Exactly these runs (instead of the filters)."),
]


def _filters(fn):
    for opt in reversed(FILTER_OPTIONS):
        fn = opt(fn)
    return fn


def _run_filter(agent: tuple[str, ...], agent_version: tuple[str, ...]):
    from workbench.queries import RunFilter

    return RunFilter(agent=agent or None, agent_version=agent_version or None)


@export.command("suite")
@DB_OPTION
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
@_filters
@click.option("--label", "codes", multiple=True, help="Only these label codes (e.g. control.loop).")
@click.option("--include-imported", is_flag=True, help="Also labels imported with trace files.")
def export_suite_cmd(db: Path | None, out: Path, agent: tuple[str, ...], agent_version: tuple[str, ...],
                     run_ids: tuple[str, ...], codes: tuple[str, ...], include_imported: bool) -> None:
    """Write a regression suite (cases.jsonl + test_cases.py) from labeled failures."""
    from workbench.exporters.suite import export_suite

    try:
        with open_store(_db(db), read_only=True) as store:
            done = export_suite(store, out, _run_filter(agent, agent_version), run_ids=run_ids or None,
                                codes=codes or None, include_imported=include_imported)
    except StoreError as exc:
        _fail(str(exc))
    click.echo(f"{len(done.cases)} case(s) written to {done.path}")
    for run_id, reason in done.skipped:
        click.echo(f"skipped run {run_id}: {reason}")


@export.command("dataset")
@DB_OPTION
@click.option("--format", "fmt", required=True, type=click.Choice(["inspect", "openai-evals", "promptfoo", "langfuse"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@_filters
def export_dataset_cmd(db: Path | None, fmt: str, out: Path, agent: tuple[str, ...], agent_version: tuple[str, ...],
                       run_ids: tuple[str, ...]) -> None:
    """Write the selected runs as a dataset for Inspect AI, OpenAI evals, promptfoo or Langfuse."""
    from workbench.exporters.datasets import export_dataset

    try:
        with open_store(_db(db), read_only=True) as store:
            path, n = export_dataset(store, fmt, out, _run_filter(agent, agent_version), run_ids=run_ids or None)
    except StoreError as exc:
        _fail(str(exc))
    click.echo(f"{n} item(s) written to {path}")


@main.command()
@click.argument("suite", type=click.Path(exists=True, path_type=Path))
@click.argument("traces", nargs=-1, required=True)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JUnit XML here.")
@click.option("--format", "fmt", default=None, help="Force a loader for the trace files (e.g. otlp).")
def check(suite: Path, traces: tuple[str, ...], junit: Path | None, fmt: str | None) -> None:
    """Check a regression suite against a new trace export; exit 1 when a case fails."""
    from workbench.exporters.check import SuiteError, check_traces, load_suite, render_table, write_junit

    try:
        cases = load_suite(suite)
    except SuiteError as exc:
        _fail(str(exc))
    results, summary = check_traces(cases, traces, fmt=fmt)
    if summary.n_failed:
        click.echo(summary.render(), err=True)
    click.echo(render_table(results))
    if junit:
        write_junit(results, junit)
    if any(r.status == "fail" for r in results):
        sys.exit(1)


@main.command()
@DB_OPTION
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for scorecard.md, scorecard.html and scorecard.json.")
@click.option("--answers", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Questionnaire answers (TOML or JSON: question id = answer); default: the answers of the "
              "latest snapshot of this name.")
@click.option("--framework", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Framework file (TOML) instead of the built-in one; see docs/maturity.md.")
@click.option("--name", default="fleet", show_default=True, help="Scope of the assessment; snapshots of one "
              "name are compared with each other.")
@click.option("--save/--no-save", default=True, show_default=True, help="Store the assessment as a snapshot.")
def maturity(db: Path | None, out: Path, answers: Path | None, framework: Path | None, name: str,
             save: bool) -> None:
    """Assess the AgentOps maturity (8 dimensions x 5 levels) and write the scorecard."""
    from workbench.maturity import assess, latest_answers, save_assessment
    from workbench.maturity_framework import MaturityError, load_answers, load_framework

    path = _db(db)
    if not save and not path.exists():
        _fail(f"{path} does not exist yet; run `workbench demo --no-serve` or `workbench ingest PATH`.")
    try:
        fw = load_framework(framework)
        given = load_answers(answers) if answers else None
        with open_store(path, read_only=not save) as store:
            if given is None:
                given = latest_answers(store, name)
                if given:
                    click.echo(f"questionnaire: {len(given)} answer(s) from the latest {name!r} snapshot")
            result = assess(store, given, fw, name=name)
            if save:
                save_assessment(store, result)
    except (MaturityError, StoreError) as exc:
        _fail(str(exc))
    paths = result.write(out)
    table = result.dimensions[["name", "level", "level_name", "movement", "evidence"]]
    click.echo(table.to_string(index=False))
    click.echo(f"{len(result.actions)} remediation item(s); top: " +
               (result.actions[0].action if result.actions else "none"))
    click.echo(f"scorecard written to {', '.join(str(p) for p in paths.values())}"
               + (f"; snapshot {result.assessment_id} saved" if save else ""))


@main.command()
@DB_OPTION
@click.option("--week", default=None, metavar="YYYY-MM-DD",
              help="Any day of the ISO week to review (default: the week of the latest run).")
@click.option("--out", "out", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for weekly-review-YYYY-Www.md and .html.")
@click.option("--base-url", default=None, help="The app's address for run links (default http://127.0.0.1:8501).")
def pack(db: Path | None, week: str | None, out: Path, base_url: str | None) -> None:
    """Write the weekly review pack (Markdown and self-contained HTML) and print its headline figures."""
    from datetime import date

    from workbench.review_pack import weekly_pack
    from workbench.review_pack_render import headline_lines

    try:
        day = date.fromisoformat(week) if week else None
    except ValueError:
        _fail(f"--week takes a date such as 2026-11-09, not {week!r}")
    path = _db(db)
    if not path.exists():
        _fail(f"{path} does not exist yet; run `workbench demo --no-serve` or `workbench ingest PATH`.")
    started = time.perf_counter()
    try:
        with open_store(path) as store:  # writable: the derived cost tables may need a refresh first
            built = weekly_pack(store, day, base_url=base_url)
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    md, page = built.write(out)
    click.echo(f"{md}\n{page}")
    click.echo(f"built in {time.perf_counter() - started:.1f} s")
    click.echo("\n".join(headline_lines(built)))


@main.command()
@DB_OPTION
def info(db: Path | None) -> None:
    """What the database holds: schema version, imports, runs and steps by format."""
    from workbench.store.info import store_info

    path = _db(db)
    if not path.exists():
        _fail(f"{path} does not exist yet; run `workbench demo --no-serve` or `workbench ingest PATH`.")
    try:
        with open_store(path, read_only=True) as store:
            click.echo(store_info(store))
    except StoreError as exc:
        _fail(str(exc))


if __name__ == "__main__":
    main()
