"""Clusters: the failed runs of the selection in a handful of named groups; label or queue a whole group.

Cluster names, errors and outputs come from traces: they are shown with st.text / st.dataframe (and escaped
in the map's hover), never as Markdown.
"""

from datetime import timedelta
from urllib.parse import quote

import streamlit as st

import workbench_ui as ui
from workbench import viz
from workbench.clustering import METHODS
from workbench_ui import clusters as uc

BOUND = {"bind": "query-params"}
NEW = "new"


def linked_select(where, label: str, options: list[str], key: str, format_func, **kwargs) -> str:
    """A selectbox whose value is also the `?key=` query parameter, by the option's value (a bound widget
    would put its display text in the URL)."""
    linked = ui.query_param(key)
    if key not in st.session_state and linked in options:
        st.session_state[key] = linked
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)
    value = where.selectbox(label, options, key=key, format_func=format_func, **kwargs)
    ui.set_query_param(key, None if value == options[0] else value)
    return value


ui.require_data()
st.title("Clusters")
flt = ui.filter_sidebar()

# -- which clustering -----------------------------------------------------------------------------------------
saved = uc.stored_list()
names = {NEW: "Cluster the selection now"} | {
    cid: f"{name or 'unnamed'} · saved {at:%Y-%m-%d %H:%M} · {n} runs"
    for cid, name, at, n in zip(saved["clustering_id"], saved["name"], saved["created_at"], saved["n_runs"],
                                strict=True)}
left, right = st.columns([3, 1])
choice = linked_select(left, "Clustering", list(names), "clustering", names.get)
if choice == NEW:
    method = right.selectbox("Method", METHODS, key="method", **BOUND,
                             help="kmeans-merge recovers the demo fleet's failure modes best (see the docs).")
    result = uc.clustering(flt, method=method)
else:
    result = uc.stored(choice)
    if result is None:
        st.warning("This stored clustering no longer exists.")
        st.stop()
    right.text(f"method {result.params.get('method')}\nperiod {result.period_from} – {result.period_to}")

if result.n_failures == 0:
    st.info("No failed runs in this selection.")
    st.stop()
table = result.clusters
cols = st.columns(4)
cols[0].metric("Failed runs", ui.fmt_int(result.n_failures))
cols[1].metric("Clusters", ui.fmt_int(int((table["cluster"] >= 0).sum())))
cols[2].metric("Failure share", ui.fmt_pct(result.n_failures / result.n_selected if result.n_selected else None),
               help="Failed runs over all runs of the selection.")
cols[3].metric("Cost of failures", ui.fmt_cost(float(table["cost_usd"].sum())))



def _save(clustering, title: str) -> None:
    # a callback runs before the next script run, so it may move the (already drawn) selector
    st.session_state["clustering"] = uc.save(clustering, title)


if choice == NEW:
    with st.expander("Save this clustering (to reopen it as it is now)"):
        title = st.text_input("Name", key="save_name", placeholder="weekly review 46")
        st.button("Save clustering", key="save_clustering", on_click=_save, args=(result, title))

# -- map --------------------------------------------------------------------------------------------------------
event = st.plotly_chart(viz.cluster_map(result.runs), key="cluster_map", on_select="rerun",
                        selection_mode=("points",))
points = event.selection.points if event is not None else []
if points and points[0].get("customdata"):
    run = points[0]["customdata"]
    st.switch_page("app_pages/run.py", query_params={"run": run[0] if isinstance(run, list) else run})

# -- cluster table ------------------------------------------------------------------------------------------------
st.subheader("Clusters")
shown = table.assign(central=[", ".join(r) for r in table["central_runs"]])
picked = st.dataframe(
    shown, hide_index=True, key="cluster_table", on_select="rerun", selection_mode="single-row",
    column_order=["cluster", "name", "size", "share", "cost_usd", "agents", "versions", "top_label",
                  "top_label_runs", "central"],
    column_config={
        "cluster": st.column_config.NumberColumn("#", format="%d", width="small"),
        "name": st.column_config.TextColumn("Name", width="large"),
        "size": st.column_config.NumberColumn("Runs", format="%d"),
        "share": st.column_config.NumberColumn("Share", format="percent"),
        "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="$%.2f"),
        "agents": "Agents", "versions": "Versions",
        "top_label": "Most common label",
        "top_label_runs": st.column_config.NumberColumn("Labeled so", format="%d"),
        "central": st.column_config.TextColumn("Most typical runs", width="medium"),
    },
)
ids = [str(c) for c in table["cluster"]]
sizes = dict(zip(ids, table["size"], strict=True))
rows = picked.selection.rows if picked is not None else []
# A row picked in the table moves the cluster selector once; the selector (and ?cluster=) stays the truth.
if rows and st.session_state.get("_picked_row") != rows[0]:
    st.session_state["cluster"] = ids[rows[0]]
st.session_state["_picked_row"] = rows[0] if rows else None
cluster = int(linked_select(st, "Cluster", ids, "cluster", lambda c: f"#{c} · {sizes[c]} runs"))
row = table[table["cluster"] == cluster].iloc[0]
members = result.members(cluster)
run_ids = list(members["run_id"])
st.text(row["name"])
st.text(f"how it failed: {row['shape']}\ntypical tools: {row['signature'] or '–'}\nterms: {row['terms']}")

members.insert(0, "open", ["run?run=" + quote(str(r), safe="") for r in members["run_id"]])
st.dataframe(
    members, hide_index=True, key=f"members:{choice}:{cluster}", height=min(38 + 35 * len(members), 420),
    column_order=["open", "agent", "agent_version", "started_at", "cost_usd", "distance", "error", "output"],
    column_config={
        "open": st.column_config.LinkColumn("Run", display_text=r"run\?run=(.*)", width="medium"),
        "agent": "Agent", "agent_version": "Version",
        "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm"),
        "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="$%.4f"),
        "distance": st.column_config.NumberColumn("From centre", format="%.3f",
                                                  help="Cosine distance to the cluster's centre"),
        "error": st.column_config.TextColumn("Error", width="medium"),
        "output": st.column_config.TextColumn("Output", width="large"),
    },
)
go_left, go_right = st.columns([3, 1])
target = go_left.selectbox("Open a run of this cluster", run_ids, key=f"open:{choice}:{cluster}")
if go_right.button("Open run", key="open_run"):
    st.switch_page("app_pages/run.py", query_params={"run": target})

# -- actions on the whole cluster ----------------------------------------------------------------------------------
st.subheader("Act on this cluster")
reviewer = st.text_input("Your name", key="reviewer", placeholder="e.g. maria.k").strip()
label_col, queue_col = st.columns(2)
with label_col:
    codes = uc.label_codes()
    code = st.selectbox("Label", codes, key="bulk_code")
    note = st.text_input("Note (optional)", key="bulk_note")
    pending = st.session_state.get("_pending_label")
    if st.button(f"Label all {len(run_ids)} runs", disabled=not reviewer, key="label_cluster"):
        st.session_state["_pending_label"] = pending = {"cluster": cluster, "code": code, "n": len(run_ids)}
    if pending and pending["cluster"] == cluster:
        st.warning(f"This adds the label {pending['code']} to all {pending['n']} runs of cluster "
                   f"#{pending['cluster']}, as {reviewer or '?'}. Undo takes the whole batch back.")
        yes, no = st.columns(2)
        if yes.button("Confirm", type="primary", key="confirm_label", disabled=not reviewer):
            uc.label_cluster(run_ids, pending["code"], reviewer, note)
            st.session_state.pop("_pending_label")
            st.session_state["_flash"] = f"Labeled {pending['n']} runs as {pending['code']}."
            st.rerun()
        if no.button("Cancel", key="cancel_label"):
            st.session_state.pop("_pending_label")
            st.rerun()
    if st.button("Undo my last label action", disabled=not reviewer, key="undo_label"):
        n = uc.undo(reviewer)
        st.session_state["_flash"] = f"Undone: {n} label events reversed." if n else "Nothing left to undo."
        st.rerun()
with queue_col:
    assignee = st.text_input("Send to the review queue of", key="assignee", placeholder="reviewer name").strip()
    if st.button(f"Assign {len(run_ids)} runs", disabled=not assignee, key="assign_cluster"):
        n = uc.send_to_queue(run_ids, assignee, reviewer)
        st.session_state["_flash"] = f"{n} runs are in the review queue of {assignee}."
        st.rerun()
flash = st.session_state.pop("_flash", None)
if flash:
    st.success(flash)

# -- across time ----------------------------------------------------------------------------------------------
st.subheader("Across time")
kind = st.radio("Compare", ("two periods", "two versions"), horizontal=True, key="compare_kind")
opts = ui.filter_options()
request = None
if kind == "two periods" and opts["date_max"] is not None:
    end = opts["date_max"]
    a, b = st.columns(2)
    before = a.date_input("Last period", (end - timedelta(days=13), end - timedelta(days=7)), key="before_period")
    after = b.date_input("This period", (end - timedelta(days=6), end), key="after_period")
    if len(before) == 2 and len(after) == 2:
        request = ("periods", tuple(before), tuple(after))
elif kind == "two versions" and len(opts["versions"]) >= 2:
    a, b = st.columns(2)
    v_before = a.selectbox("Earlier version", opts["versions"], index=0, key="before_version")
    v_after = b.selectbox("Later version", opts["versions"], index=len(opts["versions"]) - 1, key="after_version")
    request = ("versions", v_before, v_after)
else:
    st.info("Not enough dates or versions to compare.")
# Two clusterings take a few seconds: they run when asked, and stay shown while the inputs stay the same.
if request is not None and st.button("Compare", key="compare"):
    st.session_state["_compare"] = (request, flt)
if request is not None and st.session_state.get("_compare") == (request, flt):
    how, before, after = request
    comparison = (uc.compare_periods(before, after, flt) if how == "periods"
                  else uc.compare_versions(before, after, flt))
    st.dataframe(comparison, hide_index=True, key="comparison", column_config={
        "change": "Change", "name_before": st.column_config.TextColumn("Before", width="medium"),
        "name_after": st.column_config.TextColumn("After", width="medium"),
        "rate_before": st.column_config.NumberColumn("per 1k runs before", format="%.1f"),
        "rate_after": st.column_config.NumberColumn("per 1k runs after", format="%.1f"),
        "similarity": st.column_config.NumberColumn("Match", format="%.2f"),
    })
