"""``kaudit check``: audit requirements as data, decided by the engine, proven on a real
apiserver, fixed with engine-verified snippets, reported as text, JSON, JUnit or HTML.

This package root imports nothing heavy, so the CLI can read these names when it builds its
parser without loading the Kubernetes client or pytest.
"""

#: Report formats, in the order the CLI lists them.
FORMATS = ("text", "json", "junit", "html")
#: Packs checked when none are named.
DEFAULT_PACKS = ("cis", "secrets")
