"""Research cohorts: define a cohort (JSON), describe it (flow, Table 1), export it de-identified (bundle).

Pure functions of (engine, definition) -> DataFrame, so the CLI, the notebooks and a dashboard page share them.
"""
