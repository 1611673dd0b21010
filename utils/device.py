"""The prepared GPU run for a lent accelerator machine: the 128 px queue (stages a and b) trained there on the JAX
backend from a re-encoded copy of the data (``gpu_step``, what runs there), and its new records brought back. Such a
machine has JAX but neither TensorFlow nor Keras, no network, and takes a working tree of at most 64 MiB; one command
may run 10 minutes.

    python -m utils.device prepare              # here: the copy, the Keras wheels, the exact `run` call to make
    python3 -m utils.device gpu --out "$OUT"    # there (the prepared call starts it): train what fits, pack records
    python -m utils.device unpack runs.tar.gz   # here: the new records into results/, each listed
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from . import gpu_step
from .base.paths import REPO_ROOT, RESULTS_DIR, shown

if TYPE_CHECKING:
    from .data import UTKFace

WHEELS = f"{gpu_step.CARRY}/whl"
PACKAGES = ("keras", "namex", "optree")
"""What the machine lacks of what Keras needs (its image's package list: /work/.library/device/KINDS.md)."""
DEVICE_HAS = {"absl-py", "h5py", "ml-dtypes", "numpy", "packaging", "rich", "typing-extensions"}
"""The rest of Keras' and optree's needs, which the machine's image holds."""
PIP_DOWNLOAD = (
    "-m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "
    "--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 "
    "--platform manylinux2014_x86_64 --platform manylinux1_x86_64"
)
PIP_INSTALL = (
    f"python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
    f"{WHEELS}/*.whl && export PYTHONPATH=/tmp/site || exit"
)
TRAVEL_LIMIT = 64 * 2**20  # the working tree that travels, carried paths included
MARGIN = 4 * 2**20  # less to spare than this is said
COMMAND_LIMIT = 2000  # characters of one run command
TIMEOUT_S = 600  # one run command's limit


# ----------------------------------------------------------------------------------------- here: prepare


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout


def exclude_carry() -> Path:
    """Add ``/.carry/`` to .git/info/exclude (once): the copy and the wheels never enter git."""
    path = REPO_ROOT / _git("rev-parse", "--git-path", "info/exclude").strip()
    text = path.read_text() if path.is_file() else ""
    if f"/{gpu_step.CARRY}/" not in text.split():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + ("" if not text or text.endswith("\n") else "\n") + f"/{gpu_step.CARRY}/\n")
    return path


def write_data(quality: int = 80, data: UTKFace | None = None) -> dict:
    """Re-encode ``data`` (default: the full profile's) into ``gpu_step.DATA``, unless the copy there is already of
    it, at ``quality``."""
    from .base.profiles import PROFILES
    from .data import datasets
    from .data.reencode import reencode
    from .data.reencoded import ReencodedMismatch, read_reencoded, scan_reencoded

    data = data or datasets.for_profile(PROFILES["full"], verbose=False)
    out = REPO_ROOT / gpu_step.DATA
    try:
        old = read_reencoded(out) if out.is_dir() else None
        if old is not None and [old[k] for k in ("fingerprint", "split_id", "image_size", "quality")] == [
            data.fingerprint,
            data.split_id,
            data.size,
            quality,
        ]:
            scan_reencoded(out, old)  # every file as written
            return old
    except ReencodedMismatch as exc:
        print(f"note: {exc}; writing it again")
    return reencode(data, out, quality)


def wheel_needs(wheel: Path) -> set[str]:
    """The packages a wheel requires (its METADATA's Requires-Dist, extras left out), names normalised."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    needs = set()
    for line in lines:
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            name = line.split(":", 1)[1].strip()
            for stop in " ;<>=!~[(":
                name = name.split(stop, 1)[0]
            needs.add(name.lower().replace("_", "-"))
    return needs


def _pip_download(pins: list[str], folder: Path) -> None:
    subprocess.run([sys.executable, *PIP_DOWNLOAD.split(), "-d", str(folder), *pins], check=True)


def download_wheels(packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    """Python 3.12 x86-64 wheels of ``packages`` at the versions installed here, in WHEELS (the device guide's pip
    line); other versions there are removed. Raises RuntimeError when one needs a package the machine lacks."""
    from importlib.metadata import version

    folder = REPO_ROOT / WHEELS
    folder.mkdir(parents=True, exist_ok=True)
    pins = [f"{p}=={version(p)}" for p in packages]
    _pip_download(pins, folder)
    wanted = {f"{p.replace('-', '_')}-{version(p)}-" for p in packages}
    wheels = []
    for wheel in sorted(folder.glob("*.whl")):
        if any(wheel.name.lower().startswith(w.lower()) for w in wanted):
            wheels.append(wheel)
        else:
            wheel.unlink()  # one version of each: two stop the whole install
    lacking = sorted(set().union(*map(wheel_needs, wheels)) - set(packages) - DEVICE_HAS)
    if lacking:
        raise RuntimeError(f"the wheels need {lacking}, which the device lacks: add them to PACKAGES")
    return wheels


def travel_bytes(carry: tuple[str, ...] = (gpu_step.DATA, WHEELS)) -> dict[str, int]:
    """What a run call sends, in bytes: the working tree (tracked files and untracked ones git does not ignore) and
    each carried path."""
    listed = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    tree = sum((REPO_ROOT / f).stat().st_size for f in set(listed) if f and (REPO_ROOT / f).is_file())
    sizes = {"working tree": tree}
    for path in carry:
        sizes[path] = sum(p.stat().st_size for p in (REPO_ROOT / path).rglob("*") if p.is_file())
    return sizes


def device_command(seconds: int = gpu_step.SECONDS, stages: tuple[str, ...] = gpu_step.STAGES) -> str:
    """The shell command to run on the machine: install the wheels, then the gpu step."""
    return (
        f'{PIP_INSTALL}; python3 -m utils.device gpu --seconds {seconds} --stages {" ".join(stages)} --out "$OUT" 2>&1'
    )


def run_call(seconds: int = gpu_step.SECONDS, stages: tuple[str, ...] = gpu_step.STAGES) -> dict:
    """The arguments of the device tool's ``run`` call (command, carry, timeout_s)."""
    command = device_command(seconds, stages)
    if len(command) > COMMAND_LIMIT:
        raise ValueError(f"the command is {len(command)} characters, more than {COMMAND_LIMIT}")
    return {"command": command, "carry": [gpu_step.DATA, WHEELS], "timeout_s": TIMEOUT_S}


def prepare(quality: int = 80, seconds: int = gpu_step.SECONDS, data: UTKFace | None = None) -> dict:
    """Everything here that the run call needs; returns that call (raises RuntimeError when it would not travel)."""
    exclude_carry()
    manifest = write_data(quality, data)
    mib = manifest["total_bytes"] / 2**20
    print(f"data: {manifest['count']:,} faces, {manifest['how']}, {mib:.1f} MiB in {gpu_step.DATA}")
    wheels = download_wheels()
    print("wheels: " + ", ".join(w.name for w in wheels))
    sizes = travel_bytes()
    total = sum(sizes.values())
    print("travels: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items()) + f"; {total / 2**20:.1f} MiB")
    lower = (
        "prepare again with a lower --quality (UTKFace at 128 px, measured on a sample: WebP q80 ~39 MiB, q75 ~34, "
        "q70 ~32, q60 ~29); the records say the quality"
    )
    if total > TRAVEL_LIMIT:
        raise RuntimeError(f"{total / 2**20:.1f} MiB would travel, more than {TRAVEL_LIMIT // 2**20} MiB: {lower}")
    if TRAVEL_LIMIT - total < MARGIN:
        print(f"note: {(TRAVEL_LIMIT - total) / 2**20:.1f} MiB to spare; each stored run adds ~0.2 MiB: soon {lower}")
    return run_call(seconds)


# ----------------------------------------------------------------------------------------- here: unpack


def _member_ok(member: tarfile.TarInfo) -> bool:
    path = PurePosixPath(member.name)
    return member.isfile() and path.parts[:1] == ("results",) and ".." not in path.parts and not path.is_absolute()


def describe(record: dict) -> str:
    """One line on a stored record: what, seed, backend, device, precision, encoding, epochs and test loss."""
    data, versions = record.get("data", {}), record.get("versions", {})
    return (
        f"{record.get('experiment', '?')} / {record.get('variant', '?')}, seed {record.get('seed')}: "
        f"{versions.get('backend', '?')} on {record.get('device', '?')}, {record.get('precision', '?')}, "
        f"pixels {data.get('encoding', 'jpeg')}, {record.get('epochs_run')} epochs, "
        f"test loss {record.get('metrics', {}).get('loss', float('nan')):.4f}"
    )


def unpack(tar: Path, results: Path | None = None) -> list[Path]:
    """Pool the records of a gpu step's tar into results/ (``pool.pool``: each checked and filed by its own profile and
    data, never over a stored run); list each new record, and every member refused or passed over."""
    from .train.pool import pool  # here only: the lent machine's ``gpu`` step never needs the store's checks

    with tempfile.TemporaryDirectory() as tmp, tarfile.open(tar) as tf:
        for member in tf.getmembers():
            if not _member_ok(member):
                print(f"refused: {member.name} (only regular files under results/)")
                continue
            target = Path(tmp, *PurePosixPath(member.name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tf.extractfile(member).read())
        report = pool([Path(tmp)], results or RESULTS_DIR)
        for path in report.added:
            line = shown(path)
            if path.suffix == ".json":
                line += "\n    " + describe(json.loads(path.read_text()))
            print(f"landed: {line}")
        print(report.text(base=Path(tmp)))
    return report.added


def main(argv: list[str] | None = None) -> int:
    """Command line: prepare (here), gpu (on the lent machine), unpack (here)."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.device", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="the re-encoded copy, the wheels, and the run call to make")
    p.add_argument("--quality", type=int, default=80, help="WebP quality of the copy (default 80)")
    p.add_argument(
        "--seconds", type=int, default=gpu_step.SECONDS, help=f"the gpu step's budget (default {gpu_step.SECONDS})"
    )
    g = sub.add_parser("gpu", help="on the lent machine: train the queue, pack the new records")
    g.add_argument("--out", type=Path, required=True, help="where the tar and the log go ($OUT)")
    g.add_argument(
        "--seconds", type=int, default=gpu_step.SECONDS, help=f"budget in seconds (default {gpu_step.SECONDS})"
    )
    g.add_argument("--stages", nargs="+", default=list(gpu_step.STAGES), help="queue stages (default: a b)")
    g.add_argument("--allow-cpu", action="store_true", help="train even where JAX sees no GPU (tests)")
    u = sub.add_parser("unpack", help="the gpu step's records into results/, listed")
    u.add_argument("tar", type=Path, help=f"the {gpu_step.TARBALL} the run brought back")
    args = parser.parse_args(argv)
    if args.cmd == "prepare":
        try:
            call = prepare(args.quality, args.seconds)
        except (RuntimeError, ValueError, OSError, subprocess.CalledProcessError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("\nThe call to make with the device tool (then give the machine back; unpack the tar here):")
        print(json.dumps(call, indent=1))
        print(f"\nthen: python -m utils.device unpack <files_at>/{gpu_step.TARBALL}")
        return 0
    if args.cmd == "gpu":
        return gpu_step.gpu(args.out, args.seconds, tuple(args.stages), args.allow_cpu)
    landed = unpack(args.tar)
    print(f"{len(landed)} file(s) landed in {shown(RESULTS_DIR)}; check with `python -m utils.summary --check`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
