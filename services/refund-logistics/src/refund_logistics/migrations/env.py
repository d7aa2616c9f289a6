from recall_shared.migrations import run_env
from refund_logistics.models import metadata

run_env(metadata)
