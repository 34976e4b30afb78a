"""Grading: the trusted side. It decides scores and never runs a student's code itself.

- :mod:`.config`: how to grade (:class:`~.config.GradeConfig`), and whether cuda checks run;
- :mod:`.scoring`: one submission: extract, sandbox, checks, points;
- :mod:`.batch`: many: find them, reuse what is done, write each result as it arrives;
- :mod:`.pool`: grader processes, so several submissions are graded at once.

Nothing is imported here, so that the CLI can read the defaults without importing torch.
"""
