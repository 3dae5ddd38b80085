"""Build each stage's Lambda package with ``zappa package`` and report its zipped and unzipped size.

    python scripts/package_sizes.py                      # dev and dev_detection, slim venvs
    python scripts/package_sizes.py prod prod_detection --keep /tmp/packages
    python scripts/package_sizes.py --venv current       # from the active venv (dev tools and all)

Zappa packages the *current virtualenv's* site-packages plus the project. The development venv carries
test tools (moto, pytest, hypothesis...) and whatever else developers installed, so by default each stage
is packaged from a dedicated slim venv (``--venv slim``), built once under
``~/.cache/corb/package-venvs/`` (outside the project: Zappa walks and copies the project directory):

- web stages (``app_function`` set): ``requirements-web.txt`` + zappa;
- other stages (detection): ``requirements.txt``'s own pins (PyAV, numpy, Pillow, LiteRT; gunicorn and
  watchdog too, which the stage's ``exclude_glob`` drops) + the one package ``cloud/`` needs there
  (itsdangerous) + zappa. No OpenCV: it is a development requirement only (``requirements-dev.txt``), and
  beside PyAV's own FFmpeg it would not fit the 250 MB.

Each venv uses the Python of the stage's ``runtime`` (python3.12 for every stage: see docs/deploy.md).
The stage's ``exclude`` / ``exclude_glob`` then drop what Lambda provides (boto3) or only deploys need
(Zappa's deploy-time dependencies). ``zappa package`` runs with no AWS credentials and an endpoint on a
closed port, and Zappa's PyPI version check disabled: it must not, and here cannot, call AWS.

Then (unless ``--no-smoke``) each package is unzipped and started the way Lambda starts it: its own
Python with no site-packages (``-I -S``), only the package and the libraries Lambda's runtime provides
(boto3 and its dependencies) on the path. The web package imports its entry point, app and every handler;
the detection package imports its entry point and the detection handler, then analyses the test clip with
the shipped model. Both imports are timed, wall clock and CPU (the cold start).

Limits: 50 MB zipped for a direct upload (Zappa uploads through S3, so this one is soft), 250 MB
unzipped (code and layers together), which is the binding one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
ZIP_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 262_144_000  # 250 MB as Lambda counts it
DEAD_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing answers there


def pin(requirements: Path, name: str) -> str:
    for line in requirements.read_text().splitlines():
        if re.match(rf"^{re.escape(name)}\s*==", line.strip(), re.I):
            return line.strip()
    raise SystemExit(f"{name} is not pinned in {requirements.name}")


def requirements_for(stage_conf: dict) -> list[str]:
    """A stage's slim venv: web stages get requirements-web.txt, the others requirements.txt's own pins."""
    zappa = pin(ROOT / "requirements-dev.txt", "zappa")
    if stage_conf.get("app_function"):
        return ["-r", str(ROOT / "requirements-web.txt"), zappa]
    own = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
           if ln.strip() and not ln.startswith(("#", "-r"))]
    return [*own, pin(ROOT / "requirements-web.txt", "itsdangerous"), zappa]


def interpreter(runtime: str) -> str:
    """A working ``pythonX.Y`` for the stage's runtime: on PATH, else a pyenv install."""
    version = runtime.removeprefix("python")
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(runtime), *sorted(str(p) for p in pyenv.glob(f"{version}*/bin/{runtime}"))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    raise SystemExit(f"no working {runtime} (the stage's Lambda runtime) found: its venv needs one")


def slim_venv(kind: str, requirements: list[str], base: Path, python: str = sys.executable) -> Path:
    """A venv with exactly ``requirements``, rebuilt only when they (or the files they name) change."""
    text = " ".join(requirements) + "".join(Path(r).read_text() for r in requirements if Path(r).is_file())
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    venv = base / kind
    marker = venv / ".corb-requirements"
    if marker.is_file() and marker.read_text() == digest:
        return venv
    print(f"building the {kind} venv in {venv} ...", file=sys.stderr)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *requirements], check=True)
    marker.write_text(digest)
    return venv


def zappa_package(stage: str, venv: Path, output: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIRTUAL_ENV", "PYTHON"))}
    env.update({
        "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": DEAD_ENDPOINT,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull,
        "PYTHONPATH": str(ROOT),  # Zappa's settings callback imports cloud.aws
    })
    code = ("import sys, zappa.cli as c; c.check_new_version_available = lambda version: False; "
            "sys.exit(c.ZappaCLI().handle(sys.argv[1:]))")
    subprocess.run([str(venv / "bin" / "python"), "-c", code, "package", stage, "-o", str(output)],
                   cwd=ROOT, env=env, check=True)


# What Lambda's Python runtime provides beside the package (boto3 and what it imports).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")

WEB_SMOKE = """
import json, sys, time
t, cpu = time.perf_counter(), time.process_time()
import cloud.aws.lambda_handler, zappa.handler, bot.wsgi
from cloud.declaration import load_declaration
from cloud.functions import resolve
decl = load_declaration("{group}")
for fn in decl.functions:
    if not fn.startswith("detection."):
        resolve(fn)
elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
heavy = sorted(m for m in ("cv2", "av", "PIL", "numpy", "ai_edge_litert", "torch", "tensorflow")
               if m in sys.modules)
print(json.dumps({{"cold_import_s": round(elapsed, 3), "cold_import_cpu_s": round(cpu, 3),
                  "heavy_modules": heavy}}))
"""

DETECTION_SMOKE = """
import json, time
t, cpu = time.perf_counter(), time.process_time()
import cloud.aws.lambda_handler, zappa.handler, detection.handler
from detection.pipeline import analyse
imported, imported_cpu = time.perf_counter() - t, time.process_time() - cpu
t = time.perf_counter()
r = analyse("{clip}", camera="smoke")
import cloud.reconcile, cloud.aws.lambda_invoker  # the reconciler's schedule runs in this package too
print(json.dumps({{"cold_import_s": round(imported, 3), "cold_import_cpu_s": round(imported_cpu, 3),
                  "analyse_s": round(time.perf_counter() - t, 2),
                  "frames_analysed": r.frames_analysed, "peak": r.peak}}))
"""


def smoke(stage: str, conf: dict, package: Path, venv: Path, workdir: Path) -> dict:
    """Start the unzipped package as Lambda would (see the module docstring); returns what it printed."""
    root = workdir / f"unzipped-{stage}"
    runtime = workdir / f"runtime-{stage}"
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(runtime, ignore_errors=True)
    with zipfile.ZipFile(package) as zf:
        zf.extractall(root)
    runtime.mkdir()
    site = next((venv / "lib").glob("python3.*/site-packages"))
    for name in RUNTIME_PROVIDED:
        if (site / name).exists():
            (runtime / name).symlink_to(site / name)
    group = stage.split("_", 1)[0]
    if conf.get("app_function"):
        code = WEB_SMOKE.format(group=group)
    else:
        code = DETECTION_SMOKE.format(clip=ROOT / "tests" / "data" / "vtest-clip.mkv")
    prelude = f"import sys; sys.path[:0] = [{str(root)!r}, {str(runtime)!r}]\n"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir), "CORB_DATA_DIR": str(workdir / "data"),
           "CORB_SECRET_KEY": "smoke", "TWILIO_AUTH_TOKEN": "smoke", "CORB_BUCKET": "folder",
           "CORB_BUS": "local", "DATABASE_URL": f"sqlite:///{workdir / 'smoke.db'}", "CORB_STAGE": group}
    out = subprocess.run([str(venv / "bin" / "python"), "-I", "-S", "-c", prelude + code], cwd=root, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    top: Counter[str] = Counter()
    for i in infos:
        top[i.filename.split("/", 1)[0]] += i.file_size
    unzipped = sum(i.file_size for i in infos)
    return {"zipped": path.stat().st_size, "unzipped": unzipped, "files": len(infos),
            "largest": [(name, size) for name, size in top.most_common(8)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stages", nargs="*", default=["dev", "dev_detection"])
    parser.add_argument("--venv", choices=["slim", "current"], default="slim")
    parser.add_argument("--venv-dir", type=Path, default=Path.home() / ".cache" / "corb" / "package-venvs")
    parser.add_argument("--keep", type=Path, help="keep the packages in this folder")
    parser.add_argument("--json", action="store_true", help="print the sizes as JSON")
    parser.add_argument("--no-smoke", action="store_true", help="do not start the unzipped packages")
    parser.add_argument("--extra", nargs="*", default=[], metavar="REQ",
                        help="more requirements for every slim venv (ones the requirements files lack yet)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from cloud.aws.stages import read_settings, stage_config

    settings = read_settings()
    results = {}
    with tempfile.TemporaryDirectory(prefix="corb-packages-") as tmp:
        out_dir = args.keep or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        for stage in args.stages:
            conf = stage_config(settings, stage)
            if args.venv == "current":
                venv = Path(os.environ.get("VIRTUAL_ENV") or sys.prefix)
            else:
                runtime = str(conf.get("runtime") or "python3.12")
                kind = ("web" if conf.get("app_function") else "detection") + "-" + runtime
                args.venv_dir.mkdir(parents=True, exist_ok=True)
                requirements = requirements_for(conf) + args.extra
                venv = slim_venv(kind, requirements, args.venv_dir, interpreter(runtime))
            path = out_dir / f"corb-{stage}.zip"
            zappa_package(stage, venv, path)
            results[stage] = {**measure(path), "venv": str(venv), "package": str(path)}
            if not args.no_smoke:
                results[stage]["smoke"] = smoke(stage, conf, path, venv, Path(tmp))

    failed = [stage for stage, r in results.items() if "error" in r.get("smoke", {})]
    if args.json:
        print(json.dumps(results, indent=2))
        return 1 if failed else 0
    print(f"\n{'stage':<16}{'zipped':>10}{'unzipped':>11}{'files':>8}  Lambda limits")
    for stage, r in results.items():
        ok_zip = "zip<=50MB" if r["zipped"] <= ZIP_LIMIT else "zip>50MB: needs S3 upload (Zappa does)"
        ok_unz = "unzipped<=250MB" if r["unzipped"] <= UNZIPPED_LIMIT else "unzipped>250MB: container image"
        print(f"{stage:<16}{r['zipped'] / MB:>8.1f}MB{r['unzipped'] / MB:>9.1f}MB{r['files']:>8}  "
              f"{ok_zip}, {ok_unz}")
        print("    largest: " + ", ".join(f"{n} {s / MB:.1f}MB" for n, s in r["largest"]))
        if "smoke" in r:
            print(f"    started as Lambda would: {json.dumps(r['smoke'])}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
