"""A node file is replaced only by content that arrived whole: a runner killed while it
sends stdin (the crash test at point 6 once left an empty sshd_config) must leave the
file as it was."""

from __future__ import annotations

import os
from pathlib import Path

from acpcheck.remediation import nodefiles
from acpcheck.transport.base import CommandResult
from acpcheck.transport.local import LocalTransport


class CutShort(LocalTransport):
    """A transport whose stdin stops halfway, as when the runner dies mid-send."""

    def run_as_root(
        self, command: str, timeout: float | None = None, *, stdin: str | bytes | None = None
    ) -> CommandResult:
        data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
        cut = data.rfind(b"\n", 0, len(data) // 2) + 1  # at a line end: what arrived is valid base64, just too little
        return self.run(command, timeout, stdin=data[:cut])


def test_content_cut_short_on_the_way_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "sshd_config"
    target.write_text("Port 22\nUseDNS no\n")
    content = b"UseDNS no\n" * 400
    with CutShort() as transport:
        try:
            nodefiles.write_file(transport, str(target), content, mode=0o644, uid=os.getuid(), gid=os.getgid())
        except nodefiles.NodeFileError as error:
            assert "incomplete content" in str(error)
        else:
            raise AssertionError("a write of half the content succeeded")
    assert target.read_text() == "Port 22\nUseDNS no\n"
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".acpcheck.")]  # no temporary file left


def test_content_that_arrives_whole_replaces_the_file(tmp_path: Path) -> None:

    target = tmp_path / "hosts"
    target.write_text("old\n")
    with LocalTransport() as transport:
        nodefiles.write_file(
            transport, str(target), b"127.0.0.1 localhost\n", mode=0o644, uid=os.getuid(), gid=os.getgid()
        )
    assert target.read_bytes() == b"127.0.0.1 localhost\n"
