"""Pure text edits of node configuration files: the smallest change that gives the
documented value, and no change at all when the file already has it (so a second
apply is a no-op). Each function takes and returns the file's text; nothing here
touches a node.
"""

from __future__ import annotations

import re
import shlex

# ---------------------------------------------------------------------------
# sshd_config


def _sshd_keyword(line: str) -> str:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return ""
    return re.split(r"[\s=]", stripped, maxsplit=1)[0].lower()


def set_sshd_option(text: str, keyword: str, value: str) -> str:
    """sshd uses the FIRST value it reads for a keyword; a ``Match`` block or an
    ``Include`` (whose files may set it) ends the part of the file that certainly comes
    first. An occurrence there is replaced in place; otherwise the setting goes on a
    new line before the first non-comment line, ahead of every Include and Match."""
    lines = text.splitlines(keepends=True)
    wanted = keyword.lower()
    for index, line in enumerate(lines):
        token = _sshd_keyword(line)
        if token in ("match", "include"):
            break
        if token == wanted:
            current = re.split(r"[\s=]+", line.strip(), maxsplit=1)[1:] or [""]
            if current[0].split("#")[0].strip().lower() == value.lower():
                return text
            lines[index] = f"{keyword} {value}\n"
            return "".join(lines)
    position = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.strip().startswith("#")), len(lines)
    )
    if position == len(lines) and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.insert(position, f"{keyword} {value}\n")
    return "".join(lines)


# ---------------------------------------------------------------------------
# INI-style files (systemd's system.conf)


def set_ini_key(text: str, section: str, key: str, value: str) -> str:
    """``key=value`` in ``[section]``: every active assignment there replaced (systemd
    takes the last); none, then after a commented ``#key=`` default, or at the end of
    the section; no section, then a new one at the end."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    current, start, end = None, None, len(lines)
    for index, line in enumerate(lines):
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            if current == section:
                end = index
                break
            current = header.group(1).strip()
            if current == section:
                start = index
    new_line = f"{key}={value}\n"
    if start is None:
        separator = "\n" if lines and lines[-1].strip() else ""
        return "".join(lines) + f"{separator}[{section}]\n{new_line}"
    assignment = re.compile(rf"\s*{re.escape(key)}\s*=")
    active = [i for i in range(start + 1, end) if assignment.match(lines[i])]
    if active:
        if all(lines[i].split("=", 1)[1].strip() == value for i in active):
            return text
        for i in active:
            lines[i] = new_line
        return "".join(lines)
    commented = re.compile(rf"\s*[#;]\s*{re.escape(key)}\s*=")
    default = next((i for i in range(start + 1, end) if commented.match(lines[i])), None)
    if default is None:
        default = max((i for i in range(start, end) if lines[i].strip()), default=start)
    lines.insert(default + 1, new_line)
    return "".join(lines)


def ini_value(text: str, section: str, key: str) -> str | None:
    """The last active ``key=`` of ``[section]`` (None when unset)."""
    current, found = None, None
    for line in text.splitlines():
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            current = header.group(1).strip()
        elif current == section and re.match(rf"\s*{re.escape(key)}\s*=", line):
            found = line.split("=", 1)[1].strip()
    return found


# ---------------------------------------------------------------------------
# KEY=VALUE files (/etc/selinux/config, /etc/ufw/ufw.conf)


def set_assignment(text: str, key: str, value: str) -> str:
    """Every active ``KEY=…`` line becomes ``KEY=value``; none, then one is appended."""
    lines = text.splitlines(keepends=True)
    pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
    active = [i for i, line in enumerate(lines) if pattern.match(line)]
    if active and all(lines[i].split("=", 1)[1].strip().strip("\"'") == value for i in active):
        return text
    for i in active:
        lines[i] = f"{key}={value}\n"
    if not active:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(f"{key}={value}\n")
    return "".join(lines)


# ---------------------------------------------------------------------------
# /etc/fstab


def swap_entries(fstab: str) -> list[str]:
    """The active swap lines of an fstab (third field ``swap``)."""
    return [
        line
        for line in fstab.splitlines()
        if not line.strip().startswith("#") and len(line.split()) >= 3 and line.split()[2] == "swap"
    ]


def comment_out_swap(fstab: str) -> str:
    """Each active swap line commented out with a leading ``#``; everything else as it was."""
    lines = fstab.splitlines(keepends=True)
    for index, line in enumerate(lines):
        fields = line.split()
        if fields and not fields[0].startswith("#") and len(fields) >= 3 and fields[2] == "swap":
            lines[index] = "#" + line
    return "".join(lines)


# ---------------------------------------------------------------------------
# /etc/hosts


def ensure_localhost(hosts: str) -> str:
    """The first IPv4 line naming ``localhost`` must be 127.0.0.1 (the resolver answers
    from the first match): a ``127.0.0.1 localhost`` line goes before a wrong one, or
    before the first entry when there is none. Nothing else changes."""
    lines = hosts.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    first_entry = None
    for index, line in enumerate(lines):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if first_entry is None:
            first_entry = index
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", fields[0]) and "localhost" in (name.lower() for name in fields[1:]):
            if fields[0] == "127.0.0.1":
                return hosts
            lines.insert(index, "127.0.0.1\tlocalhost\n")
            return "".join(lines)
    lines.insert(first_entry if first_entry is not None else len(lines), "127.0.0.1\tlocalhost\n")
    return "".join(lines)


# ---------------------------------------------------------------------------
# Word lists (/etc/modules-load.d/*.conf)


def add_words(text: str, words: list[str], header: str) -> str:
    """Each of ``words`` on a line of its own, unless the file lists it already; a new
    file starts with ``header`` (a comment)."""
    present = {line.split("#", 1)[0].strip() for line in text.splitlines()}
    missing = [word for word in words if word not in present]
    if not missing:
        return text
    prefix = text if text else f"# {header}\n"
    if prefix and not prefix.endswith("\n"):
        prefix += "\n"
    return prefix + "".join(f"{word}\n" for word in missing)


# ---------------------------------------------------------------------------
# sysctl.d


def set_sysctl(text: str, key: str, value: str, header: str) -> str:
    """``key = value`` in a sysctl.d file (``.`` and ``/`` separators are the same key)."""
    normal = key.replace("/", ".")
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        name, sep, current = line.split("#", 1)[0].partition("=")
        if sep and name.strip().lstrip("-").replace("/", ".") == normal:
            if current.strip() == value:
                return text
            lines[index] = f"{normal} = {value}\n"
            return "".join(lines)
    prefix = "".join(lines) if lines else f"# {header}\n"
    if not prefix.endswith("\n"):
        prefix += "\n"
    return prefix + f"{normal} = {value}\n"


# ---------------------------------------------------------------------------
# GRUB: /etc/default/grub

CMDLINE_KEYS = ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT")


def _cmdline_assignments(lines: list[str]) -> dict[str, int]:
    """The line index of the last active assignment of each GRUB_CMDLINE_* variable."""
    found = {}
    for index, line in enumerate(lines):
        match = re.match(r"\s*(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=", line)
        if match:
            found[match.group(1)] = index
    return found


def _words_of(line: str) -> list[str]:
    value = line.split("=", 1)[1].strip()
    try:
        parsed = shlex.split(value, comments=True)
    except ValueError:
        parsed = [value.strip("\"'")]
    return " ".join(parsed).split()


def kernel_parameters(text: str) -> list[str]:
    """GRUB_CMDLINE_LINUX then GRUB_CMDLINE_LINUX_DEFAULT, as the boot entry gets them."""
    lines = text.splitlines()
    found = _cmdline_assignments(lines)
    return [word for key in CMDLINE_KEYS if key in found for word in _words_of(lines[found[key]])]


def set_kernel_parameter(text: str, parameter: str, *, exclusive: bool = True) -> str:
    """``parameter`` (``key=value``) on the kernel command line GRUB generates: added to
    GRUB_CMDLINE_LINUX; with ``exclusive``, other values of the same key removed from
    both variables (the kernel takes the last one given). For a list-valued key
    (``cgroup.memory=nokmem``, not ``exclusive``) it is enough that some value lists it."""
    key, _, value = parameter.partition("=")
    present = kernel_parameters(text)
    same_key = [word for word in present if word.partition("=")[0] == key]
    if (
        exclusive
        and same_key == [parameter]
        or not exclusive
        and any(value in word.partition("=")[2].split(",") for word in same_key)
    ):
        return text
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    found = _cmdline_assignments(lines)
    for name in CMDLINE_KEYS:
        if name not in found:
            continue
        original = _words_of(lines[found[name]])
        words = [word for word in original if not exclusive or word.partition("=")[0] != key]
        if name == "GRUB_CMDLINE_LINUX":
            words.append(parameter)
        if words != original:
            lines[found[name]] = f'{name}="{" ".join(words)}"\n'
    if "GRUB_CMDLINE_LINUX" not in found:
        lines.append(f'GRUB_CMDLINE_LINUX="{parameter}"\n')
    return "".join(lines)
