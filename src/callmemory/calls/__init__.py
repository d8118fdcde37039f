"""Call handling: a platform's call event taken through memory and the conversation and answered.

The room above `memory/` and `conversation/`, which it drives; `core/` below them all holds only the
vocabulary every layer shares (events, identity, trust, errors, what can be stored).
"""
