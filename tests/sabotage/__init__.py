"""pytest plugins that break fedbench on purpose (``-p sabotage.<name>``): tests/test_sabotage.py runs
the suite's own tests under each and expects them to fail, which shows those tests can fail."""
