"""Build ringrun's job images: `make images` (python3 scripts/images.py [--engine podman|docker] [VARIANT...]).

1. The base (podman, unless --base names another): `localhost/ringrun-base:bookworm-<digest of its packages>`,
   Debian bookworm made with mmdebstrap from Debian's packages (BASE_PACKAGES), imported once. No container
   registry is needed; with docker the Dockerfile's default base, the public Python image, is used.
2. The wheelhouse, build/wheelhouse: ringrun's own wheel and every dependency of every image at the versions of
   docker/constraints.txt (numpy pinned per image below), made once with pip on this machine. The images install from
   it with no index: nothing is downloaded while they build.
3. The images, tagged ringrun:<variant> (VARIANTS; ringrun:latest and ringrun:nonroot by default).
4. Checks in each: `ringrun --version`, `mpirun --version`, and `sshd -t` as the image's user on a config and host
   key of its own (as ringrun's worker runs it).

podman as root in a sandbox without CAP_SYS_RESOURCE cannot set a container's rlimits: when a plain `podman run`
fails so, the containers run through ringrun's runc wrapper (launcher/ocirlimits.py, said on stderr). Exit status: 0 built and
checked; 1 a step failed (its command and output are printed); 2 bad arguments.
"""

import argparse
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Debian's packages in the base: Python, its venv module, sshd and ssh, and what a framework's wheel needs of the
# system (MXNet's libgomp and libquadmath). The tag names the list, so a changed list makes a new base.
BASE_PACKAGES = ("python3", "python3-venv", "openssh-server", "openssh-client", "libgomp1", "libquadmath0")
BASE = "localhost/ringrun-base:bookworm-" + hashlib.sha256(",".join(BASE_PACKAGES).encode()).hexdigest()[:8]
WHEELHOUSE = ROOT / "build" / "wheelhouse"
CONSTRAINTS = ROOT / "docker" / "constraints.txt"
NUMPY = "numpy==2.4.6"
MXNET_NUMPY = "numpy==1.23.5"  # MXNet 1.9.1 needs numpy<1.24


class Variant:
    """An image: its Dockerfile, build arguments (the base is added), the numpy it gets, the image it is made from
    (built first), its user and sshd port."""

    def __init__(self, dockerfile, extras=None, numpy=NUMPY, parent=None, user="root", port=22, packages=(),
                 requirements=()):
        self.dockerfile, self.extras, self.numpy, self.parent = dockerfile, extras, numpy, parent
        self.user, self.port, self.packages, self.requirements = user, port, packages, requirements

    def build_args(self, base, wheels):
        if self.parent:
            return {"RINGRUN": f"ringrun:{self.parent}", **({"WHEELS": wheels} if self.requirements else {})}
        return {"EXTRAS": self.extras, "WHEELS": wheels, **({"PACKAGES": " ".join(self.packages)} if self.packages
                                                             else {}), **({"BASE": base} if base else {})}


VARIANTS = {
    "latest": Variant("Dockerfile", "openmpi"),
    "nonroot": Variant("Dockerfile.nonroot", parent="latest", user="mpiuser", port=2222),
    "mpich": Variant("Dockerfile", "mpich"),
    "intelmpi": Variant("Dockerfile", "intelmpi"),
    "torch": Variant("Dockerfile", "openmpi,torch"),
    "mxnet": Variant("Dockerfile", "openmpi,mxnet", numpy=MXNET_NUMPY, packages=("libgomp1", "libquadmath0")),
    # Horovod from the wheel `make horovod` builds (source-only on PyPI), on the torch image
    "horovod": Variant("Dockerfile.horovod", parent="torch", requirements=("horovod==0.28.1",)),
    # mpi-operator's pi example (examples/v2beta1/pi) with its program at the same path, on the non-root image
    "pi": Variant("Dockerfile.pi", parent="nonroot", user="mpiuser", port=2222),
}
HOROVOD_WHEELS = pathlib.Path(os.environ.get("RINGRUN_WHEEL_CACHE", pathlib.Path.home() / ".cache/ringrun/wheels"))
DEFAULT = ("latest", "nonroot")


class Failed(Exception):
    pass


def run(argv, log, **kwargs):
    """Run argv (a list), its output to `log`; returns the CompletedProcess. Raises Failed with the output's tail."""
    started = time.monotonic()
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kwargs)
    log.write(f"$ {' '.join(map(str, argv))}  ({time.monotonic() - started:.1f} s)\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise Failed(f"{argv[0]} exited {result.returncode}: {' '.join(map(str, argv))}\n"
                     f"{(result.stdout + result.stderr)[-3000:]}")
    return result


class Engine:
    """podman or docker, with the global arguments this machine needs (the runc wrapper)."""

    def __init__(self, name, log):
        self.name, self.log, self.global_args = name, log, []

    def __call__(self, *args, **kwargs):
        return run([self.name, *self.global_args, *args], self.log, **kwargs)

    def has_image(self, image):
        return subprocess.run([self.name, "image", "exists" if self.name == "podman" else "inspect", image],
                              stdin=subprocess.DEVNULL, capture_output=True).returncode == 0

    def choose_runtime(self):
        """Use the runc wrapper where podman cannot set a container's rlimits (the probe of launcher/engine.py)."""
        if self.name != "podman":
            return
        from ringrun.launcher.engine import Engine as JobEngine  # the one probe `ringrun run --containers` makes

        engine = JobEngine("podman", shutil.which("podman") or "podman")
        engine.probe()
        if engine.global_args:
            sys.stderr.write("images: this machine refuses to set a container's rlimits (no CAP_SYS_RESOURCE); "
                             f"podman runs containers through {engine.global_args[-1]}\n")
            self.global_args = list(engine.global_args)


def make_base(engine, log):
    """The Debian base, made with mmdebstrap and imported, unless the engine has it."""
    if engine.has_image(BASE):
        return
    if shutil.which("mmdebstrap") is None:
        raise Failed("mmdebstrap is not installed (apt-get install mmdebstrap; `make images` installs it as root)")
    tarball = ROOT / "build" / "base.tar"
    tarball.parent.mkdir(exist_ok=True)
    run(["mmdebstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "bookworm", str(tarball)], log)
    try:
        engine("import", str(tarball), BASE)
    finally:
        tarball.unlink(missing_ok=True)


def make_wheelhouse(variants, log):
    """ringrun's wheel (always new) and the pinned dependencies of `variants` (pip keeps those already there)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    for old in WHEELHOUSE.glob("ringrun-*.whl"):
        old.unlink()
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELHOUSE)]
    run(pip + ["--no-deps", str(ROOT)], log)
    (wheel,) = WHEELHOUSE.glob("ringrun-*.whl")
    by_numpy = {}
    for variant in variants:
        if variant.extras:
            by_numpy.setdefault(variant.numpy, []).append(variant.extras)
    for numpy, extras in by_numpy.items():
        wanted = ",".join(dict.fromkeys(",".join(extras).split(",")))
        # ringrun from the wheel just made, by its path: never a project of that name from an index
        run(pip + ["--constraint", str(CONSTRAINTS), f"ringrun[{wanted}] @ {wheel.as_uri()}", numpy], log)
    if any(v.requirements for v in variants):
        # Horovod's wheel, built against torch and Open MPI by `make horovod`, and what it needs
        built = sorted(HOROVOD_WHEELS.glob("horovod-0.28.1-*/horovod-0.28.1-*.whl"))
        if not built:
            raise Failed(f"no Horovod wheel under {HOROVOD_WHEELS} (`make horovod` builds it)")
        shutil.copy(built[-1], WHEELHOUSE / built[-1].name)
        run(pip + ["--constraint", str(CONSTRAINTS), "--find-links", str(WHEELHOUSE), "horovod==0.28.1", NUMPY], log)


def digest():
    """The wheelhouse's digest: its wheels' names, and ringrun's wheel by its files' contents (a wheel built again
    from the same source differs only in timestamps)."""
    h = hashlib.sha256()
    for path in sorted(WHEELHOUSE.glob("*.whl")):
        h.update(path.name.encode() + b"\0")
        if path.name.startswith("ringrun-"):
            with zipfile.ZipFile(path) as wheel:
                for member in sorted(wheel.namelist()):
                    h.update(member.encode() + b"\0" + hashlib.sha256(wheel.read(member)).digest())
    return h.hexdigest()[:16]


def build(engine, name, variant, base, log):
    args = [a for key, value in variant.build_args(base, digest()).items() for a in ("--build-arg", f"{key}={value}")]
    started = time.monotonic()
    engine("build", "--file", str(ROOT / "docker" / variant.dockerfile), *args, "--tag", f"ringrun:{name}", str(ROOT))
    return time.monotonic() - started


def check(engine, name, variant):
    """ringrun --version, mpirun --version and sshd -t as the image's user; returns ringrun's version line."""
    image = f"ringrun:{name}"
    inside = ["run", "--rm", "--network", "none"]
    version = engine(*inside, "--entrypoint", "ringrun", image, "--version").stdout.strip()
    engine(*inside, "--entrypoint", "mpirun", image, "--version")
    user = engine(*inside, "--entrypoint", "id", image, "-un").stdout.strip()
    if user != variant.user:
        raise Failed(f"{image} runs as {user!r}, not {variant.user!r}")
    # sshd as ringrun's worker runs it: its own host key and config, the image's user, the job's port
    script = ('set -e; d=$(mktemp -d); ssh-keygen -q -t ed25519 -N "" -f "$d/key"; '
              f'/usr/sbin/sshd -t -f /dev/null -h "$d/key" -o Port={variant.port} -o PidFile="$d/pid"')
    engine(*inside, "--entrypoint", "/bin/sh", image, "-c", script)
    return version


def size(engine, name):
    fmt = "{{.Size}}"
    return int(engine("image", "inspect", "--format", fmt, f"ringrun:{name}").stdout.strip() or 0)


def order(names):
    """The variants to build, each after the image it is made from."""
    result = []
    for name in names:
        parent = VARIANTS[name].parent
        if parent and parent not in result:
            result.append(parent)
        if name not in result:
            result.append(name)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/images.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", metavar="VARIANT",
                        help=f"images to build: {', '.join(VARIANTS)} (default: {' '.join(DEFAULT)})")
    parser.add_argument("--engine", choices=("podman", "docker"), default="podman")
    parser.add_argument("--base", help=f"the base image (default: {BASE}, made with mmdebstrap, for podman; the "
                                       "Dockerfile's own for docker)")
    parser.add_argument("--wheelhouse-only", action="store_true",
                        help="make build/wheelhouse for the variants and stop (then build with docker or podman by "
                             "hand)")
    parser.add_argument("--log", default=str(ROOT / "build" / "images.log"), help="every command's output")
    args = parser.parse_args(argv)
    (ROOT / "build").mkdir(exist_ok=True)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r} (choose from {', '.join(VARIANTS)})")
    names = order(args.variants or DEFAULT)
    if args.wheelhouse_only:
        with open(args.log, "w", encoding="utf-8") as log:
            try:
                make_wheelhouse([VARIANTS[n] for n in names], log)
            except Failed as exc:
                sys.stderr.write(f"images: {exc}\n(every command's output: {args.log})\n")
                return 1
        print(f"{WHEELHOUSE}: ringrun and the pinned wheels of {', '.join(names)}; digest {digest()}")
        return 0
    if shutil.which(args.engine) is None:
        sys.stderr.write(f"images: {args.engine} is not installed\n")
        return 1
    with open(args.log, "w", encoding="utf-8") as log:
        engine = Engine(args.engine, log)
        try:
            base = args.base or (BASE if args.engine == "podman" else None)
            if base == BASE:
                make_base(engine, log)
            if base:
                engine.choose_runtime()
            make_wheelhouse([VARIANTS[n] for n in names], log)
            for name in names:
                seconds = build(engine, name, VARIANTS[name], base, log)
                version = check(engine, name, VARIANTS[name])
                print(f"ringrun:{name}: built in {seconds:.0f} s, {size(engine, name) / 2**20:.0f} MiB, {version}, "
                      f"mpirun and sshd -t checked as {VARIANTS[name].user}")
        except Failed as exc:
            sys.stderr.write(f"images: {exc}\n(every command's output: {args.log})\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
