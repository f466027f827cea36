"""`stocksync doctor`: is this deployment healthy, and if not, what fixes it.

Facts are gathered once by an adapter (gather.py: Kafka admin and consumer, a raw ApiVersions
probe, the workers' HTTP endpoints) into plain data (facts.py); every check is a pure function
from facts to one row (checks.py); report.py prints the rows as a table or JSON.
"""
