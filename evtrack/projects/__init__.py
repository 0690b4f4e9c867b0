"""Projects: run a directory or git repository with an ``MLproject`` file, as MLflow Projects.

    submitted = evtrack.projects.run("examples/taxi-regression", parameters={"alpha": 0.5},
                                     env_manager="local")
    submitted.run_id, submitted.get_status()

or ``evtrack run examples/taxi-regression -P alpha=0.5 --env-manager local``.
See ``spec`` (the MLproject file), ``fetch`` (directories and git URIs), ``envs``
(local and virtualenv environments) and ``runner`` (the run itself).
"""

from evtrack.projects.runner import SubmittedRun, run
from evtrack.projects.spec import EntryPoint, ExecutionError, Parameter, Project, load_project

__all__ = ["run", "SubmittedRun", "load_project", "Project", "EntryPoint", "Parameter", "ExecutionError"]
