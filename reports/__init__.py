"""``tinycnn report``: every table and figure of the lecture rebuilt from code, and a claims ledger.

The package is split the way the work is:

- :mod:`tinycnn.reports.runs` - one frozen spec per training run, executed once, in parallel, each
  run seeded by its spec (never by the worker that happens to run it);
- computations, each a pure function returning a DataFrame or arrays:
  :mod:`tinycnn.reports.static` (sections 1-3: counting and worked examples),
  :mod:`tinycnn.reports.dataset` (section 4), :mod:`tinycnn.reports.gradients` (section 5),
  :mod:`tinycnn.reports.experiments` (sections 6-11 and 13, from finished runs),
  :mod:`tinycnn.reports.digits` (sections 10a and 10c: real handwritten digits),
  :mod:`tinycnn.reports.translation` (section 10b: shifted images, equivariance),
  :mod:`tinycnn.reports.architectures` (section 12);
- :mod:`tinycnn.reports.claims` - the claims ledger, the only place the lecture's stated values
  live, and the separate ledger of its general claims tested on real data;
- :mod:`tinycnn.reports.pipeline` - plans the runs and calls every section;
- :mod:`tinycnn.reports.figures` and :mod:`tinycnn.reports.render` - PNG, CSV and REPORT.md,
  nothing computed;
- :mod:`tinycnn.reports.command` - the ``tinycnn report`` subcommand.
"""
