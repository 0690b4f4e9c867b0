"""What a run records about its code and environment when it starts (issue 6, part 1).

Scripts run in a subprocess inside a temporary git repository, so ``sys.argv[0]`` is
the entry script, as in a real job; each prints its run as JSON.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import evtrack
from evtrack.tracking import context, gitinfo

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]

SCRIPT = textwrap.dedent(
    """
    import json, sys, evtrack
    evtrack.set_tracking_uri(sys.argv[1])
    kwargs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    with evtrack.start_run(**kwargs) as run:
        pass
    client = evtrack.MlflowClient()
    arts = sorted(f.path for f in client.list_artifacts(run.info.run_id, "evtrack"))
    out = {"tags": evtrack.get_run(run.info.run_id).data.tags, "artifacts": arts, "run_id": run.info.run_id}
    if "evtrack/git_diff.patch" in arts:
        out["diff"] = open(client.download_artifacts(run.info.run_id, "evtrack/git_diff.patch")).read()
    print(json.dumps(out))
    """
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit holding ``train.py`` and ``data.txt``, and a remote with credentials."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text(SCRIPT)
    (root / "data.txt").write_text("one\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first")
    _git(root, "remote", "add", "origin", "https://alice:s3cret@git.example.com/team/project.git")
    return root


@pytest.fixture
def env(fresh_evtrack: None, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of the scripts: capture switches unset (on by default), temp spool/cache dirs."""
    for name in (
        "EVTRACK_CAPTURE_ENV",
        "EVTRACK_CAPTURE_GIT",
        "EVTRACK_RUN_ID",
        "EVTRACK_TRACKING_URI",
        "EVTRACK_EXPERIMENT_ID",
        "EVTRACK_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    return dict(os.environ)


def run_script(
    repo: Path, store: str, env: dict[str, str], kwargs: dict[str, Any] | None = None, **extra_env: str
) -> dict[str, Any]:
    args = [sys.executable, str(repo / "train.py"), store] + ([json.dumps(kwargs)] if kwargs else [])
    proc = subprocess.run(args, cwd=repo.parent, capture_output=True, text=True, timeout=60, env={**env, **extra_env})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_clean_tree_gives_commit_branch_url_and_no_diff(repo: Path, local_uri: str, env: dict) -> None:
    out = run_script(repo, local_uri, env)
    tags = out["tags"]
    assert tags[context.GIT_COMMIT] == _git(repo, "rev-parse", "HEAD")
    assert tags[context.GIT_BRANCH] == "main"
    assert tags[context.GIT_REPO_URL] == "https://git.example.com/team/project.git"  # credentials stripped
    assert tags[context.GIT_DIRTY] == "false"
    assert tags[context.SOURCE_NAME] == str(repo / "train.py") and tags[context.SOURCE_TYPE] == "LOCAL"
    assert "evtrack/git_diff.patch" not in out["artifacts"]


def test_a_dirty_tree_stores_its_diff(repo: Path, local_uri: str, env: dict) -> None:
    (repo / "data.txt").write_text("one\ntwo changed\n")
    (repo / "untracked.txt").write_text("not part of the diff")
    out = run_script(repo, local_uri, env)
    assert out["tags"][context.GIT_DIRTY] == "true"
    assert "evtrack/git_diff.patch" in out["artifacts"]
    assert "+two changed" in out["diff"] and "data.txt" in out["diff"]
    assert "untracked" not in out["diff"]


def test_staged_changes_count_and_a_detached_head_has_no_branch(repo: Path, local_uri: str, env: dict) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "--detach", head)
    (repo / "data.txt").write_text("staged\n")
    _git(repo, "add", "data.txt")
    out = run_script(repo, local_uri, env)
    assert out["tags"][context.GIT_COMMIT] == head
    assert context.GIT_BRANCH not in out["tags"]
    assert out["tags"][context.GIT_DIRTY] == "true" and "+staged" in out["diff"]


def test_environment_tags_and_requirements(repo: Path, local_uri: str, env: dict) -> None:
    first = run_script(repo, local_uri, env)
    second = run_script(repo, local_uri, env)
    tags = first["tags"]
    assert tags[context.PYTHON_VERSION] == ".".join(map(str, sys.version_info[:3]))
    assert tags[context.HOST] == socket.gethostname()
    assert tags["mlflow.user"]
    assert len(tags[context.ENV_DIGEST]) == 16
    assert second["tags"][context.ENV_DIGEST] == tags[context.ENV_DIGEST]  # same packages, same digest
    assert "evtrack/requirements.txt" in first["artifacts"]
    client = evtrack.MlflowClient(local_uri)
    text = Path(client.download_artifacts(first["run_id"], "evtrack/requirements.txt")).read_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    names = [line.split("==")[0].lower().replace("_", "-").replace(".", "-") for line in lines]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert any(line.startswith("pyarrow==") for line in lines)
    assert tags[context.ENV_DIGEST] in text.splitlines()[0]


def test_the_digest_follows_the_package_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    base = context.environment()
    assert context.environment() is base  # computed once per process
    first: dict[str, Any] = {}
    for dist in metadata.distributions():  # the first of each name, as the environment is read
        first.setdefault(dist.metadata["Name"].lower().replace("_", "-"), dist)
    dists = list(first.values())
    context.environment.cache_clear()
    try:
        monkeypatch.setattr(metadata, "distributions", lambda: dists)
        assert context.environment().digest == base.digest
        monkeypatch.setattr(metadata, "distributions", lambda: list(reversed(dists)))
        context.environment.cache_clear()
        assert context.environment().digest == base.digest  # order does not matter
        monkeypatch.setattr(metadata, "distributions", lambda: [d for d in dists if d.metadata["Name"] != "pyarrow"])
        context.environment.cache_clear()
        assert context.environment().digest != base.digest
    finally:
        context.environment.cache_clear()


@pytest.mark.parametrize("how", ["argument", "variable"])
def test_capture_can_be_switched_off(repo: Path, local_uri: str, env: dict, how: str) -> None:
    (repo / "data.txt").write_text("dirty\n")
    if how == "argument":
        out = run_script(repo, local_uri, env, {"capture_git": False, "capture_env": False})
    else:
        out = run_script(repo, local_uri, env, EVTRACK_CAPTURE_GIT="false", EVTRACK_CAPTURE_ENV="0")
    assert not any(k.startswith(("mlflow.source.git.", "evtrack.")) for k in out["tags"])
    assert out["artifacts"] == []
    assert out["tags"]["mlflow.user"] and out["tags"]["mlflow.source.name"]  # always recorded
    only_env = run_script(repo, local_uri, env, EVTRACK_CAPTURE_GIT="off")
    assert context.ENV_DIGEST in only_env["tags"] and context.GIT_COMMIT not in only_env["tags"]
    arg_wins = run_script(repo, local_uri, env, {"capture_git": True}, EVTRACK_CAPTURE_GIT="false")
    assert arg_wins["tags"][context.GIT_DIRTY] == "true"


def test_a_joined_run_records_only_what_it_lacks(repo: Path, local_uri: str, env: dict) -> None:
    client = evtrack.MlflowClient(local_uri)
    run_id = client.create_run("0", tags={context.GIT_COMMIT: "abc"}).info.run_id
    client.flush()
    out = run_script(repo, local_uri, env, EVTRACK_RUN_ID=run_id)
    assert out["run_id"] == run_id
    assert out["tags"][context.GIT_COMMIT] == "abc"  # kept: git was recorded by whoever created the run
    assert context.GIT_DIRTY not in out["tags"]
    assert context.ENV_DIGEST in out["tags"] and out["artifacts"] == ["evtrack/requirements.txt"]


def test_no_git_no_repository_never_fail_a_run(tmp_path: Path, local_uri: str, env: dict) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    out = run_script(tmp_path, local_uri, env, PATH="/nonexistent")  # not a repo, and no git binary
    assert not any(k.startswith("mlflow.source.git.") for k in out["tags"])
    assert context.ENV_DIGEST in out["tags"]


def test_credentials_are_stripped_from_remote_urls() -> None:
    assert gitinfo.strip_credentials("https://u:tok@github.com/a/b.git") == "https://github.com/a/b.git"
    assert gitinfo.strip_credentials("https://tok@host:8443/x") == "https://host:8443/x"
    assert gitinfo.strip_credentials("git@github.com:a/b.git") == "git@github.com:a/b.git"
    assert gitinfo.strip_credentials("https://github.com/a/b") == "https://github.com/a/b"


def test_capture_enabled() -> None:
    assert context.capture_enabled(None, "EVTRACK_NO_SUCH_VARIABLE")
    os.environ["EVTRACK_TEST_SWITCH"] = "Off"
    try:
        assert not context.capture_enabled(None, "EVTRACK_TEST_SWITCH")
        assert context.capture_enabled(True, "EVTRACK_TEST_SWITCH")
    finally:
        del os.environ["EVTRACK_TEST_SWITCH"]
