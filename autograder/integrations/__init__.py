"""The tools `grade` works with, apart from the core: nbgrader's course and gradebook
(:mod:`.nbgrader_course`) and a Dask cluster (:mod:`.cluster`). Nothing is imported here."""
