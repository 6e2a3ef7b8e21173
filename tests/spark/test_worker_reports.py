"""Workers forked from the daemon leave their cache counts for the executor plugin (no cluster)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from flightpickle.spark.worker_reports import REPORTS_DIR

# A daemon's part in a fresh interpreter: set up reporting, then fork a worker
# that opens one sealed command three times while the parent opens it once.
DAEMON_AND_WORKER = textwrap.dedent(
    """
    import os, pickle, shutil, sys
    from flightpickle import sealing
    from flightpickle.spark import worker_reports

    report = worker_reports.report_from_workers(sys.argv[1])
    command = pickle.dumps(sealing.embed([1, 2]))
    pid = os.fork()
    if pid == 0:
        for _ in range(3):
            pickle.loads(command)
        os._exit(0)
    os.waitpid(pid, 0)
    pickle.loads(command)
    shutil.rmtree(report.directory)
    assert pickle.loads(command) == [1, 2]  # a lost directory costs the counts, not the load
    print("ok")
    """
)


def test_each_worker_keeps_its_own_cumulative_counts(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    snapshot = tmp_path / "snapshot"
    script = DAEMON_AND_WORKER.replace(
        "shutil.rmtree(report.directory)", f"shutil.copytree(report.directory, {str(snapshot)!r})\n"
        "shutil.rmtree(report.directory)"
    )
    out = subprocess.run([sys.executable, "-I", "-c", script, str(work)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    counts = sorted(path.read_text() for path in snapshot.iterdir())
    assert counts == ["0 1\n", "2 1\n"]  # the parent: one miss; the worker: one miss, then two hits
    assert all(path.name.endswith(".counts") for path in snapshot.iterdir())
    assert not (work / REPORTS_DIR).exists()
