"""Results store: one small JSON file per finished run, written atomically, checked when read,
reused instead of retraining."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import fields as dataclass_fields
from pathlib import Path

from ..base import files
from ..base.paths import RESULTS_DIR
from ..base.profiles import PROFILES, Profile
from ..nets import heads
from ..nets.models import ModelConfig
from .runs import RecordError, Run

TAGS = (  # settings shared by every body and head, named in the file name only when they differ from the default
    ("learning_rate", lambda v: f"lr{v:g}"),
    ("bn_momentum", lambda v: f"bnm{v:g}"),
    ("loss_weights", lambda v: "w" + "-".join(f"{w:g}" for w in v)),
    ("age_range", lambda v: f"ages{v[0]}-{v[1]}"),
)


def slug(config: ModelConfig) -> str:
    """A readable file-name stem: the body's own part, optimizer, tasks, the age head's part, changed settings, hash."""
    parts = [
        config.body_net.slug(),
        config.optimizer,
        config.tasks,
        heads.HEADS[config.age_head].configured(config).slug(),  # the age head names gender-only runs too
    ]
    parts += [tag(getattr(config, name)) for name, tag in TAGS if getattr(config, name) != getattr(ModelConfig, name)]
    if config.augment is not None:
        parts.append("aug")
    return ".".join(parts) + "-" + config.digest()


class ResultsStore:
    """Runs live in ``root/<profile>-<data kind>-<data id>/<variant>-seed<N>.json``.

    Runs trained with probes (extra measurements that cost time) live apart, in the subfolder ``probes/``, so that a
    probed run never stands in for a plain one. A read-only store (``writable=False``: tables, the README check) skips
    a bad file with a warning; a writable one (the runner) also sets it aside under a unique name so it is re-run.
    """

    def __init__(self, root: Path | str | None = None, writable: bool = True):
        self.root = Path(root or RESULTS_DIR)
        self.writable = writable

    def folder(self, profile: Profile, data_kind: str, fingerprint: str, split_id: str, sub: str = "") -> Path:
        """The folder holding every run of one profile on one dataset and split (``sub``: a subfolder,
        e.g. probed runs)."""
        folder = self.root / f"{profile.name}-{data_kind}-{folder_id(profile, fingerprint, split_id)}"
        return folder / sub if sub else folder

    def path(
        self,
        config: ModelConfig,
        seed: int,
        profile: Profile,
        data_kind: str,
        fingerprint: str,
        split_id: str,
        sub: str = "",
    ) -> Path:
        """Where the run of ``config`` with ``seed`` is (or will be) stored."""
        return self.folder(profile, data_kind, fingerprint, split_id, sub) / file_name(config, seed)

    def read(self, path: Path) -> Run | None:
        """Load and check a run (schema; configuration and seed against the file name; profile, data kind, fingerprint
        and split against its folder's name); None when absent or bad. Only a regular file of at most
        ``RECORD_LIMIT`` bytes is opened (a FIFO or a directory named like a record is refused, never waited on)."""
        if not os.path.lexists(path):
            return None
        try:
            run = Run.from_dict(json.loads(files.read_text(path, RECORD_LIMIT, "run record")))
            if file_name(run.config, run.seed) != path.name:
                raise RecordError(f"its configuration and seed belong in {file_name(run.config, run.seed)}")
            home = path.parent.parent if path.parent.name in SUBFOLDERS else path.parent
            if home.parent == self.root and (expected := folder_name(run)) != home.name:
                raise RecordError(
                    f"its profile and data ({run.profile.get('name')}, {run.data.get('kind')} data, "
                    f"fingerprint {run.data.get('fingerprint')}) belong in {expected}/, not {home.name}/"
                )
            return run
        except (json.JSONDecodeError, UnicodeDecodeError, RecordError, files.UnsafeFile) as exc:
            if not self.writable:
                print(f"warning: skipped {path.name}, not a valid run ({exc})")
                return None
            bad = set_aside(path)
            print(f"warning: {path} was unreadable ({exc}); moved to {bad.name}, the run will be repeated")
            return None

    @staticmethod
    def write(path: Path, run: Run | dict) -> Path:
        """Write a run atomically (``files.write_text``: a temporary file in the same folder, fsync, rename); remove
        temporary files a killed writer left there over an hour ago. NaN is refused (it is not JSON), and so is a run
        whose faces are of another size than its profile's (the store files runs by profile: it would lie; this is
        checked after training, so callers check first, as ``runner.check_size`` does)."""
        record = run.to_dict() if isinstance(run, Run) else run
        data, profile = (record.get(k) if isinstance(record, dict) else None for k in ("data", "profile"))
        size = data.get("image_size") if isinstance(data, dict) else None
        if size is not None and isinstance(profile, dict) and profile.get("image_size") not in (None, size):
            raise ValueError(
                f"{Path(path).name}: its faces are {size} px but its profile {profile.get('name')!r} is "
                f"{profile['image_size']} px; train it on faces loaded for the profile (datasets.for_profile)"
            )
        files.write_text(path, json.dumps(record, separators=(",", ":"), allow_nan=False))
        files.remove_stale_temporaries(path.parent)
        return path

    def runs(
        self, profile: Profile, data_kind: str, fingerprint: str, split_id: str, config: ModelConfig | None = None
    ) -> list[Run]:
        """Every stored run of this profile and dataset, optionally only those of one variant, ordered by seed."""
        return self.runs_in(self.folder(profile, data_kind, fingerprint, split_id), config)

    def runs_in(self, folder: Path, config: ModelConfig | None = None) -> list[Run]:
        """Every stored run in one results folder, optionally only those of one variant, ordered by seed."""
        pattern = f"{slug(config)}-seed*.json" if config is not None else "*-seed*.json"
        records = [r for p in sorted(Path(folder).glob(pattern)) if (r := self.read(p)) is not None]
        return sorted(records, key=lambda r: r.seed)


RECORD_LIMIT = 64 * 2**20
"""The largest run record read (the biggest committed one, with its per-face predictions, is well under 1 MB)."""
EXERCISES = "exercises"
"""The experiment name of the notebooks' exercise runs, and their subfolder."""
SUBFOLDERS = ("probes", "models", EXERCISES)


def subfolder(experiment: str, probes: bool = False, keep_model: bool = False) -> str:
    """The one rule for where a run lives in its results folder: exercises/ (whatever it measured), probes/, models/
    (kept model) or ''."""
    return EXERCISES if experiment == EXERCISES else "probes" if probes else "models" if keep_model else ""


def folder_id(profile: Profile, fingerprint: str, split_id: str) -> str:
    """The short hash that names a results folder: the profile's training key, the data's fingerprint and split."""
    ident = json.dumps([profile.training_key(), fingerprint, split_id], sort_keys=True)
    return hashlib.blake2b(ident.encode(), digest_size=3).hexdigest()


def folder_name(run: Run) -> str:
    """The results folder a run belongs in, from its own record (profile, data kind, fingerprint, split)."""
    known = {f.name for f in dataclass_fields(Profile)}
    # a field the record predates takes the named profile's value (runs from before ``min_epochs`` are laptop runs:
    # test_stored_runs_are_valid_under_their_profiles_min_epochs holds that they would have ended the same)
    base = PROFILES[run.profile["name"]].to_dict() if run.profile.get("name") in PROFILES else {}
    try:
        profile = Profile(**{k: v for k, v in {**base, **run.profile}.items() if k in known})
    except TypeError as exc:
        raise RecordError(f"profile is not a valid profile: {exc}") from exc
    d = run.data
    return f"{profile.name}-{d.get('kind')}-{folder_id(profile, d.get('fingerprint'), d.get('split_id'))}"


def stored_folder(profile: str = "laptop", kind: str = "real", root: Path | None = None) -> Path | None:
    """The results folder of one profile and data kind, read by name (no data needed); the fullest one when several
    datasets were used."""
    folders = sorted(Path(root or RESULTS_DIR).glob(f"{profile}-{kind}-*"))
    folders = [f for f in folders if f.name[len(profile) + 1 :].count("-") == 1]  # 'laptop-long-real-…' is not 'laptop'
    return max(folders, key=lambda f: len(list(f.glob("*.json"))), default=None)


def file_name(config: ModelConfig, seed: int) -> str:
    """``<slug>-<digest>-seed<N>.json``."""
    return f"{slug(config)}-seed{seed}.json"


def set_aside(path: Path) -> Path:
    """Rename a bad file to a name no other bad file has (``<name>.<time>-<n>.corrupt``) and return it."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in range(1000):
        bad = path.with_name(f"{path.name}.{stamp}-{n}.corrupt")
        try:  # claim the name (a directory for a directory: rename may replace only an empty one of its kind)
            if path.is_dir() and not path.is_symlink():
                os.mkdir(bad)
            else:
                os.close(os.open(bad, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # never overwrites a bad file
        except FileExistsError:
            continue
        os.replace(path, bad)
        return bad
    raise RuntimeError(f"could not set {path} aside")
