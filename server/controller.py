"""The controller: runs stored jobs on this machine through the execution core, as `ringrun run` does, and writes
their status back to the store as it changes.

- Admission: jobs wait in order of creation until the cpu and memory their replicas request together (requests, or
  limits where a container gives none) fit what the admitted jobs leave free of the capacity (`--capacity`,
  default this machine's cores and memory); the first waiting job that does not fit holds the ones behind it, and
  a `Queued` condition says why. A job that could never fit (more than the whole capacity) says so and holds
  no one. Then the job starts whole.
- Each admitted job runs `ringrun.launcher.local.run_job` in a thread of its own that lives as long as the job
  (every replica's keeper has that thread as its parent: if the server dies, even by SIGKILL, the keepers stop
  the replicas), as the user, in the folder and with the environment server/jobusers.py gives it (never root's),
  with its own run directory, rendezvous port and logs (`DATA/logs/<uid>/`, written by the server). A workingDir
  outside the job's folder and the host paths the policy grants its namespace fails the job before it starts.
- A replace takes effect on a running job: a new activeDeadlineSeconds moves its deadline, cleanPodPolicy
  applies when it ends; a suspended job starts when `suspend` is set false. A delete stops the job's replicas
  (SIGTERM, SIGKILL after the grace period).
- A deleted job's folder is removed once its replicas are gone.
- Recovery at start: a job the store shows running was lost with the server that ran it (its replicas were
  stopped by their keepers): it is marked Failed, saying so; jobs not yet started are queued again.
- Stop (SIGTERM of the server): running jobs are stopped (Failed, interrupted by signal 15); queued ones stay queued.
"""

import contextlib
import dataclasses
import hmac
import os
import secrets
import signal
import threading
import time
import uuid

import yaml

from ringrun.launcher.files import write_into
from ringrun.launcher.local import Options, run_job
from ringrun.launcher.machine import machine_capacity
from ringrun.launcher.logfiles import Rotation
from ringrun.runtime import RingrunError, SpecError
from ringrun.runtime.local import processes, working_dirs
from ringrun.runtime.kinds.registry import kind_of, of
from ringrun.runtime.parse import parse_object
from ringrun.runtime.policy import job_policy
from ringrun.runtime.status import JobState, finished

from . import crds, events, pods
from . import store as store_module
from .api import resources
from .api.objects import job_requests, requests
from .api.resources import CONFIGMAPS, CRDS, EVENTS, NAMESPACES, PODS, preferred, resource_of
from .trainerapi import (STATUS_ENV_CA, STATUS_ENV_TOKEN, STATUS_ENV_URL, STATUS_FOLDER, TRAINER_NAMESPACE,
                         TRAINER_PUBLIC, published_runtimes, runtime_lookup, status_path, trainer_public)
from .clock import utc_now
from .datadir import private_dir
from .jobusers import JobUsersError, granted
from .rest import finish_namespace
from .strategies import namespace_object, strategy


class _Discard:
    """A text sink for replica output the server does not print (it is in the per-replica log files)."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass


@dataclasses.dataclass
class Run:
    resource: str
    namespace: str
    name: str
    uid: str
    cpu: float = 0.0
    memory: int = 0
    generation: int = 1  # the newest generation seen (a replace changes it while the job runs)
    launched: int = 1  # the generation the job was started from
    execution: object = None
    stopped: bool = False
    thread: threading.Thread | None = None
    replicas: dict = dataclasses.field(default_factory=dict)  # pod name -> pods.Replica last written
    created: dict = dataclasses.field(default_factory=dict)  # pod name -> when its pod was first written
    conditions: tuple = ()  # the job's condition types already told as events
    obj: dict | None = None  # the job as it was started (its pods are made from it: spec and identity never change)


def _gib(amount):
    return f"{amount / 2**30:.3g}Gi"


def parse_job(obj, runtimes=None):
    """The JobSpec of a stored object (validated when it was written); `runtimes`: where a TrainJob finds its
    runtime. Raises RingrunError."""
    job, problems = parse_object(obj, runtimes=runtimes)
    if problems:
        raise SpecError(problems.lines)
    return job


SNAPSHOT_SUFFIX, SNAPSHOT_KEY = "-runtime-snapshot", "runtime"  # Trainer's pkg/runtime/core/snapshot.go


def runtime_snapshot(obj, runtime, uid, now):
    """The ConfigMap `<trainjob>-runtime-snapshot` that keeps the runtime a TrainJob started with (its `runtime`
    key, YAML), owned by the TrainJob: Trainer's, so that a runtime changed or deleted later changes no started
    job."""
    meta = obj["metadata"]
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": meta["name"] + SNAPSHOT_SUFFIX, "namespace": meta["namespace"], "uid": uid,
                         "creationTimestamp": now,
                         "ownerReferences": [{"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                                              "name": meta["name"], "uid": meta["uid"], "controller": True,
                                              "blockOwnerDeletion": True}]},
            "data": {SNAPSHOT_KEY: yaml.safe_dump(runtime, sort_keys=False)}}


class Controller:
    def __init__(self, store, data_dir, job_users, capacity=None, grace=5.0, host_paths=lambda namespace: (),
                 log_rotation=Rotation(), log=None, now=utc_now, containers=None, trainer_runtimes=True,
                 status_server=None):
        """job_users: a jobusers.JobUsers (who each job runs as, where); host_paths(namespace) -> the host paths
        the policy grants that namespace's jobs; log_rotation: the bounds of each replica's log; containers: a
        launcher.containers.ContainerOptions when every replica runs as a container of its image;
        trainer_runtimes: install Trainer's published ClusterTrainingRuntimes on the store's first start;
        status_server: (the server's URL, its CA certificate's path), where a TrainJob's pods report progress."""
        self.trainer_runtimes = trainer_runtimes
        self.status_server = status_server
        self.status_tokens = {}  # (namespace, name) -> the progress token of the TrainJob running there
        self.log_rotation = log_rotation
        self.containers = containers
        self.store, self.data_dir, self.job_users, self.host_paths = store, data_dir, job_users, host_paths
        self.capacity = capacity or machine_capacity()
        self.grace, self.now = grace, now
        self.log = log or (lambda message: None)
        self.runs, self.queue, self.held = {}, [], {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = None
        self._garbage = False  # a job was deleted: its pods go (in the admission loop, never in a store event)
        self._collected = 0.0

    def _parse(self, obj):
        """The JobSpec of a stored job; a TrainJob's runtime is its snapshot once it has one, else the stored
        runtime it names."""
        stored = runtime_lookup(self.store)
        meta = obj.get("metadata") or {}
        job_kind = kind_of(obj.get("apiVersion") or "", obj.get("kind"))
        if job_kind is None or not job_kind.uses_runtimes or not meta.get("uid"):
            return parse_job(obj, stored)
        snapshot = self.store.get(CONFIGMAPS.qualified, meta.get("namespace", ""),
                                  meta.get("name", "") + SNAPSHOT_SUFFIX)
        owners = ((snapshot or {}).get("metadata") or {}).get("ownerReferences") or [{}]
        if snapshot is not None and owners[0].get("uid") == meta["uid"]:
            try:
                kept = yaml.safe_load((snapshot.get("data") or {}).get(SNAPSHOT_KEY) or "null")
            except yaml.YAMLError as exc:  # someone edited it: the job cannot be read any more, and says so
                raise SpecError([f"{snapshot['metadata']['name']}: the runtime snapshot is not YAML: {exc}"]) from None
            return parse_job(obj, lambda kind, namespace, name: kept if isinstance(kept, dict) and
                             (kept.get("kind"), (kept.get("metadata") or {}).get("name")) == (kind, name) else None)
        return parse_job(obj, stored)

    def _snapshot(self, obj):
        """Keep the runtime a TrainJob starts with (runtime_snapshot), once, before it is read to start it (the
        TrainJob alone names its runtime)."""
        job = parse_job(obj)
        if job.trainer is None:
            return
        runtime = runtime_lookup(self.store)(job.trainer.runtime_kind, job.namespace, job.trainer.runtime_name)
        if runtime is None:
            return
        with contextlib.suppress(store_module.Exists):
            self.store.create(CONFIGMAPS.qualified, runtime_snapshot(obj, runtime, str(uuid.uuid4()), self.now()))

    def logs_of(self, uid):
        return os.path.join(self.data_dir, "logs", uid)

    # -- life --------------------------------------------------------------------------------------------------
    def start(self):
        """Recover what the store holds, then follow its changes and admit jobs."""
        self.job_users.clear_run_dirs()  # run directories of a server that died
        for name in DEFAULT_NAMESPACES:
            with contextlib.suppress(store_module.Exists):
                self.store.create(NAMESPACES.qualified, namespace_object(name, str(uuid.uuid4()), self.now()))
        self._install_crds()
        self._install_trainer_public()
        self._recover()
        self._sweep_containers()
        self._collect_garbage()
        self.store.listen(self._on_event)
        self._thread = threading.Thread(target=self._admit_loop, name="ringrun-admission", daemon=True)
        self._thread.start()

    def stop(self, timeout=None):
        """Stop every running job and wait for them (at most grace + 10 s each by default)."""
        self._stopping = True
        self._wake.set()
        with self._lock:
            runs = list(self.runs.values())
        for run in runs:
            self._interrupt(run)
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout if timeout is not None else self.grace + 10)
        self.store.unlisten(self._on_event)

    def _install_crds(self):
        """The job kinds' CRDs in the store, as this version of ringrun serves them (unchanged ones are no write)."""
        for definition in crds.all_crds(self.now()):
            name = definition["metadata"]["name"]
            current = self.store.get(CRDS.qualified, "", name)
            if current is None:
                self.store.create(CRDS.qualified, definition)
            else:
                meta = {**definition["metadata"], "creationTimestamp": current["metadata"]["creationTimestamp"]}
                self.store.update(CRDS.qualified, {**definition, "metadata": meta, "status": {
                    **definition["status"], "conditions": current["status"]["conditions"]}})

    def _install_trainer_public(self):
        """Trainer's public ConfigMap, kubeflow-system/kubeflow-trainer-public, saying the Trainer release served
        (the Kubeflow SDK reads it); every authenticated user may get it, as Trainer's Role grants."""
        with contextlib.suppress(store_module.Exists):
            self.store.create(NAMESPACES.qualified, namespace_object(TRAINER_NAMESPACE, str(uuid.uuid4()), self.now()))
        current = self.store.get(CONFIGMAPS.qualified, TRAINER_NAMESPACE, TRAINER_PUBLIC)
        if current is None:  # this store's first start with Trainer's API (a runtime deleted later stays deleted)
            if self.trainer_runtimes:
                self._install_trainer_runtimes()
            self.store.create(CONFIGMAPS.qualified, trainer_public(str(uuid.uuid4()), self.now()))
            return
        data = trainer_public("", "")["data"]
        if current.get("data") != data:  # another Trainer release than the store's
            self.store.update(CONFIGMAPS.qualified, {**current, "data": data})

    def _install_trainer_runtimes(self):
        """Trainer's published ClusterTrainingRuntimes, each created as a client's create would make it (defaults,
        validation); one that exists already is left as it is."""
        resource = resources.job_resource("trainer.kubeflow.org", "v1alpha1", "clustertrainingruntimes")
        create = strategy(resource).create
        for obj in published_runtimes():
            made = create(obj, resource, "v1alpha1", None, str(uuid.uuid4()), self.now(), None)
            with contextlib.suppress(store_module.Exists):
                self.store.create(resource.key, made)

    def _recover(self):
        waiting = []
        for resource, obj in self.store.all_objects():
            status = obj.get("status") or {}
            if resource_of(obj.get("apiVersion", ""), obj.get("kind", "")) is None or finished(status):
                continue
            meta = obj["metadata"]
            # started: the operators' startTime or phase; a TrainJob's status has neither, its pods tell (a held
            # job's are all Pending)
            if status.get("startTime") or status.get("phase") == "Running" or any(
                    (p.get("status") or {}).get("phase") != "Pending" for p in self._pods_of(meta["namespace"],
                                                                                              meta["uid"])):
                try:
                    job = self._parse(obj)
                except RingrunError:
                    continue
                why = (f"{job.kind} {job.namespace}/{job.name} has failed: the ringrun server that ran it stopped "
                       "while it ran, and its replicas were stopped with it")
                # the pods first: a client that sees the job finished sees its pods finished too
                self._mark_pods_lost(meta["namespace"], meta["uid"])
                self.store.modify(resource, meta["namespace"], meta["name"],
                                  lambda cur, job=job, why=why: {**cur, "status": of(job).status.lost(
                                      job, cur.get("status") or {}, self.now(), why)}, expect_uid=meta["uid"])
            else:
                waiting.append((meta.get("creationTimestamp", ""), int(meta["resourceVersion"]), resource,
                                meta["namespace"], meta["name"], meta["uid"]))
        self.queue = [entry[2:] for entry in sorted(waiting)]

    def _sweep_containers(self):
        """The containers and networks a server before this one left (killed, it could not remove them): every job
        it ran is finished now (`_recover`), so all of them go."""
        if self.containers is None:
            return
        from ringrun.launcher.engine import Engine

        try:
            gone = Engine.open(self.containers.engine, self.containers.state_dir).sweep(self.containers.owner)
        except RingrunError as exc:
            self.log(f"--containers: {exc}")
            return
        if gone:
            self.log(f"removed what an earlier server left: {', '.join(gone)}")

    def _mark_pods_lost(self, namespace, uid):
        """The pods of a job lost with the server that ran it: those still Pending or Running are Failed."""
        now = self.now()

        def lost(current):
            status = current.get("status") or {}
            if status.get("phase") not in ("Pending", "Running"):
                return None
            statuses = [{**c, "ready": False, "started": False, "state": {"terminated": {
                "exitCode": 137, "reason": "Error", "finishedAt": now}}} for c in status.get("containerStatuses", [])]
            return {**current, "status": {**status, "phase": "Failed", "containerStatuses": statuses}}
        for pod in self._pods_of(namespace, uid):
            self.store.modify(PODS.qualified, namespace, pod["metadata"]["name"], lost, expect_uid=pod["metadata"]["uid"])

    def _pods_of(self, namespace, uid):
        items, _ = self.store.list(PODS.qualified, namespace)
        return [p for p in items if pods.owner_uid(p) == uid]

    def _collect_garbage(self):
        """What the garbage collector and the namespace controller of a cluster do: pods whose job is gone are
        deleted, events older than EVENT_TTL expire, a Terminating namespace that holds nothing more is removed."""
        jobs = {obj["metadata"]["uid"] for resource, obj in self.store.all_objects()
                if resource_of(obj.get("apiVersion", ""), obj.get("kind", "")) is not None}
        items, _ = self.store.list(PODS.qualified)
        for pod in items:
            if pods.owner_uid(pod) not in jobs:
                meta = pod["metadata"]
                try:
                    self.store.delete(PODS.qualified, meta["namespace"], meta["name"], expect_uid=meta["uid"],
                                      now=self.now())
                except store_module.StoreError:
                    pass
        for snapshot in self.store.list(CONFIGMAPS.qualified)[0]:  # TrainJobs' runtime snapshots
            owner = pods.owner_uid(snapshot)
            if owner is not None and owner not in jobs and snapshot["metadata"]["name"].endswith(SNAPSHOT_SUFFIX):
                meta = snapshot["metadata"]
                with contextlib.suppress(store_module.StoreError):
                    self.store.delete(CONFIGMAPS.qualified, meta["namespace"], meta["name"], expect_uid=meta["uid"])
        for event in events.expired(self.store.list(EVENTS.qualified)[0], self.now()):
            meta = event["metadata"]
            try:
                self.store.delete(EVENTS.qualified, meta["namespace"], meta["name"], expect_uid=meta["uid"])
            except store_module.StoreError:
                pass
        for namespace in self.store.list(NAMESPACES.qualified)[0]:
            if namespace["metadata"].get("deletionTimestamp"):
                finish_namespace(self.store, namespace["metadata"]["name"], self.now)

    # -- store events (called in the writer's thread: quick, no store writes here) ------------------------------
    def _on_event(self, event):
        obj, kind = event["object"], event["type"]
        if resource_of(obj.get("apiVersion", ""), obj.get("kind", "")) is None:
            return
        meta = obj["metadata"]
        uid = meta["uid"]
        with self._lock:
            if kind == "ADDED":
                self.queue.append((event["resource"], meta["namespace"], meta["name"], uid))
            elif kind == "DELETED":
                self._garbage = True
                self.queue = [q for q in self.queue if q[3] != uid]
                self.held.pop(uid, None)
                run = self.runs.get(uid)
                if run is not None:  # its folder goes when its replicas are gone
                    run.stopped = True
                    self._interrupt(run)
                else:
                    self._remove_folder(meta["namespace"], uid)
            elif kind == "MODIFIED":
                run = self.runs.get(uid)
                generation = meta.get("generation", 1)
                if run is not None and generation != run.generation:
                    run.generation = generation
                    self._apply_replace(run, obj)
                elif uid in self.held and generation != self.held[uid] and not any(
                        q[3] == uid for q in self.queue):
                    del self.held[uid]
                    self.queue.append((event["resource"], meta["namespace"], meta["name"], uid))
        self._wake.set()

    def _apply_replace(self, run, obj):
        try:
            policy = job_policy(self._parse(obj))
        except RingrunError as exc:
            self.log(f"{run.namespace}/{run.name}: the replaced spec cannot be read: {exc}")
            return
        if run.execution is not None:
            run.execution.update_policy(deadline=policy.deadline, clean_pod_policy=policy.clean_pod_policy)
            self.log(f"{run.namespace}/{run.name}: deadline now {policy.deadline}, cleanPodPolicy "
                     f"{policy.clean_pod_policy}")

    def _interrupt(self, run):
        if run.execution is not None:
            run.execution.interrupt(signal.SIGTERM)

    # -- admission ---------------------------------------------------------------------------------------------
    def _admit_loop(self):
        while not self._stopping:
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self._admit()
                if self._garbage or time.monotonic() - self._collected > GARBAGE_SECONDS:
                    self._garbage, self._collected = False, time.monotonic()
                    self._collect_garbage()
            except Exception as exc:  # noqa: BLE001 - the loop must go on; the problem is logged
                self.log(f"admission: {type(exc).__name__}: {exc}")

    def _admit(self):
        with self._lock:
            queue = list(self.queue)
            used_cpu = sum(r.cpu for r in self.runs.values())
            used_memory = sum(r.memory for r in self.runs.values())
        total_cpu, total_memory = self.capacity
        blocked_by = None
        for entry in queue:
            resource, namespace, name, uid = entry
            obj = self.store.get(resource, namespace, name)
            if obj is None or obj["metadata"]["uid"] != uid:
                self._dequeue(entry)
                continue
            if self._managed_elsewhere(obj):  # as Trainer's controller leaves a MultiKueue TrainJob alone
                self._dequeue(entry)
                continue
            cpu, memory = self._requests(obj)
            if cpu > total_cpu or memory > total_memory:
                self._queued(resource, obj, f"it requests {cpu:g} cpu and {_gib(memory)} memory, more than this "
                                            f"machine's capacity ({total_cpu:g} cpu, {_gib(total_memory)}): it can "
                                            "never start here (see ringrun serve --capacity)")
                continue
            if blocked_by is not None:  # in order of creation: the jobs behind a waiting one wait too
                self._queued(resource, obj, f"waiting behind {blocked_by}, which was created earlier and does "
                                            "not fit yet")
                continue
            if cpu > total_cpu - used_cpu or memory > total_memory - used_memory:
                self._queued(resource, obj, f"waiting for {cpu:g} cpu and {_gib(memory)} memory: running jobs use "
                                            f"{used_cpu:g} of {total_cpu:g} cpu and {_gib(used_memory)} of "
                                            f"{_gib(total_memory)}")
                blocked_by = f"{obj['kind']} {namespace}/{name}"
                continue
            if self._launch(entry, obj, cpu, memory):
                used_cpu += cpu
                used_memory += memory

    def _managed_elsewhere(self, obj):
        """Whether another controller manages the job (a TrainJob's managedBy other than Trainer's own): it is not
        run here, and gets no status from this server."""
        job_kind = kind_of(obj.get("apiVersion") or "", obj.get("kind"))
        if job_kind is None or not job_kind.uses_runtimes:
            return False
        try:
            return bool(parse_job(obj).trainer.managed_by)
        except RingrunError:
            return False

    def _requests(self, obj):
        """(cpu, memory) the job asks for: its replica specs', or, for a kind whose pods come from its runtime, its
        merged pods' (0 when it cannot be read: its launch says why)."""
        job_kind = kind_of(obj.get("apiVersion") or "", obj.get("kind"))
        if job_kind is None or not job_kind.uses_runtimes:
            return requests(obj)
        try:
            return job_requests(self._parse(obj))
        except RingrunError:
            return 0.0, 0

    def _dequeue(self, entry):
        with self._lock:
            if entry in self.queue:
                self.queue.remove(entry)

    def _queued(self, resource, obj, why):
        meta = obj["metadata"]
        try:
            job = self._parse(obj)
        except RingrunError:
            return
        status = of(job).status.queued(job, meta.get("creationTimestamp") or self.now(), why)

        def edit(current):
            old = current.get("status") or {}
            if [c.get("message") for c in old.get("conditions", [])] == [c["message"] for c in status["conditions"]]:
                return None
            return {**current, "status": status}
        self.store.modify(resource, meta["namespace"], meta["name"], edit, expect_uid=meta["uid"])

    def _launch(self, entry, obj, cpu, memory):
        """Start the queued job `entry` (read as `obj`). Taking it off the queue and registering its run happen
        under one lock, so a delete that came after the read either removed it from the queue (nothing starts) or
        finds the run to stop."""
        resource = entry[0]
        meta = obj["metadata"]
        generation = meta.get("generation", 1)
        run = Run(resource, meta["namespace"], meta["name"], meta["uid"], cpu, memory, generation, generation, obj=obj)
        try:
            self._snapshot(obj)
            job = self._parse(obj)
            processes(job)
            placement = self.job_users.place(run.namespace, run.uid)
            if self.containers is None:  # in a container, a workingDir is the image's
                self._check_paths(job, placement.home)
        except (RingrunError, JobUsersError, OSError) as exc:
            self._dequeue(entry)
            self._write_failure(run, obj, str(exc))
            return False
        run.thread = threading.Thread(target=self._run, args=(run, job, placement), name=f"job-{run.name}",
                                      daemon=True)
        with self._lock:
            if entry not in self.queue:  # deleted since it was read
                return False
            self.queue.remove(entry)
            self.runs[run.uid] = run
        run.thread.start()
        return True

    def _remove_folder(self, namespace, uid):
        """Remove a deleted job's folder in a thread of its own: a folder of millions of files never holds up the
        store's writer (this is called from a store event) or the job's thread."""
        threading.Thread(target=self.job_users.remove, args=(namespace, uid), name="ringrun-remove",
                         daemon=True).start()

    def _containers(self, job, placement):
        """The job's ContainerOptions, else None: a hostPath volume only in the job's folder or where its namespace's
        hostPaths grant (whoever the server runs as: a docker daemon is root even when the server is not)."""
        if self.containers is None:
            return None
        grants = self.host_paths(job.namespace)
        return dataclasses.replace(self.containers, host_path=lambda path: granted(path, placement.home, grants))

    def _check_paths(self, job, home):
        """Raise SpecError when a replica's workingDir is outside the job's folder and the namespace's grants."""
        if not self.job_users.as_root:  # one user's server: its jobs may go wherever that user may
            return
        grants = self.host_paths(job.namespace)
        refused = [f"{role}: workingDir {path!r} is outside the job's own folder and no hostPaths rule of the "
                   f"server's --policy grants it to namespace {job.namespace!r}"
                   for role, path in working_dirs(job) if not granted(os.path.join(home, path), home, grants)]
        if refused:
            raise SpecError(refused)

    # -- TrainJob progress (Trainer's TrainJobStatus gate) -------------------------------------------------------
    def _status_env(self, run, job, placement):
        """The variables Trainer's trainjobstatus plugin gives a TrainJob's pods, with a token of this run's own
        and the server's CA certificate in the job's folder (readable by the job's user only); {} for other jobs,
        in containers (they do not reach this server's loopback), and without a server to report to."""
        if job.trainer is None or self.status_server is None or self.containers is not None:
            return {}
        url, ca_path = self.status_server
        token = secrets.token_urlsafe(32)
        with open(ca_path, "rb") as source:
            ca = source.read()
        owner = (placement.run_as.uid, placement.run_as.gid) if placement.run_as is not None else None
        folder = write_into(placement.home, STATUS_FOLDER, (("token", token.encode(), 0o400), ("ca.crt", ca, 0o444)),
                            owner)
        with self._lock:
            self.status_tokens[(run.namespace, run.name)] = (run.uid, token)
        return {STATUS_ENV_URL: url + status_path(run.namespace, run.name),
                STATUS_ENV_CA: os.path.join(folder, "ca.crt"), STATUS_ENV_TOKEN: os.path.join(folder, "token")}

    def status_token_matches(self, namespace, name, given):
        """Whether `given` is the progress token of the TrainJob running as namespace/name (constant time)."""
        with self._lock:
            _, token = self.status_tokens.get((namespace, name), (None, None))
        return bool(given and token) and hmac.compare_digest(token.encode(), given.encode())

    def write_trainer_status(self, namespace, name, trainer_status):
        """Store `trainer_status` in the running TrainJob's status; False when it is gone."""
        with self._lock:
            uid, _ = self.status_tokens.get((namespace, name), (None, None))
        resource = resources.job_resource("trainer.kubeflow.org", "v1alpha1", "trainjobs")
        if uid is None:
            return False
        try:
            return self.store.modify(resource.key, namespace, name, lambda current: {
                **current, "status": {**(current.get("status") or {}), "trainerStatus": trainer_status}},
                expect_uid=uid) is not None
        except store_module.StoreError:
            return False

    # -- one job -----------------------------------------------------------------------------------------------
    def _write_status(self, run, status, rules):
        """Write `status` (by the job kind's StatusRules `rules`, which merge it with the stored one)."""
        now = self.now()

        def edit(current):
            new = rules.merge(current.get("status") or {}, status, now)
            if current.get("status") == new:
                return None
            return {**current, "status": new}
        return self.store.modify(run.resource, run.namespace, run.name, edit, expect_uid=run.uid)

    def _write_failure(self, run, obj, message):
        try:
            job = self._parse(obj)
        except RingrunError:
            try:  # a TrainJob whose runtime is gone: its status without the runtime's replicated jobs
                job = parse_job(obj)
            except RingrunError:
                return
        now = self.now()
        state = JobState(start_time=now, replicas=(), outcome="Failed", reason=f"{job.kind}Failed",
                         message=f"{job.kind} {job.namespace}/{job.name} has failed: {message}", completion_time=now)
        self._write_status(run, of(job).status.build(job, state), of(job).status)

    def _write_pods(self, run, job, state):
        """Each replica's Pod as its state now is (a pod that did not change is not written again)."""
        if run.stopped:  # deleted: its pods go (the garbage collector's), none is written again
            return
        types = {r.role: r.type for r in job.replicas}
        owner = run.obj
        now = self.now()
        for r in state.replicas:
            name = _replica_name(job, r.role, r.index)
            before = run.replicas.get(name)
            started, finished_at = (before.started, before.finished) if before else (None, None)
            if r.phase == "Running" and (before is None or before.phase != "Running"):
                started, finished_at = now, None
            elif r.phase not in ("Pending", "Running") and finished_at is None:
                finished_at = now
            replica = pods.Replica(name, r.role, types.get(r.role, r.role), r.index, r.phase, r.exit_code, r.restarts,
                                   started, finished_at)
            if replica == before:
                continue
            run.replicas[name] = replica
            created = run.created.setdefault(name, now)
            main = job.replica(r.role).container(job.main_container) if job.trainer is not None else None
            pod = pods.pod_object(owner, replica, created, (main.name, main.image or "") if main else None)
            current = self.store.get(PODS.qualified, run.namespace, name)
            try:
                if current is None:
                    self.store.create(PODS.qualified, pod)
                    self._tell(owner, "Normal", "SuccessfulCreatePod", f"Created pod: {name}")
                else:
                    self.store.update(PODS.qualified, {**pod, "metadata": {**pod["metadata"], "creationTimestamp":
                                                                          current["metadata"]["creationTimestamp"]}})
            except store_module.StoreError:
                pass
            if replica.phase == "Failed" and (before is None or before.phase != "Failed"):
                self._tell(owner, "Warning", "Failed", f"Pod {name} failed with exit code {replica.exit_code}")

    def _tell(self, obj, kind, reason, message):
        """A core/v1 Event about `obj` (the controller's own record of what happened)."""
        try:
            self.store.create(EVENTS.qualified, events.event(obj, kind, reason, message, self.now(),
                                                             str(uuid.uuid4()), preferred(obj["apiVersion"])))
        except store_module.StoreError as exc:
            self.log(f"an event could not be written: {exc}")

    def _tell_conditions(self, run, status, owner):
        """An Event for each condition the job reaches (Created, Running, Restarting, Succeeded, Failed, ...), about
        `owner`, the job as just stored (None: gone)."""
        if owner is None:
            return
        for condition in status.get("conditions") or []:
            key = (condition.get("type"), condition.get("reason"))
            if condition.get("status") == "True" and key not in run.conditions:
                run.conditions += (key,)
                self._tell(owner, "Warning" if condition.get("type") == "Failed" else "Normal",
                           condition.get("reason") or condition.get("type"), condition.get("message") or "")

    def _run(self, run, job, placement):
        log_dir = self.logs_of(run.uid)
        private_dir(log_dir)
        options = Options(log_dir=log_dir, grace=self.grace, is_root=os.geteuid() == 0 and placement.run_as is None,
                          run_parent=placement.run_parent, log_rotation=self.log_rotation,
                          run_as=placement.run_as, working_dir=placement.home,
                          containers=self._containers(job, placement))

        def on_state(state):
            self._write_pods(run, job, state)
            status = of(job).status.build(job, state)
            self._tell_conditions(run, status, self._write_status(run, status, of(job).status))

        def attach(execution):
            with self._lock:
                run.execution = execution
                if run.stopped or self._stopping:
                    execution.interrupt(signal.SIGTERM)

        try:
            environ = {**placement.environ, **self._status_env(run, job, placement)}
            code, _ = run_job(job, environ, options, _Discard(), _Discard(), on_state=on_state,
                              attach=attach, signals=False, obj=run.obj)
            if code == 7:  # held (suspended, paused): started again when a replace changes it
                with self._lock:
                    if not run.stopped:
                        self.held[run.uid] = run.launched
                        if run.generation != run.launched:  # replaced while it was being started
                            del self.held[run.uid]
                            self.queue.append((run.resource, run.namespace, run.name, run.uid))
        except RingrunError as exc:
            self._write_failure(run, self.store.get(run.resource, run.namespace, run.name) or {}, str(exc))
        except Exception as exc:  # noqa: BLE001 - a job's failure must not take the server down
            self.log(f"{run.namespace}/{run.name}: {type(exc).__name__}: {exc}")
            self._write_failure(run, self.store.get(run.resource, run.namespace, run.name) or {},
                                f"internal error: {exc}")
        finally:
            with self._lock:
                self.runs.pop(run.uid, None)
                if self.status_tokens.get((run.namespace, run.name), (None,))[0] == run.uid:
                    del self.status_tokens[(run.namespace, run.name)]
                deleted = run.stopped
            if deleted:
                self._remove_folder(run.namespace, run.uid)
            self._wake.set()
            time.sleep(0)


DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public")
GARBAGE_SECONDS = 60  # how often expired events and orphaned pods are looked for, besides after each job's delete


def _replica_name(job, role, index):
    """The pod name of a replica, by its kind's rule (runtime/kinds/registry.py)."""
    return kind_of(job.api_version, job.kind).pod_name(job.name, role, index)
