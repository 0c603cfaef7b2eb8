"""``tinycnn report``: every table and figure of the lecture rebuilt from code, and a claims ledger.

The package is split the way the work is:

- :mod:`reports.runs` - one frozen spec per training run, executed once, in parallel, each run
  seeded by its spec (never by the worker that happens to run it);
- computations, each a pure function returning a DataFrame or arrays:
  :mod:`reports.static` (sections 1-3: counting and worked examples),
  :mod:`reports.dataset` (section 4), :mod:`reports.gradients` (section 5),
  :mod:`reports.experiments` (sections 6-11 and 13, from finished runs),
  :mod:`reports.architectures` (section 12);
- :mod:`reports.claims` - the claims ledger, the only place the lecture's stated values live;
- :mod:`reports.pipeline` - plans the runs and calls every section;
- :mod:`reports.figures` and :mod:`reports.render` - PNG, CSV and REPORT.md, nothing computed;
- :mod:`reports.command` - the ``tinycnn report`` subcommand.
"""
