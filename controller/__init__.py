"""karchive's controller: the pipeline that runs the policy, and its seams to the outside.

Where an entry goes, by folder and file::

    cli/                    thin commands: parse, call the runtime, print (plan, apply, run, …)
    compose.py              the composition root: every adapter of one policy, built in one place
    runtime/pipeline.py     observe → classify once → diff, for every entry point
      runtime/index.py        the daemon's entry index: walked each resync, refreshed between
      runtime/observe.py      observed: Kaltura's entries joined with the archive, page by page
      policies/state.py       classified: what each entry is
      policies/desired.py     decided: what the policy wants of it
      policies/plan.py        diffed: the plan's items and its census
    runtime/executor.py     acted on: each item through its reconcilers (reconcilers/)
    runtime/journal.py      recorded: the audit trail (JSONL, shipped to the archive)
    runtime/metrics.py      recorded: what /metrics serves (runtime/http.py)
    runtime/state.py        remembered: the state directory and its SQLite store (backoff)
    runtime/daemon.py       the loop: one pipeline pass and one executor run per cycle
    adapters/               one seam per outside system, each a typed port with one error table
      kaltura/                session (pacing, retries), read, write, download
      storage/                S3 (bucket.py, s3.py, inventory.py, writer.py), a folder (local.py),
                              the leases (lease.py)
      ldap.py                 the owners' directory
    errors.py               the error tree and the conventions every adapter follows
"""
