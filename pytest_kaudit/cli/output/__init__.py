"""Machine-readable renderings of ``kaudit`` results (SARIF for code scanning)."""
