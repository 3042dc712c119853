"""The run kit every stage shares: run context, counters, queues, model turns, limiter, tuning.

The ordered description of the stages themselves is ``ytingest.stages.description.PIPELINE``.
"""
