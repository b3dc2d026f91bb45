"""Quality gates: Great Expectations suites run on what a stage wrote, before the next stage reads it."""
