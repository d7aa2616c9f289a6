"""Session-wide test settings: tests run with RECALL_ALERTS_ENV=test semantics, which refuse the
development secrets, so every test process gets strong throwaway ones unless a test sets its own."""

import os

os.environ.setdefault("RECALL_ALERTS_JWT_SECRET", "test-session-jwt-secret-" + "j" * 32)
os.environ.setdefault("RECALL_ALERTS_API_KEY_PEPPER", "test-session-api-key-pepper-" + "p" * 32)
