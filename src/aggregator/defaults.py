"""The safe defaults, as named constants: imported by the config (which validates settings against
them) and by the command line (whose help must start without loading the config machinery)."""

from pathlib import Path

DEFAULT_CONFIG_PATH = Path("config/feeds.yaml")
DEFAULT_INTERVAL_S = 15 * 60
MIN_INTERVAL_S = 60
MAX_INTERVAL_S = 24 * 3600
DEFAULT_JITTER = 0.1
MAX_BACKOFF_S = 6 * 3600
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 20.0
TOTAL_DEADLINE_S = 60.0
MAX_BODY_BYTES = 5 * 1024 * 1024
PER_HOST_CONCURRENCY = 2
MAX_CONCURRENCY = 32
MAX_REDIRECTS = 5
USER_AGENT = "aggregator/0.1 (+https://github.com/aggregator-news/aggregator)"
MIN_FEED_TEXT_CHARS = 400
WINDOW_HOURS = 72.0
MAX_DURATION_S = 366 * 86400.0
