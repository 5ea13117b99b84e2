"""One module per page: `layout(**path_vars)` (static skeleton, no I/O) and `register(app, ctx)` (callbacks).

The page callbacks are thin: `queries.x(engine, scope, filters)` then `figures.y(df)`. Each callback body is a
plain module-level function taking the `AppContext` first, so tests call it directly without a browser.
"""
