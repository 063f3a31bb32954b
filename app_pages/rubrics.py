"""Rubrics: choose or edit a rubric, score the filtered runs, and read pass rates, failing runs and agreement."""

import streamlit as st

import workbench_ui as ui
from workbench import viz_ops
from workbench_ui import ops

ui.require_data()
st.title("Rubrics")
flt = ui.filter_sidebar()

sources = ops.rubric_sources()
stored = ops.versions()
choices = [f"file: {name}" for name in sources] + [
    f"stored: {r.rubric_id} @ {r.version}" for r in stored.itertuples()]
if not choices:
    st.info("No rubric yet: write one below (see docs/rubrics.md for the schema).")
choice = st.selectbox("Rubric", choices or ["(new)"], key="rubric", bind="query-params")
if choice.startswith("file: "):
    initial = sources[choice.removeprefix("file: ")].read_text(encoding="utf-8")
elif choice.startswith("stored: "):
    row = stored.iloc[choices.index(choice) - len(sources)]
    initial = row["source_text"] or ""
else:
    initial = 'name = "my-rubric"\n\n[[criteria]]\nid = "outcome"\ncheck = "outcome"\n'

with st.expander("Definition (TOML): edit to make a new version", expanded=False):
    text = st.text_area("Rubric text", value=initial, height=360, key=f"text:{choice}")
rubric_json, error = ops.parse(text)
if error:
    st.error("This rubric is not valid; nothing was scored.")
    st.code(error, language=None, wrap_lines=True)
    st.stop()
rubric = ops.rubric_of(rubric_json)
st.text(f"{rubric.name} · version {rubric.version} · {len(rubric.criteria)} criteria · "
        f"pass threshold {rubric.pass_threshold:.0%}")

if st.button("Score the filtered runs", type="primary"):
    with st.spinner("Scoring ..."):
        report = ops.score(rubric_json, flt, text)
    st.success(f"Scored {report.n_runs:,} runs in {report.seconds:.1f} s.")
    st.dataframe(report.summary, hide_index=True, placeholder="–")
    if report.not_scored:
        st.caption("Not scored here: human criteria (enter them below) and judge criteria without a judge.")
    stored = ops.versions()

mine = stored[stored["rubric_id"] == rubric.name]
scored = mine[mine["runs_scored"] > 0]
if scored.empty:
    st.info("No scores for this rubric yet: press the button to score the filtered runs.")
    st.stop()
labels = list(scored["version"])
default = labels.index(rubric.version) if rubric.version in labels else 0
version = st.selectbox("Scores of version", labels, index=default, key="rubric_version",
                       help="Each version keeps its own scores; an edited rubric is a new version.")
if version != rubric.version:
    st.caption("Showing an older version's scores against the rubric as it was then.")
    rubric_json = ops.stored_rubric_json(rubric.name, version)
    rubric = ops.rubric_of(rubric_json)

v = ops.verdicts(rubric_json, version, flt)
cols = st.columns(4)
cols[0].metric("Runs scored", ui.fmt_int(len(v)))
cols[1].metric("Rubric pass rate", ui.fmt_pct((v["verdict"] == "pass").mean() if len(v) else None))
cols[2].metric("Failed a required criterion", ui.fmt_int(int(v["required_failed"].sum())))
cols[3].metric("Awaiting human or judge scores", ui.fmt_int(int((v["unscored"] > 0).sum())))

rates, failing, agree, human = st.tabs(["Pass rates", "Failing runs", "Agreement", "Human scores"])
with rates:
    by_version = ops.pass_rates(rubric_json, version, ("agent", "agent_version"), flt)
    by_version = by_version.assign(agent_version=by_version["agent"].astype(str) + " · "
                                   + by_version["agent_version"].astype(str))
    st.plotly_chart(viz_ops.pass_rate_heatmap(by_version, "agent_version"))
    by_week = ops.pass_rates(rubric_json, version, ("week",), flt)
    st.plotly_chart(viz_ops.pass_rate_heatmap(by_week, "week"))
    st.dataframe(by_week, hide_index=True, placeholder="–",
                 column_config={"pass_rate": st.column_config.NumberColumn("Pass rate", format="percent")})

with failing:
    ids = [c.id for c in rubric.criteria]
    crit = st.selectbox("Criterion", ids, key="criterion", bind="query-params",
                        format_func=lambda c: f"{c} — {rubric.criterion(c).title}" if rubric.criterion(c).title else c)
    frame = ops.failing_runs(rubric_json, version, crit, flt)
    st.text(f"{len(frame):,} failing run(s) shown (newest first, at most 500)")
    if not frame.empty:
        frame = frame.assign(open=[f"run?run={r}" + (f"&step={s}" if isinstance(s, str) else "")
                                   for r, s in zip(frame["run_id"], frame["step_id"], strict=True)])
        st.dataframe(frame, hide_index=True, placeholder="–",
                     column_order=["open", "agent", "agent_version", "started_at", "outcome", "value", "evidence",
                                   "step_id", "scorer"],
                     column_config={"open": st.column_config.LinkColumn("Run", display_text=r"run\?run=([^&]*)")})

with agree:
    against = st.radio("Compare the verdict with", ["outcome", "labels"], horizontal=True, key="against")
    ag = ops.agreement(rubric_json, version, against, flt)
    if ag.n == 0:
        st.info("Nothing to compare: no scored run has this reference (labels come from the Review page).")
    else:
        c1, c2, c3 = st.columns(3)
        c1.metric("Runs compared", ui.fmt_int(ag.n))
        c2.metric("Agreement", ui.fmt_pct(ag.accuracy))
        c3.metric("Cohen's kappa", "–" if ag.kappa is None else f"{ag.kappa:.2f}")
        st.plotly_chart(viz_ops.confusion(ag.matrix, f"Verdict against {against}"))
        st.dataframe(ag.disagreements, hide_index=True, placeholder="–")

with human:
    human_ids = [c.id for c in rubric.criteria if c.kind == "human"]
    if not human_ids:
        st.info("This rubric has no human criteria.")
    else:
        with st.form("human_score"):
            run_id = st.text_input("Run id").strip()
            reviewer = st.text_input("Reviewer").strip()
            crit = st.selectbox("Criterion", human_ids,
                                format_func=lambda c: f"{c} ({rubric.criterion(c).scale})")
            value = st.select_slider("Score: 0 fail / 1 pass, or 1 to 5", options=[0, 1, 2, 3, 4, 5], value=1)
            note = st.text_input("Note (optional)")
            if st.form_submit_button("Record"):
                problem = ops.record_human(rubric_json, run_id, crit, reviewer, value, note)
                if problem:
                    st.error("Not recorded.")
                    st.code(problem, language=None)
                else:
                    st.success("Recorded.")
