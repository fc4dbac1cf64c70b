"""Past one machine (a PostgreSQL ``database_url``): ``aggregator worker`` processes, any number on any
machine, fetch due feeds, parse them and extract their pages (the costly, stateless part), and leave
each answer in the database's inbox; one ``aggregator clusterer`` at a time stores the answers in the
order they arrived and places their articles into stories (the cheap, stateful part), while others
stand by and take over when it dies.

- ``codec``: a feed's answer (``ingest.FeedBatch``) as bytes for the inbox, and back;
- ``jobs``: the work queue (procrastinate on the same PostgreSQL): the polling task and the periodic
  task that finds due feeds;
- ``hostslots``: at most ``fetch.per_host_concurrency`` requests in flight per host over all workers;
- ``clusterer``: the standby loop and the role the daemon plays as the clusterer.
"""

POLL_TASK = "aggregator.poll"  # the workers' polling task (``jobs``; the clusterer asks whether any is queued or running)
