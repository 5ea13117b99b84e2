"""Figures: plain functions `DataFrame -> go.Figure`, no I/O, so each can be tested by calling it."""
