"""`python -m bench` (make bench); `python -m bench --large` (make bench-large). See bench/README.md."""

from bench.cli import main

raise SystemExit(main())
