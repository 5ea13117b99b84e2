"""The warehouse both sides share: schema, engine set-up, measures catalog and migrations.

`etl` writes it and `dashboard` reads it; neither defines tables of its own, so a column means the same on both
sides.
"""
