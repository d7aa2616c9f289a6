"""recall-intake: sellers and operators post, version and publish recalls (port 8001)."""
