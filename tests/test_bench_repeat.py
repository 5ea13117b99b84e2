"""`python -m bench --repeat N`: which run a case reports, and that memory and failures are not averaged away."""

from __future__ import annotations

from bench.cli import median_run, parse_args


def run(seconds: float, rss: float, reexport_rss: float = 100.0) -> dict:
    return {
        "ok": True,
        "first": {"seconds": seconds, "peak_rss_mb": rss, "cpu_seconds": seconds},
        "reexport": {"seconds": seconds / 2, "peak_rss_mb": reexport_rss},
    }


def test_the_median_run_is_reported_with_the_highest_peak_rss() -> None:
    out = median_run([run(5.0, 200), run(3.0, 250, reexport_rss=290), run(4.0, 210)])
    assert out["first"]["seconds"] == 4.0
    assert out["first"]["cpu_seconds"] == 4.0  # the same run's figures, not a mix
    assert out["runs"] == [5.0, 3.0, 4.0]
    assert out["first"]["peak_rss_mb"] == 250
    assert out["reexport"]["peak_rss_mb"] == 290


def test_an_even_count_reports_the_lower_middle_run() -> None:
    assert median_run([run(4.0, 1), run(3.0, 1)])["first"]["seconds"] == 3.0


def test_one_run_is_reported_as_it_was() -> None:
    one = run(2.0, 100)
    assert median_run([one]) is one


def test_a_failed_run_fails_the_case() -> None:
    out = median_run([run(3.0, 100), {"ok": False, "error": "timed out after 60 s"}, run(3.1, 100)])
    assert not out["ok"]
    assert out["error"] == "timed out after 60 s"
    assert (out["runs_failed"], out["runs_total"]) == (1, 3)


def test_repeat_defaults_to_one() -> None:
    assert parse_args([]).repeat == 1
    assert parse_args(["--repeat", "3"]).repeat == 3
