"""A compaction process of its own: the system allocator for Arrow, chosen before pyarrow loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SETUP = (
    "import sys\n"
    "import compaction\n"
    "from compaction.process_setup import setup_compaction_process\n"
    "assert 'pyarrow' not in sys.modules, 'importing compaction loaded pyarrow'\n"
    "setup_compaction_process()\n"
    "from compaction import compact\n"
    "import pyarrow as pa\n"
    "print(pa.default_memory_pool().backend_name, callable(compact))\n"
)


def _run(env_pool: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if env_pool:
        env["ARROW_DEFAULT_MEMORY_POOL"] = env_pool
    out = subprocess.run([sys.executable, "-c", SETUP], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_compaction_process_allocates_with_the_system_allocator() -> None:
    assert _run(None) == "system True"


def test_a_pool_the_user_chose_is_kept() -> None:
    import pyarrow as pa

    if "jemalloc" not in pa.supported_memory_backends():
        pytest.skip("this pyarrow has no jemalloc")
    assert _run("jemalloc") == "jemalloc True"
