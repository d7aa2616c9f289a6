from refund_logistics.models import metadata
from recall_shared.migrations import run_env

run_env(metadata)
