"""Whole pytest runs with --kaudit-backend=kind against REAL kind.

Each run is a separate `python -m pytest` process, as a user's CI would start it: reuse and
keep across two runs, Ctrl-C and SIGKILL in the middle of `kind create cluster`, two xdist
workers, and a user base config that adds a worker node.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import ctrl_c_interrupts
from tests.real_kind.conftest import kind_containers

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    resources: [{group: "", resources: ["pods"]}]
"""


def _write_suite(tmp_path: Path, body: str) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    suite = tmp_path / "test_suite.py"
    suite.write_text(
        textwrap.dedent(
            """
            import json
            import os
            import subprocess
            from pathlib import Path

            import pytest

            pytestmark = pytest.mark.kaudit(policy="policy.yaml")

            def record(kaudit, name):
                nodes = subprocess.run(
                    ["kind", "get", "nodes", "--name", kaudit.handle.name],
                    capture_output=True, text=True, check=True).stdout.split()
                Path(os.environ["OUT_DIR"], name).write_text(json.dumps(
                    {"cluster": kaudit.handle.name, "nodes": nodes,
                     "details": kaudit.handle.details}))
            """
        )
        + textwrap.dedent(body)
    )
    return suite


def _run(
    tmp_path: Path, image: str, *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = dict(os.environ, OUT_DIR=str(out))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
         "--kaudit-backend=kind", f"--kaudit-kind-image={image}", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )


def _recorded(tmp_path: Path, name: str) -> dict[str, object]:
    import json

    return dict(json.loads((tmp_path / "out" / name).read_text()))


def _node_ids(cluster: str) -> list[str]:
    proc = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={cluster}"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return sorted(proc.stdout.split())


# A namespace new to the cluster on every run (a kept cluster keeps the last run's objects).
ONE_TEST = """
def test_pod_in_a_new_namespace(kaudit):
    kaudit.create_pod("p", "fresh-" + kaudit.namespace.rsplit("-", 1)[-1])
    kaudit.expect(verb="create", resource="pods", name="p").logged(level="Metadata")
    record(kaudit, "one")
"""


def test_real_kind_reuse_and_keep_across_two_runs(
    tmp_path: Path, kind_node_image: str, kind_state: Path
) -> None:
    _write_suite(tmp_path, ONE_TEST)
    first = _run(tmp_path, kind_node_image, "--kaudit-reuse", "--kaudit-keep")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    cluster = str(_recorded(tmp_path, "one")["cluster"])
    try:
        nodes = _node_ids(cluster)
        assert nodes, "--kaudit-keep: the cluster is gone after the first run"
        started = time.monotonic()
        second = _run(tmp_path, kind_node_image, "--kaudit-reuse", "--kaudit-keep")
        print(f"second run on a kept cluster: {time.monotonic() - started:.1f}s")
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
        again = _recorded(tmp_path, "one")
        assert again["cluster"] == cluster
        assert dict(again["details"])["reused"] == "true"  # type: ignore[call-overload]
        assert _node_ids(cluster) == nodes, "the second run re-created the nodes"
    finally:
        subprocess.run(["kind", "delete", "cluster", "--name", cluster,
                        "--kubeconfig", os.devnull], capture_output=True, timeout=180)


def _interrupt_during_create(tmp_path: Path, image: str, sig: signal.Signals) -> None:
    _write_suite(tmp_path, ONE_TEST)
    before = set(kind_containers())
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "--kaudit-backend=kind", f"--kaudit-kind-image={image}"],
        cwd=tmp_path, env=dict(os.environ, OUT_DIR=str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # the signal goes to pytest only, as a CI runner's would
        preexec_fn=ctrl_c_interrupts,
    )
    try:
        deadline = time.monotonic() + 180
        while not set(kind_containers()) - before:
            assert proc.poll() is None, f"pytest ended before kind made a node: {proc.stdout}"
            assert time.monotonic() < deadline, "no kind node container appeared"
            time.sleep(0.2)
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (out / "one").exists(), "the test ran: the signal came too late to test anything"
    deadline = time.monotonic() + 120
    while set(kind_containers()) - before:
        assert time.monotonic() < deadline, (
            f"kind node containers left after {sig.name} during create: "
            f"{sorted(set(kind_containers()) - before)}\n{output[-3000:]}"
        )
        time.sleep(0.5)


def test_real_kind_ctrl_c_during_create_leaves_no_container(
    tmp_path: Path, kind_node_image: str, kind_state: Path
) -> None:
    _interrupt_during_create(tmp_path, kind_node_image, signal.SIGINT)


def test_real_kind_sigkill_during_create_leaves_no_container(
    tmp_path: Path, kind_node_image: str, kind_state: Path
) -> None:
    _interrupt_during_create(tmp_path, kind_node_image, signal.SIGKILL)


def test_real_kind_two_xdist_workers_get_two_clusters(
    tmp_path: Path, kind_node_image: str, kind_state: Path
) -> None:
    _write_suite(
        tmp_path,
        """
        def test_a(kaudit):
            kaudit.create_pod("a", "ns-a")
            kaudit.expect(verb="create", resource="pods", name="a").logged(level="Metadata")
            record(kaudit, "a")

        def test_b(kaudit):
            kaudit.create_pod("b", "ns-b")
            kaudit.expect(verb="create", resource="pods", name="b").logged(level="Metadata")
            record(kaudit, "b")
        """,
    )
    proc = _run(tmp_path, kind_node_image, "-n", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout
    assert _recorded(tmp_path, "a")["cluster"] != _recorded(tmp_path, "b")["cluster"]


def test_real_kind_base_config_with_a_worker_node(
    tmp_path: Path, kind_node_image: str, kind_state: Path
) -> None:
    (tmp_path / "kind.yaml").write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
        "nodes:\n  - role: control-plane\n  - role: worker\n"
    )
    _write_suite(tmp_path, ONE_TEST)
    proc = _run(tmp_path, kind_node_image, "--kaudit-kind-config=kind.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    recorded = _recorded(tmp_path, "one")
    nodes = list(recorded["nodes"])  # type: ignore[call-overload]
    assert len(nodes) == 2 and any(n.endswith("-worker") for n in nodes), nodes


def test_real_kind_example_suite_on_a_fresh_cluster(
    kind_node_image: str, kind_state: Path
) -> None:
    """The brief's own scenario, 6/6 on a freshly created cluster (CI runs it once more)."""
    from tests.conftest import EXAMPLES

    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES), "-p", "no:cacheprovider", "-q",
         "--kaudit-backend=kind", f"--kaudit-kind-image={kind_node_image}"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "6 passed" in proc.stdout
