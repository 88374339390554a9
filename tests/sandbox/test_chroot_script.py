"""scripts/asterisk-chroot.sh says clearly what to do when it cannot build the chroot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "asterisk-chroot.sh"


def run(env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess[str]:
    """Run the script with an environment of the test's own."""
    return subprocess.run(
        [*prefix, "bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the root path of the script")
def test_missing_debootstrap_says_what_to_do(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "chroot", "mountpoint", "umount", "printf", "cat", "rm"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "CALLFLOW_CACHE": str(tmp_path / "cache")}
    result = run(env, shutil.which("bash") or "bash", "-c", 'exec "$@"', "_")
    assert result.returncode == 1
    assert "debootstrap is not installed: run 'make deps'" in result.stderr


def test_not_root_says_what_to_do(tmp_path: Path) -> None:
    env = dict(os.environ, CALLFLOW_CACHE=str(tmp_path / "cache"))
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv is needed to drop root")
        prefix = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    result = run(env, *prefix)
    assert result.returncode == 1
    assert "must run as root" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the root path of the script")
def test_broken_cache_is_detected_and_rebuilt_from_scratch(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "rootfs").mkdir(parents=True)  # no stamp, no asterisk: a broken chroot
    env = dict(os.environ, CALLFLOW_CACHE=str(cache), CALLFLOW_DEBIAN_MIRROR="http://127.0.0.1:9/")
    result = run(env)
    assert "missing or broken; rebuilding" in result.stderr
    assert result.returncode == 1 and "debootstrap failed" in result.stderr
