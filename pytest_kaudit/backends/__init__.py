"""Where the kube-apiserver under test runs: local processes, kind, k3s, an existing cluster.

Each backend is its own module or package here; none imports another (tests/test_layers.py).
"""
