"""Running a playbook on a lab: steps, tracers, collection, events and the run directory.

    summary = await run_playbook(book, topology, state, paths, run_dir, on_step=print_step)
"""

from lab.run.results import RunDir, RunSummary, StepResult
from lab.run.runner import run_playbook

__all__ = ["RunDir", "RunSummary", "StepResult", "run_playbook"]
