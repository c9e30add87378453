"""Lab nodes as remote pytest-xdist worker hosts: ``pytest --tx ssh=<node>//python=…//ssh_config=…``.

execnet starts a remote worker with ``ssh -C -F <ssh_config> <host> '<python> -c "…"'`` and
talks to it over that SSH session's stdin and stdout. What a lab node is to it (see ``node``
for how the node is made):

- **Login.** The node's own OpenSSH sshd (no chroot), as ``root`` with the lab's client key;
  host keys are pinned in ``<state>/known_hosts``. ``up`` already writes the OpenSSH client
  config execnet needs, ``<state>/ssh_config``: one ``Host <node name>`` block each with
  HostName, User, IdentityFile, IdentitiesOnly, UserKnownHostsFile and
  ``StrictHostKeyChecking yes`` (hidden nodes through the lab's proxy). A session runs bash
  with the standard PATH and HOME=/root; nothing of the caller's environment is passed on.
- **Files.** The node's root is an overlay over this machine's root file system, so it sees
  this machine's files, except that it has its own, empty, ``/root``, ``/home`` and ``/tmp``
  (NODE_PRIVATE_DIRS) and nothing of file systems mounted elsewhere. An interpreter or a
  virtualenv under one of those, a pyenv's in /root for one, does not run there:
  ``worker_python`` makes one that does. Whatever a node writes stays inside the node
  (its own tmpfs disk), so a worker there hands its results back through execnet only, like
  a worker on another machine.
- **Network.** The node's own network namespace on the lab's direct network, on which this
  machine has the first address (``controller_address``, 198.18.0.1 for the first lab). A
  server on this machine is reachable from the workers at that address when it listens on it
  (or on 0.0.0.0), never on 127.0.0.1, which in a node is the node's own loopback. Nodes on
  the hidden network reach nothing of this machine.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from acpcheck_lab.host import LabError, run
from acpcheck_lab.info import LabInfo

#: Directories every lab node has its own copy of, hiding this machine's: node.build_node
#: gives each node private, opaque /root and /home (with the lab's client key) and its own /tmp.
NODE_PRIVATE_DIRS = (Path("/root"), Path("/home"), Path("/tmp"))
#: The interpreter ``worker_python`` builds on: the system's, which the nodes see (the lab's own
#: helpers run in the nodes with it too).
SYSTEM_PYTHON = "/usr/bin/python3"
#: What a pytest-xdist worker of an acpcheck run imports: the runner, the channel and the product.
WORKER_PACKAGES = ("pytest", "xdist", "execnet", "acpcheck")
#: The .pth file of a worker environment: it adds this environment's site directories.
WORKER_PTH = "acpcheck-lab-worker.pth"


def hidden_from_nodes(path: Path | str) -> str | None:
    """Why a lab node cannot see this machine's ``path``, or None when it can."""
    real = Path(os.path.realpath(path))
    for private in NODE_PRIVATE_DIRS:
        if real == private or private in real.parents:
            return f"{real} is under {private}, which every lab node has its own (empty) copy of"
    existing = next(candidate for candidate in (real, *real.parents) if candidate.exists())
    if existing.stat().st_dev != Path("/").stat().st_dev:
        mount = existing
        while mount.parent != mount and mount.parent.stat().st_dev == existing.stat().st_dev:
            mount = mount.parent
        return f"{real} is on the file system mounted at {mount}; a lab node sees only this machine's root file system"
    return None


def _in_node_private_dir(path: Path) -> bool:
    real = Path(os.path.realpath(path))
    return any(real == private or private in real.parents for private in NODE_PRIVATE_DIRS)


def _mirror(hidden: list[Path], site_dirs: list[str], into: Path) -> list[str]:
    """A copy the nodes can see of the tree that holds this environment's hidden site
    directories and packages (a checkout and its virtualenv under /tmp, say), made of hard
    links (same file system: quick, no space): the site directories' paths in the copy.
    The files that name the tree's own path (.pth files, editable installs' finders) are
    written anew in the copy with the copy's path, never changed in place (a hard link
    would change the original)."""
    root = Path(os.path.commonpath([os.path.realpath(path) for path in hidden]))
    if root in NODE_PRIVATE_DIRS or root == Path("/"):
        raise LabError(
            f"the environment's files under {root} are spread too widely to copy where lab nodes see them; "
            "install it outside /tmp, /root and /home"
        )
    copy = into / root.relative_to("/")
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        run(["cp", "-al", str(root), str(copy)], timeout=300)
        for site in site_dirs:
            mirrored = Path(str(copy) + os.path.realpath(site)[len(str(root)) :])
            for path in [*mirrored.glob("*.pth"), *mirrored.glob("__editable__*.py")]:
                text = path.read_text(encoding="utf-8", errors="surrogateescape")
                if str(root) in text:
                    path.unlink()  # a new file: the hard link's original keeps its text
                    path.write_text(text.replace(str(root), str(copy)), encoding="utf-8", errors="surrogateescape")
    return [
        str(copy) + os.path.realpath(site)[len(str(root)) :] if _in_node_private_dir(Path(site)) else site
        for site in site_dirs
    ]


def worker_python(directory: Path | str, interpreter: str = SYSTEM_PYTHON) -> Path:
    """An interpreter that lab nodes can start as pytest-xdist workers: ``directory`` becomes a
    virtual environment of ``interpreter`` (default the system's) whose packages are those of
    the environment this runs in (its site directories, added by a .pth file: editable
    installs keep working). Returns its ``bin/python3``, for ``worker_specs``.

    Needed wherever this environment's interpreter is one the nodes do not see (a virtualenv
    made by a pyenv Python in /root). A checkout and its virtualenv in a directory every node
    has its own copy of (/tmp, /root, /home) is mirrored into ``directory`` first (``_mirror``).
    ``directory``, ``interpreter``, the site directories and the packages a worker imports
    must all be visible on the nodes (``hidden_from_nodes``), and
    ``interpreter`` must be this Python's minor version (compiled packages are built for it):
    LabError naming the one that is not."""
    directory = Path(directory).absolute()
    site_dirs = list(dict.fromkeys(sysconfig.get_path(key) for key in ("purelib", "platlib")))
    package_dirs = []
    for name in WORKER_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise LabError(f"{name} is not installed in {sys.prefix}: a worker needs it (pip install {name})")
        package_dirs.append(Path(spec.origin).parent)
    hidden = [path for path in [*map(Path, site_dirs), *package_dirs] if _in_node_private_dir(path)]
    if hidden:
        site_dirs = _mirror(hidden, site_dirs, directory / "mirror")
        package_dirs = []  # now inside the mirror, which is visible
    needed = [("the worker directory", directory), ("the interpreter", Path(interpreter))]
    needed += [("a site directory", Path(path)) for path in site_dirs]
    needed += [(f"package {name}", path) for name, path in zip(WORKER_PACKAGES, package_dirs, strict=False)]
    for what, path in needed:
        reason = hidden_from_nodes(path)
        if reason:
            raise LabError(f"{what} is not visible on the lab's nodes: {reason}; put it elsewhere")
    version = run(
        [interpreter, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], timeout=30
    ).stdout.strip()
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version.rpartition(".")[0] != here:
        raise LabError(
            f"{interpreter} is Python {version}, this environment is Python {here}: its compiled packages "
            f"need a {here} interpreter (give one with interpreter=)"
        )
    site_packages = directory / "lib" / f"python{here}" / "site-packages"
    site_packages.mkdir(parents=True, exist_ok=True)
    (directory / "bin").mkdir(exist_ok=True)
    executable = directory / "bin" / "python3"
    executable.unlink(missing_ok=True)
    executable.symlink_to(os.path.realpath(interpreter))
    home = Path(os.path.realpath(interpreter)).parent
    (directory / "pyvenv.cfg").write_text(f"home = {home}\ninclude-system-site-packages = false\nversion = {version}\n")
    # A plain path line would add the directory but skip its own .pth files (editable installs).
    (site_packages / WORKER_PTH).write_text("".join(f"import site; site.addsitedir({path!r})\n" for path in site_dirs))
    return executable


def controller_address(info: LabInfo) -> str:
    """This machine's address on the lab's direct network: where a server here must listen
    (or on 0.0.0.0) for workers on the lab's nodes to reach it."""
    return str(info.lab_subnets.networks(info.names)["direct"].root_address)


def worker_specs(
    info: LabInfo, python: Path | str, nodes: Sequence[str] | None = None, chdir: str | None = None
) -> list[str]:
    """pytest-xdist ``--tx`` values that start one worker on each of ``nodes`` (default: every
    node on the lab's direct network, the ones that reach ``controller_address``), over the
    lab's SSH with its ``ssh_config``, running ``python`` (``worker_python``). ``chdir``: the
    worker's working directory on the node (xdist's default: ``pyexecnetcache`` in the SSH
    user's home, where it copies pytest itself)."""
    names = list(nodes) if nodes is not None else [node.name for node in info.nodes if node.network == "direct"]
    known = {node.name for node in info.nodes}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise LabError(f"no lab node {', '.join(unknown)} in {info.state_dir} (nodes: {', '.join(sorted(known))})")
    if not names:
        raise LabError(f"the lab in {info.state_dir} has no node on its direct network to run a worker on")
    tail = f"//chdir={chdir}" if chdir else ""
    return [f"ssh={name}//python={python}//ssh_config={info.paths.ssh_config}{tail}" for name in names]


def check_worker_hosts(info: LabInfo, python: Path | str, nodes: Sequence[str]) -> None:
    """Start ``python`` on each of ``nodes`` over the lab's SSH, as execnet will, and import
    what a worker needs: LabError with the node's own answer when one cannot."""
    imports = ", ".join(WORKER_PACKAGES)
    for name in nodes:
        answer = run(
            ["ssh", "-F", str(info.paths.ssh_config), "-o", "BatchMode=yes", name, f"{python} -c 'import {imports}'"],
            timeout=60,
            check=False,
        )
        if answer.returncode != 0:
            detail = (answer.stderr or answer.stdout).strip().splitlines()[-3:]
            raise LabError(f"lab node {name} cannot run a worker with {python}: {' / '.join(detail)}")
