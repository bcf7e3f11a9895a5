"""Running a playbook on a lab: steps, tracers, collection, events and the run directory.

    summary = await run_playbook(book, state, paths, run_dir, events=print_progress)
"""

from lab.run.results import RunDir, RunSummary, StepResult
from lab.run.runner import run_playbook

__all__ = ["RunDir", "RunSummary", "StepResult", "run_playbook"]
