"""Entry point of the review workbench app: page setup and navigation, nothing else."""

import streamlit as st

st.set_page_config(page_title="Agent review workbench", layout="wide")
st.navigation(
    [
        st.Page("app_pages/overview.py", title="Overview", icon=":material/monitoring:", default=True),
        st.Page("app_pages/runs.py", title="Runs", icon=":material/table_rows:"),
        st.Page("app_pages/run.py", title="Replay", icon=":material/route:", url_path="run"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
        st.Page("app_pages/clusters.py", title="Clusters", icon=":material/bubble_chart:", url_path="clusters"),
        st.Page("app_pages/rubrics.py", title="Rubrics", icon=":material/rule:", url_path="rubrics"),
        st.Page("app_pages/costs.py", title="Costs", icon=":material/payments:", url_path="costs"),
        st.Page("app_pages/review.py", title="Review", icon=":material/label:", url_path="review"),
        st.Page("app_pages/labels.py", title="Labels", icon=":material/fact_check:", url_path="labels"),
        st.Page("app_pages/maturity.py", title="Maturity", icon=":material/radar:", url_path="maturity"),
        st.Page("app_pages/import_page.py", title="Import", icon=":material/upload_file:", url_path="import"),
    ]
).run()
