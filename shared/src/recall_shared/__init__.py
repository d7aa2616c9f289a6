"""Recall Alerts shared library.

Small on purpose: the event envelope and models, the topic catalog, Kafka client factories, the
transactional outbox and its relay, the inbox-deduplicating consumer runner with dead letters,
settings, auth, logging and metrics. Services hold the domain; nothing here knows about recalls
beyond the event contracts.
"""
