"""Fields ringrun accepts but that have no effect where the job runs, named so that nobody relies on them unawares.

In a pod (`ringrun entrypoint`) the operator acts on the job-level fields (TTL, gang scheduling, queues); on one
machine (`ringrun run`) ringrun stands in for the operator, and these are the ones it does not act on. Pure.
"""


def ignored_locally(job):
    """[(field path, why)] of the fields of `job` that `ringrun run` accepts and does not act on."""
    ignored = []
    policy = job.run_policy
    if policy.ttl_seconds_after_finished is not None:
        ignored.append(("spec.runPolicy.ttlSecondsAfterFinished",
                        "a local run keeps nothing to delete: its processes end with it and its run directory is "
                        "removed"))
    if policy.scheduling_policy:
        ignored.append(("spec.runPolicy.schedulingPolicy", "gang scheduling is the cluster scheduler's; every "
                                                           "replica starts at once here"))
    if policy.managed_by is not None:
        ignored.append(("spec.runPolicy.managedBy", f"{policy.managed_by!r} manages the job in a cluster; ringrun "
                                                    "runs it here"))
    if job.mpi is not None and job.mpi.launcher_creation_policy == "WaitForWorkersReady":
        ignored.append(("spec.launcherCreationPolicy", "MPI workers are slots of the launcher's mpirun here, ready "
                                                       "when it starts"))
    ignored.extend(job.ignored_locally)  # the kind's own (T9k's scheduler)
    return ignored
