"""Resolving the client coroutine and server model a config names.

`workload.client` and `server.model` take a built-in name or a dotted path
"package.module:name". A dotted path is imported with the config file's folder tried first, so
a scenario can live next to its config. Resolution happens before the run starts, and a name
that cannot be used is reported as a config problem.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

from sim.clients import BUILT_IN_CLIENTS, ClientCoroutine
from sim.config import Config, ConfigError
from sim.server import ServerModel

__all__ = ["Plugins", "resolve", "resolve_object"]

BUILT_IN_SERVERS: dict[str, type[ServerModel]] = {"job_server": ServerModel}


class Plugins:
    """The client coroutine and server model class of one run."""

    def __init__(self, client: ClientCoroutine, server: type[ServerModel]) -> None:
        self.client = client
        self.server = server


def resolve(config: Config, search: Path | None = None, *, source: str = "<config>") -> Plugins:
    """Resolve both names of `config`; raise `ConfigError` naming every one that fails."""
    problems: list[str] = []
    client: Any = None
    server: Any = None

    name = config.workload.client
    try:
        client = BUILT_IN_CLIENTS.get(name) or resolve_object(name, search)
        if not asyncio.iscoroutinefunction(client):
            raise ValueError(f"must name an 'async def' function taking a ClientContext; got {name!r}")
    except ValueError as exc:
        problems.append(f"workload.client: {exc}")

    name = config.server.model
    try:
        server = BUILT_IN_SERVERS.get(name) or resolve_object(name, search)
        if not (isinstance(server, type) and issubclass(server, ServerModel)):
            raise ValueError(f"must name a subclass of sim.server.ServerModel; got {name!r}")
    except ValueError as exc:
        problems.append(f"server.model: {exc}")

    if problems:
        raise ConfigError(source, problems)
    return Plugins(client, server)


def resolve_object(path: str, search: Path | None = None) -> Any:
    """Import "package.module:name" and return the object, trying `search` first as an import root.

    Raises `ValueError` with a message that states the problem and the fix.
    """
    module_name, _, name = path.partition(":")
    if not module_name or not name:
        raise ValueError(f"must be a built-in name or 'package.module:name'; got {path!r}")
    added = search is not None and str(search) not in sys.path
    if added:
        sys.path.insert(0, str(search))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        where = f"{str(search)!r} (the config file's folder), then " if search is not None else ""
        raise ValueError(
            f"cannot import module {module_name!r} of {path!r}: {exc}. It was looked for in {where}the "
            "Python path; put the module next to the config file, or add its folder to PYTHONPATH"
        ) from None
    finally:
        if added:
            sys.path.remove(str(search))
    try:
        return getattr(module, name)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {name!r}") from None
