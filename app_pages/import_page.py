"""Import: upload trace files (or zip archives) or name a path on the server; each file's result, its rejects,
and the history of imports. The app process owns the database, so this is how files reach it while it runs."""

from pathlib import Path

import streamlit as st

import workbench_ui as ui
from workbench import imports
from workbench.loaders import registry
from workbench.uploads import UploadLimits

DETECT = "detect from the file"
# the columns of both result tables, as the reviewer reads them
COLUMNS = {
    "file": st.column_config.TextColumn("File"),
    "path": st.column_config.TextColumn("Path"),
    "format": st.column_config.TextColumn("Format"),
    "status": st.column_config.TextColumn("Status"),
    "runs": st.column_config.NumberColumn("Runs", format="%d"),
    "steps": st.column_config.NumberColumn("Steps", format="%d"),
    "rejects": st.column_config.NumberColumn("Rejects", format="%d"),
    "seconds": st.column_config.NumberColumn("Seconds", format="%.2f"),
    "size_bytes": st.column_config.NumberColumn("Bytes", format="%d"),
    "message": st.column_config.TextColumn("Message"),
    "import_id": st.column_config.TextColumn("Import id"),
}


def show_rejects(import_id: str) -> None:
    frame = ui.import_rejects(import_id)
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "location": st.column_config.TextColumn("Location"),
        "reason": st.column_config.TextColumn("Reason"),
        "excerpt": st.column_config.TextColumn("Excerpt", width="large"),
    })


st.title("Import")
limits = UploadLimits.from_env()
db = Path(ui.db_path())
roots = imports.import_roots(db)
st.text(f"Database: {db}")
fmt_choice = st.selectbox("Format", [DETECT, *sorted(registry())], key="import.format",
                          help="Each file's format is detected from its name and first bytes; pick one to force it.")
fmt = None if fmt_choice == DETECT else fmt_choice

upload_tab, path_tab = st.tabs(["Upload files", "Path on the server"])
with upload_tab, st.form("import.upload_form", clear_on_submit=True, border=False):
    files = st.file_uploader(
        "Trace files or .zip archives", accept_multiple_files=True, key="import.files",
        max_upload_size=limits.max_upload_mb,
        help=f"Up to {limits.max_upload_mb:,} MB per file. A .zip is unpacked after checks (size, members, paths); "
             "an Inspect .eval log is read as it is.")
    upload_clicked = st.form_submit_button("Import uploaded files", key="import.upload")
with path_tab, st.form("import.path_form", border=False):
    st.text("Allowed folders (WORKBENCH_IMPORT_ROOTS):\n" + "\n".join(f"  {r}" for r in roots))
    typed = st.text_input("File, folder or glob", key="import.path", placeholder="data/traces/*.jsonl")
    path_clicked = st.form_submit_button("Import path", key="import.path_go")

report = None
if upload_clicked and not files:
    st.warning("Choose one or more files first.")
elif upload_clicked:
    store = ui.writable_store()
    with st.spinner("Saving and checking the upload"):
        report = imports.import_uploads(store, [(f.name, f) for f in files], fmt=fmt,
                                        progress=ui.progress_bar(), limits=limits)
elif path_clicked:
    store = ui.writable_store()
    try:
        report = imports.import_path(store, typed, fmt=fmt, progress=ui.progress_bar(), roots=roots)
    except imports.PathNotAllowedError as exc:
        st.error("This path cannot be imported.")
        st.code(str(exc), language=None, wrap_lines=True)
if report is not None:
    st.session_state["import.report"] = report

last = st.session_state.get("import.report")
if last is not None:
    st.subheader("Last import")
    totals = last.summary.totals()
    cols = st.columns(5)
    for col, key in zip(cols, ["files", "runs", "steps", "rejects", "seconds"], strict=True):
        col.metric(key.capitalize(), f"{totals[key]:,}")
    st.text(f"From: {last.source}")
    frame = last.frame()
    st.dataframe(frame, hide_index=True, width="stretch", column_config=COLUMNS)
    for row in frame.itertuples():
        if row.rejects and row.import_id != "-":
            st.text(f"Rejects of {row.file} (import {row.import_id})")
            show_rejects(row.import_id)

st.subheader("History")
if not db.exists():
    st.info("No database yet: the first import creates it.")
    st.stop()
history = ui.imports_table()
if history.empty:
    st.info("Nothing imported yet.")
    st.stop()
st.dataframe(history, hide_index=True, width="stretch", column_config={
    **COLUMNS, "started_at": st.column_config.DatetimeColumn("Started"),
    "finished_at": st.column_config.DatetimeColumn("Finished")})
with_rejects = history.loc[history["rejects"] > 0, "import_id"].tolist()
if with_rejects:
    chosen = st.selectbox("Rejects of import", with_rejects, key="import.rejects_of")
    st.text(history.loc[history["import_id"] == chosen, "path"].iloc[0])
    show_rejects(chosen)
